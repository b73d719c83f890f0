"""Reconciling what was scanned on receipt against what the dispatch (advance ship notice) announced.

Pure functions over plain values: the receipt service loads the dispatch, the SKU master and earlier receipts, and
asks ``reconcile`` what is wrong. Quantities are judged per dispatch line on the running total of every receipt of the
dispatch, so partial receipts never raise false shortages: over-deliveries show as soon as the total passes the
tolerance, shortages and missing lines only when a receipt is marked final.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import Enum


class MismatchKind(str, Enum):
    lot_code = "lot_code"
    quantity_short = "quantity_short"
    quantity_over = "quantity_over"
    expiry = "expiry"
    unexpected_sku = "unexpected_sku"
    missing_line = "missing_line"
    shelf_life = "shelf_life"  # expires_on is not produced_on + the SKU's shelf life (wrong production date)


@dataclass(frozen=True)
class ExpectedLine:
    """One dispatch line."""

    sku_id: str
    lot_code: str
    quantity: int
    produced_on: date | None = None
    expires_on: date | None = None
    shelf_life_days: int | None = None  # from the SKU master
    sscc: str | None = None  # the pallet or case it travels on


@dataclass(frozen=True)
class ScannedLine:
    """One receipt line; ``sku_id`` is None when the scanned reference names no SKU the receiver can see."""

    sku_ref: str
    sku_id: str | None
    lot_code: str
    quantity: int
    expires_on: date | None = None
    sscc: str | None = None  # the pallet or case it came on


@dataclass(frozen=True)
class Mismatch:
    kind: MismatchKind
    line: int | None  # index of the receipt line, None for a missing dispatch line
    dispatch_line: int | None  # index of the dispatch line it was judged against
    expected: str | None
    found: str | None
    near_miss: bool = False  # lot codes one edit apart or adjacent: most likely a keying or labelling slip
    sku_id: str | None = None
    lot_code: str | None = None  # the lot the finding is about (the dispatched one when known)

    @property
    def holds_lot(self) -> bool:
        """Goods that arrived and disagree with the notice are held; an absence or a short count holds nothing."""
        return self.kind not in (MismatchKind.missing_line, MismatchKind.quantity_short)


@dataclass
class Reconciliation:
    mismatches: list[Mismatch] = field(default_factory=list)
    pairing: list[int | None] = field(default_factory=list)  # receipt line index -> dispatch line index
    received: list[int] = field(default_factory=list)  # running total per dispatch line, this receipt included
    complete: bool = False  # everything announced has arrived (within tolerance)

    @property
    def matched(self) -> bool:
        return not self.mismatches


_SUFFIX = re.compile(r"^(.*?)(\d+)$")


def one_edit_apart(a: str, b: str) -> bool:
    """Levenshtein distance of exactly one, or two neighbouring characters swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diffs) == 1:
            return True
        if len(diffs) != 2 or diffs[1] != diffs[0] + 1:
            return False
        i, j = diffs
        return a[i] == b[j] and a[j] == b[i]
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long[i]:
        i += 1
    return short[i:] == long[i + 1 :]


def adjacent_codes(a: str, b: str) -> bool:
    """Same prefix and numeric suffixes one apart (``B240315`` / ``B240314``, ``L099`` / ``L100``)."""
    ma, mb = _SUFFIX.match(a), _SUFFIX.match(b)
    if not ma or not mb or ma.group(1) != mb.group(1):
        return False
    return abs(int(ma.group(2)) - int(mb.group(2))) == 1


def near_miss(expected: str, found: str) -> bool:
    e, f = expected.strip().upper(), found.strip().upper()
    return e != f and (one_edit_apart(e, f) or adjacent_codes(e, f))


def same_lot(a: str, b: str) -> bool:
    """Lot codes compare without case or surrounding blanks (scanners and keyboards differ on both)."""
    return a.strip().upper() == b.strip().upper()


def tolerance(quantity: int, pct: float) -> int:
    return int(quantity * pct / 100.0)


def expected_expiry(produced_on: date, shelf_life_days: int) -> date:
    return produced_on + timedelta(days=shelf_life_days)


def shelf_life_mismatch(line: ExpectedLine, tolerance_days: int) -> tuple[date, date] | None:
    """(what the SKU master implies, what the line says) when the dates disagree beyond the tolerance."""
    if line.produced_on is None or line.expires_on is None or not line.shelf_life_days:
        return None
    implied = expected_expiry(line.produced_on, line.shelf_life_days)
    if abs((line.expires_on - implied).days) > tolerance_days:
        return implied, line.expires_on
    return None


