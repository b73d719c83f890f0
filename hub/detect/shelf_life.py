"""Shelf-life impact of a temperature excursion: how much earlier an exposed lot now expires.

The model is linear in heat dose. An excursion's dose is its degree-minutes above the SKU's own storage limit
(°C·min, see ``hub/detect/spikes.py``); the fraction of the *remaining* shelf life it destroys is

    loss = min(1, sensitivity × degree_minutes × LOSS_PER_DEGREE_MINUTE)

with ``sensitivity`` the SKU's ``excursion_sensitivity`` (0: unaffected, 1: highly perishable food). The constant is
calibrated on the published figure for sensitive food: a 20-minute spike from 18 °C to 28 °C costs 15-30 % of the
shelf life. Against a 20 °C limit that spike is ~158 °C·min (8 °C for 20 minutes, with the ramps), so
``0.0013 × 158 ≈ 21 %``; against an 18 °C limit it is ~198 °C·min, ≈ 26 %. Both sit inside the published band.

The remaining days (from the day of the excursion to the effective expiry) shrink by that fraction, rounded down to
whole days, so any real loss moves the date; a total loss dates it the day before the excursion (it is expired);
expiry never moves later, and several excursions compound.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

LOSS_PER_DEGREE_MINUTE = 0.0013


def loss_fraction(
    sensitivity: float, degree_minutes: float, per_degree_minute: float = LOSS_PER_DEGREE_MINUTE
) -> float:
    """Fraction (0-1) of the remaining shelf life an excursion of ``degree_minutes`` destroys."""
    return min(1.0, max(0.0, sensitivity) * max(0.0, degree_minutes) * per_degree_minute)


def shortened_expiry(expires_on: date, on: date, loss: float) -> date:
    """The effective expiry after losing ``loss`` of the shelf life remaining on day ``on``."""
    remaining = (expires_on - on).days
    if loss <= 0 or remaining < 0:
        return expires_on
    if loss >= 1:  # nothing left: it was no longer good on the day of the excursion
        return min(expires_on, on - timedelta(days=1))
    kept = math.floor(remaining * (1 - loss) + 1e-9)
    return min(expires_on, on + timedelta(days=kept))
