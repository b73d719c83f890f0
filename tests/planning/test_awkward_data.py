"""Planning on awkward data an outside reviewer checks by hand: expired stock, stockouts, odd currencies."""

from __future__ import annotations

from datetime import timedelta

from tests.planning.conftest import noon, rhythm, today


async def test_a_source_whose_other_stock_is_expired_keeps_what_it_needs_itself(net):
    # given: ST-2 sells ~30 a day and has 40 left. WH-1 issues 10 a day; it holds 1,000 units of a lot that expired
    # two days ago (unsellable, it cannot cover anything) and 150 of a fresh lot: 15 days of its own issues, just
    # above its own order-up-to level of 10 x (7 lead + 7 review) = 140 (its issues never vary: no safety stock)
    await net.sku("SUN-50", shelfLifeDays=730)
    daily = [rhythm(91 - i) for i in range(91)]
    await net.history("ST-2", "SUN-50", daily, stock=sum(daily) + 40, lot="ST-LOT", expires_in=300)
    await net.history("WH-1", "SUN-50", [10] * 91, stock=910 + 1000, lot="WH-GONE", expires_in=-2, kind="issue")
    await net.move("WH-1", [{"sku": "SUN-50", "kind": "receipt", "quantity": 150, "lotCode": "WH-FRESH",
                             "expiresOn": (today() + timedelta(days=300)).isoformat(), "occurredAt": noon(2)}])

    # when
    await net.sweep()

    # then: the expired units are no surplus; taking the fresh lot would leave WH-1 with nothing to issue
    assert [r for r in await net.recommendations() if r["fromLocationCode"] == "WH-1"] == []
