"""What a tenant in an event's audience is shown of it, where that is less than what the event's owner is shown.

An event is written once, as its owner sees it, and heard by its whole audience; the other parties get the view the
same record has in their queries: a partner's sensor alert with its own goods only (``hub/services/exposure_views``),
a receipt without the receiver's location (``Receipt.locationId`` is the receiver's only). Applied to webhook
bodies (``webhooks/signing.py``); the live subscriptions render their types with the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.services import exposure_views


def payload_for(payload: Mapping[str, Any], viewer: str | None) -> Mapping[str, Any]:
    """``payload`` as ``viewer`` may hear it (``None``: as written)."""
    if viewer is None:
        return payload
    payload = exposure_views.payload_for(payload, viewer)
    receipt = payload.get("receipt")
    if isinstance(receipt, Mapping) and receipt.get("receiverId") != viewer:
        payload = {**payload, "receipt": {**receipt, "locationId": None}}
    return payload
