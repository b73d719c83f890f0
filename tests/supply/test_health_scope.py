"""inventoryHealth reads positions, demand series and snapshots as flat index-prefix queries and checks the rest of
the filter itself: for every caller and filter it must read exactly what the stock sharing rule and the filter admit."""

from __future__ import annotations

import itertools
import uuid

from bson import ObjectId

from hub.auth import Principal
from hub.models.health import HealthSnapshot
from hub.models.planning import DemandSeries
from hub.models.sku import Sku
from hub.models.stock import StockPosition
from hub.services import health
from tenants.access import Access
from tenants.models import Scope as Sharing

DAY = "2030-06-30"


def access(tenant: str, *sharing_stock: str) -> Access:
    grants = {Sharing.stock: frozenset(sharing_stock)} if sharing_stock else {}
    return Access(Principal(tenant, "someone", "local", frozenset({"viewer"})), grants)


async def test_every_filter_reads_what_the_sharing_rule_and_the_filter_admit(module_hub, monkeypatch):
    run = uuid.uuid4().hex[:8]
    brand, shop, other, stranger = (f"{name}-{run}" for name in ("brand", "shop", "other", "stranger"))
    category = f"dairy-{run}"
    locations = [ObjectId() for _ in range(3)]
    skus = {brand: [ObjectId(), ObjectId()], other: [ObjectId()]}
    await Sku.get_pymongo_collection().insert_many([
        {"_id": sku, "tenant_id": owner, "code": f"S{n}-{run}", "name": "x", "category": category if n == 0 else None}
        for owner, owned in skus.items() for n, sku in enumerate(owned)])
    positions, series, snapshots = [], [], []
    # every holder holds every SKU at every location, twice (two lots), one of them sold out
    for holder, location, (owner, sku) in itertools.product(
            (brand, shop, stranger), locations, [(o, s) for o, owned in skus.items() for s in owned]):
        key = {"tenant_id": holder, "location_id": location, "sku_id": sku, "sku_owner_id": owner}
        positions += [{**key, "lot_id": ObjectId(), "on_hand": units} for units in (5, 0)]
        series.append({**key, "on_hand": 5, "days": {}})
        snapshots += [{**key, "day": day, "units": 5, "value": {}, "at_risk": {}} for day in (DAY, "2030-06-29")]
    await StockPosition.get_pymongo_collection().insert_many(positions)
    await DemandSeries.get_pymongo_collection().insert_many(series)
    await HealthSnapshot.get_pymongo_collection().insert_many(snapshots)

    def expected(docs, caller: Access, **f):
        me, vmi = caller.tenant_id, caller.sharing(Sharing.stock)
        sku_ids = {sku for owned in skus.values() for sku in owned}
        return {d["_id"] for d in docs
                if (d["tenant_id"] == me or (d["tenant_id"] in vmi and d["sku_owner_id"] == me))
                and d["sku_id"] in sku_ids  # this test's documents only
                and f.get("holder_id") in (None, d["tenant_id"])
                and f.get("location_id") in (None, d["location_id"])
                and f.get("sku_id") in (None, d["sku_id"])
                and (f.get("category") is None or d["sku_id"] == skus[d["sku_owner_id"]][0])}

    filters = [{}, {"location_id": locations[1]}, {"sku_id": skus[brand][1]}, {"sku_id": skus[other][0]},
               {"category": category}, {"holder_id": shop}, {"holder_id": brand, "location_id": locations[2]},
               {"location_id": locations[0], "sku_id": skus[brand][0]}, {"category": category, "holder_id": shop},
               {"location_id": locations[2], "category": category}]
    callers = [access(brand, shop), access(shop), access(brand), access(f"nobody-{run}")]
    # a category read SKU by SKU, and (a large one) holder by holder
    for per_sku_queries, caller, f in itertools.product((200, 0), callers, filters):
        monkeypatch.setattr(health, "PER_SKU_QUERIES", per_sku_queries)
        scope = await health.scope_of(caller, **f)
        found = await scope.find(StockPosition.get_pymongo_collection(), positive=True)
        assert {d["_id"] for d in found} == expected([p for p in positions if p["on_hand"] > 0], caller, **f), f
        found = await scope.find(DemandSeries.get_pymongo_collection())
        assert {d["_id"] for d in found} == expected(series, caller, **f), f
        found = await scope.find(HealthSnapshot.get_pymongo_collection(), day=DAY)
        assert {d["_id"] for d in found} == expected([s for s in snapshots if s["day"] == DAY], caller, **f), f
    # the brand sees its own stock and the shop's stock of its SKUs, never the stranger's nor the other brand's
    everything = await (await health.scope_of(callers[0])).find(StockPosition.get_pymongo_collection())
    assert {(d["tenant_id"], d["sku_owner_id"]) for d in everything} == {
        (brand, brand), (brand, other), (shop, brand)}