def pair(expected: list[ExpectedLine], line: ScannedLine, totals: list[int] | None = None) -> tuple[int | None, bool]:
    """The dispatch line a scanned line belongs to, and whether its lot code matches exactly.

    Goods that came on a pallet (SSCC) are judged against that pallet's lines when the notice has the SKU on it. An
    exact (SKU, lot) match wins (of several, one not yet fully received); else the SKU's line whose lot code is a near
    miss; else the SKU's only line.
    """
    if line.sku_id is None:
        return None, False
    candidates = [i for i, e in enumerate(expected) if e.sku_id == line.sku_id]
    on_unit = [i for i in candidates if line.sscc is not None and expected[i].sscc == line.sscc]
    candidates = on_unit or candidates
    exact = [i for i in candidates if same_lot(expected[i].lot_code, line.lot_code)]
    if exact:
        open_lines = [i for i in exact if totals is not None and totals[i] < expected[i].quantity]
        return (open_lines or exact)[0], True
    close = [i for i in candidates if near_miss(expected[i].lot_code, line.lot_code)]
    if close:
        return close[0], False
    if len(candidates) == 1:
        return candidates[0], False
    return None, False


def reconcile(
    expected: list[ExpectedLine],
    earlier: list[ScannedLine],
    current: list[ScannedLine],
    *,
    final: bool,
    quantity_tolerance_pct: float = 0.0,
    shelf_life_tolerance_days: int = 1,
) -> Reconciliation:
    """Judge the ``current`` receipt against the dispatch, given the lines of its ``earlier`` receipts."""
    result = Reconciliation()
    totals = [0] * len(expected)
    for line in earlier:
        index, _ = pair(expected, line, totals)
        if index is not None:
            totals[index] += line.quantity
    touched: set[int] = set()
    for n, line in enumerate(current):
        index, exact = pair(expected, line, totals)
        result.pairing.append(index)
        if index is None:
            result.mismatches.append(
                Mismatch(MismatchKind.unexpected_sku, n, None, None, line.sku_ref, sku_id=line.sku_id,
                         lot_code=line.lot_code)
            )
            continue
        want = expected[index]
        totals[index] += line.quantity
        touched.add(index)
        if not exact:
            result.mismatches.append(
                Mismatch(MismatchKind.lot_code, n, index, want.lot_code, line.lot_code,
                         near_miss=near_miss(want.lot_code, line.lot_code), sku_id=want.sku_id, lot_code=want.lot_code)
            )
        if line.expires_on is not None and want.expires_on is not None and line.expires_on != want.expires_on:
            result.mismatches.append(
                Mismatch(MismatchKind.expiry, n, index, want.expires_on.isoformat(), line.expires_on.isoformat(),
                         sku_id=want.sku_id, lot_code=want.lot_code)
            )
    for index in sorted(touched):
        want = expected[index]
        wrong_dates = shelf_life_mismatch(want, shelf_life_tolerance_days)
        if wrong_dates is not None:
            implied, stated = wrong_dates
            result.mismatches.append(
                Mismatch(MismatchKind.shelf_life, None, index, implied.isoformat(), stated.isoformat(),
                         sku_id=want.sku_id, lot_code=want.lot_code)
            )
        if totals[index] > want.quantity + tolerance(want.quantity, quantity_tolerance_pct):
            result.mismatches.append(
                Mismatch(MismatchKind.quantity_over, None, index, str(want.quantity), str(totals[index]),
                         sku_id=want.sku_id, lot_code=want.lot_code)
            )
    arrived = [totals[i] >= want.quantity - tolerance(want.quantity, quantity_tolerance_pct)
               for i, want in enumerate(expected)]
    if final:
        for index, want in enumerate(expected):
            if arrived[index]:
                continue
            kind = MismatchKind.missing_line if totals[index] == 0 else MismatchKind.quantity_short
            result.mismatches.append(
                Mismatch(kind, None, index, str(want.quantity), str(totals[index]), sku_id=want.sku_id,
                         lot_code=want.lot_code)
            )
    result.received = totals
    result.complete = all(arrived)
    return result


def recommendation(mismatches: list[Mismatch]) -> str:
    """What the receiver should do next, most urgent finding first."""
    kinds = {m.kind for m in mismatches}
    steps: list[str] = []
    if MismatchKind.lot_code in kinds:
        if any(m.near_miss for m in mismatches if m.kind == MismatchKind.lot_code):
            steps.append("re-scan the lot labels: the code differs by one character or one number from the notice")
        else:
            steps.append("check the lot labels against the dispatch notice with the shipper")
    if kinds & {MismatchKind.expiry, MismatchKind.shelf_life}:
        steps.append("confirm production and expiry dates with the shipper before selling the held lots")
    if MismatchKind.unexpected_sku in kinds:
        steps.append("quarantine the unexpected items and ask the shipper for a corrected notice or a return")
    if MismatchKind.quantity_over in kinds:
        steps.append("count again and agree the surplus with the shipper")
    if kinds & {MismatchKind.quantity_short, MismatchKind.missing_line}:
        steps.append("claim the shortfall from the shipper or carrier")
    if not steps:
        return ""
    text = "; ".join(steps)
    return text[0].upper() + text[1:] + "."
