"""``fefo_violation``: first-expired-first-out slips.

A sale, issue or outbound dispatch of a lot is a violation when, at the same location, a lot of the same SKU that
expires more than ``tolerance_days`` earlier still holds more than ``tolerance_units`` sellable units. Lots that
cannot be sold (held, quarantined, recalled, or already past expiry) do not count: taking the next lot is right then.
Stock without an expiry date has no FEFO order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any


@dataclass(frozen=True)
class FefoRules:
    tolerance_days: int = 2
    tolerance_units: int = 0


@dataclass(frozen=True)
class LotAtHand:
    lot_code: str
    expires_on: date | None
    on_hand: int
    sellable: bool = True  # released (not held / quarantined / recalled)


@dataclass(frozen=True)
class FefoViolation:
    taken: LotAtHand
    quantity: int
    older: list[LotAtHand]

    @property
    def days_fresher(self) -> int:
        assert self.taken.expires_on is not None
        return max((self.taken.expires_on - lot.expires_on).days for lot in self.older if lot.expires_on)

    def figures(self) -> dict[str, Any]:
        return {
            "takenLot": self.taken.lot_code,
            "takenExpiresOn": self.taken.expires_on.isoformat() if self.taken.expires_on else None,
            "quantity": self.quantity,
            "olderLots": [
                {"lotCode": lot.lot_code, "expiresOn": lot.expires_on.isoformat() if lot.expires_on else None,
                 "onHand": lot.on_hand}
                for lot in self.older
            ],
            "olderUnits": sum(lot.on_hand for lot in self.older),
            "daysFresher": self.days_fresher,
        }


def check(
    taken: LotAtHand, quantity: int, others: list[LotAtHand], today: date, rules: FefoRules
) -> FefoViolation | None:
    """Judge taking ``quantity`` of ``taken`` while ``others`` (the same SKU at the same place) sit there."""
    if taken.expires_on is None or quantity <= 0:
        return None
    older = [
        lot for lot in others
        if lot.lot_code != taken.lot_code and lot.sellable and lot.expires_on is not None
        and lot.expires_on >= today and (taken.expires_on - lot.expires_on).days > rules.tolerance_days
        and lot.on_hand > rules.tolerance_units
    ]
    if not older:
        return None
    return FefoViolation(taken, quantity, sorted(older, key=lambda lot: (lot.expires_on, lot.lot_code)))
