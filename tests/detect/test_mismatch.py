"""Reconciliation of receipts against dispatches: pure functions, no database."""

from __future__ import annotations

from datetime import date

from hub.detect.mismatch import (
    ExpectedLine,
    MismatchKind,
    ScannedLine,
    adjacent_codes,
    near_miss,
    one_edit_apart,
    recommendation,
    reconcile,
)

YOGURT = "sku-yogurt"
MILK = "sku-milk"
LINE = ExpectedLine(YOGURT, "B240315", 100, date(2024, 3, 15), date(2024, 4, 14), shelf_life_days=30)


def scan(
    quantity: int = 100, lot: str = "B240315", sku: str | None = YOGURT, expires: date | None = None
) -> ScannedLine:
    return ScannedLine(sku or "unknown-ref", sku, lot, quantity, expires)


def kinds(result) -> list[MismatchKind]:
    return [m.kind for m in result.mismatches]


def test_adjacent_numeric_suffixes_are_near_misses():
    assert adjacent_codes("B240315", "B240314")
    assert adjacent_codes("L099", "L100")
    assert not adjacent_codes("B240315", "B240317")
    assert not adjacent_codes("A240315", "B240314")


def test_one_edit_covers_substitution_insertion_deletion_and_swap():
    assert one_edit_apart("B240315", "B240815")
    assert one_edit_apart("B240315", "B24315")
    assert one_edit_apart("B240315", "B2403155")
    assert one_edit_apart("B240315", "B240351")
    assert not one_edit_apart("B240315", "B240315")
    assert not one_edit_apart("B240315", "X240399")


def test_near_miss_ignores_case_but_not_unrelated_codes():
    assert near_miss("b240315", "B240314")
    assert not near_miss("B240315", "b240315")  # same lot, not a miss
    assert not near_miss("B240315", "Q991122")


def test_exact_receipt_matches_and_completes_the_dispatch():
    result = reconcile([LINE], [], [scan()], final=False)
    assert result.matched and result.complete
    assert result.pairing == [0] and result.received == [100]


def test_scanning_the_neighbouring_lot_is_one_near_miss_lot_mismatch():
    result = reconcile([LINE], [], [scan(lot="B240314")], final=True)
    assert kinds(result) == [MismatchKind.lot_code]
    mismatch = result.mismatches[0]
    assert (mismatch.expected, mismatch.found, mismatch.near_miss) == ("B240315", "B240314", True)
    assert mismatch.line == 0 and mismatch.dispatch_line == 0 and mismatch.holds_lot
    assert result.complete  # the quantity counts against the announced lot: no false shortage


def test_an_unrelated_lot_code_is_a_mismatch_but_not_a_near_miss():
    result = reconcile([LINE], [], [scan(lot="ZZ0001")], final=False)
    assert kinds(result) == [MismatchKind.lot_code]
    assert not result.mismatches[0].near_miss


def test_short_delivery_is_judged_only_when_final():
    partial = reconcile([LINE], [], [scan(60)], final=False)
    assert partial.matched and not partial.complete
    final = reconcile([LINE], [], [scan(60)], final=True)
    assert kinds(final) == [MismatchKind.quantity_short]
    assert (final.mismatches[0].expected, final.mismatches[0].found) == ("100", "60")
    assert not final.mismatches[0].holds_lot


def test_over_delivery_shows_on_the_running_total():
    result = reconcile([LINE], [scan(80)], [scan(30)], final=False)
    assert kinds(result) == [MismatchKind.quantity_over]
    assert result.mismatches[0].found == "110"


def test_quantity_tolerance_absorbs_small_differences():
    assert reconcile([LINE], [], [scan(104)], final=True, quantity_tolerance_pct=5).matched
    assert reconcile([LINE], [], [scan(96)], final=True, quantity_tolerance_pct=5).matched
    short = reconcile([LINE], [], [scan(94)], final=True, quantity_tolerance_pct=5)
    assert kinds(short) == [MismatchKind.quantity_short]


def test_partial_receipts_complete_without_false_shortages():
    first = reconcile([LINE], [], [scan(40)], final=False)
    second = reconcile([LINE], [scan(40)], [scan(60)], final=False)
    assert first.matched and not first.complete
    assert second.matched and second.complete and second.received == [100]


def test_expiry_that_differs_from_the_notice_is_flagged():
    result = reconcile([LINE], [], [scan(expires=date(2024, 4, 20))], final=False)
    assert kinds(result) == [MismatchKind.expiry]
    assert (result.mismatches[0].expected, result.mismatches[0].found) == ("2024-04-14", "2024-04-20")


def test_unexpected_sku_and_unknown_references_are_flagged():
    result = reconcile([LINE], [], [scan(), scan(5, "M1", MILK), scan(2, "X", None)], final=False)
    assert kinds(result) == [MismatchKind.unexpected_sku, MismatchKind.unexpected_sku]
    assert [m.line for m in result.mismatches] == [1, 2]
    assert result.pairing == [0, None, None]


def test_missing_line_is_flagged_when_final():
    milk = ExpectedLine(MILK, "M0001", 20)
    result = reconcile([LINE, milk], [], [scan()], final=True)
    assert kinds(result) == [MismatchKind.missing_line]
    assert result.mismatches[0].dispatch_line == 1 and result.mismatches[0].line is None


def test_expiry_inconsistent_with_shelf_life_reveals_a_wrong_production_date():
    wrong = ExpectedLine(YOGURT, "B240315", 100, date(2024, 3, 5), date(2024, 4, 14), shelf_life_days=30)
    result = reconcile([wrong], [], [scan()], final=False)
    assert kinds(result) == [MismatchKind.shelf_life]
    assert (result.mismatches[0].expected, result.mismatches[0].found) == ("2024-04-04", "2024-04-14")


def test_shelf_life_check_allows_the_configured_tolerance():
    close = ExpectedLine(YOGURT, "B240315", 100, date(2024, 3, 15), date(2024, 4, 15), shelf_life_days=30)
    assert reconcile([close], [], [scan()], final=False, shelf_life_tolerance_days=1).matched
    assert not reconcile([close], [], [scan()], final=False, shelf_life_tolerance_days=0).matched


def test_two_lots_of_one_sku_pair_by_exact_then_near_code():
    other = ExpectedLine(YOGURT, "C100", 50)
    result = reconcile([LINE, other], [], [scan(50, "C101"), scan(100, "B240315")], final=True)
    assert result.pairing == [1, 0]
    assert kinds(result) == [MismatchKind.lot_code]


def test_recommendation_names_what_to_do():
    result = reconcile([LINE], [], [scan(60, "B240314")], final=True)
    text = recommendation(result.mismatches)
    assert text.startswith("Re-scan the lot labels") and "claim the shortfall" in text
    assert recommendation([]) == ""
