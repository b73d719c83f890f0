"""Transfer recommendations (refreshed by the planning sweep, accepted or dismissed by people), replenishment
suggestions, planning policies and the ``demand`` answer.

A recommendation moves stock between two locations of one holder (``internal``), or between two holders of a
SKU owner's goods (``partner``, vendor-managed inventory). The sweep refreshes the networks whose series changed: a
plan still proposed updates its open recommendation in place, one no longer proposed expires ("the situation
changed"), a dismissed one is not proposed again for ``DISMISS_QUIET_DAYS``. Accepting an internal one books a
``transfer_out``/``transfer_in`` pair per lot through the movement service, with idempotency keys derived from the
recommendation, in the transaction that marks it accepted: accepting twice books once.

Across holders, what each holder's own transfers leave is matched again over the SKU owner's network: the holders
that share ``stock`` with the owner, a pair only where the destination shares ``dispatches`` with the source. The
recommendation is the owner's alone (only it may see both holders' stock); accepting it drafts a dispatch from
source to destination, which the source confirms or cancels. The sharing rule is asked through
``planning_audience`` (tenants/access.py) at planning time and again, afresh, at acceptance.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from hub.dates import from_bson, to_bson, utcnow
from hub.db import Database
from hub.detect import demand as model
from hub.detect import transfers as plan
from hub.errors import BadInput, Conflict, NotFound
from hub.events.log import emit
from hub.models.alert import Alert, AlertKind, AlertStatus
from hub.models.dispatch import Dispatch, DispatchStatus
from hub.models.location import Location
from hub.models.lot import Lot, LotStatus
from hub.models.movement import MovementKind
from hub.models.planning import (
    DemandSeries,
    PlanningPolicy,
    RecommendationStatus,
    TransferKind,
    TransferLot,
    TransferRecommendation,
)
from hub.models.sku import Sku
from hub.services import demand
from hub.services import dispatches as dispatch_service
from hub.services import movements as movement_service
from hub.services.planning_audience import links, partner_audience
from hub.services.signals import Policy, SignalRules, SiteFacts, chunks, inbound_units, policies_for, positions_of
from hub.services.skus import resolve_skus
from tenants.access import Access, object_id
from tenants.models import Scope
from tenants.roles import Group

DISMISS_QUIET_DAYS = 7
REASON_LIMIT = 2000


async def _sku(access: Access, ref: str) -> Sku:
    found = (await resolve_skus(access, [ref])).get(ref.strip())
    if found is None:
        raise NotFound("sku not found", field="sku")
    return found


PARTNER = TransferKind.partner.value


def recommendation_filter(access: Access) -> dict[str, Any]:
    """Own recommendations, (VMI) those of holders sharing ``stock`` with the caller about the caller's SKUs, and the
    caller's cross-partner ones while both holders still share ``stock`` with it."""
    vmi = sorted(access.sharing(Scope.stock))
    return {"$or": [
        {"$and": [access.stock("read"), {"audience": access.tenant_id, "kind": {"$ne": PARTNER}}]},
        {"tenant_id": access.tenant_id, "kind": PARTNER, "from_holder_id": {"$in": vmi},
         "to_holder_id": {"$in": vmi}},
    ]}


Network = tuple[str, Any]  # (holder, SKU id)


async def site_facts(docs: list[dict[str, Any]], today: date) -> dict[Network, dict[Any, SiteFacts]]:
    """Rate, spread and on-hand of each series (what the sweep already knows of the series it judged)."""
    keys = [(d["tenant_id"], d["location_id"], d["sku_id"]) for d in docs]
    inbound = await inbound_units(keys)
    grid = demand.calendar(today)
    found: dict[Network, dict[Any, SiteFacts]] = {}
    for doc, key in zip(docs, keys):
        fitted = model.fit(demand.view(doc, today, days_of=grid).days, until=today)
        found.setdefault((key[0], key[2]), {})[key[1]] = SiteFacts(
            key[1], fitted.daily_mean if fitted else 0.0, fitted.residual_sd if fitted else None,
            int(doc.get("on_hand", 0)), inbound.get(key, 0), doc.get("sku_owner_id") or key[0])
    return found


async def complete_networks(known: dict[Network, dict[Any, SiteFacts]], today: date) -> None:
    """Add the sites of these networks that the caller did not judge (an incremental sweep judged only some)."""
    by_tenant: dict[str, list[Any]] = {}
    for tenant, sku in known:
        by_tenant.setdefault(tenant, []).append(sku)
    for tenant, skus in by_tenant.items():
        for part in chunks(skus):
            docs = [d async for d in DemandSeries.get_pymongo_collection().find(
                {"tenant_id": tenant, "sku_id": {"$in": part}})]
            missing = [d for d in docs if d["location_id"] not in known.get((tenant, d["sku_id"]), {})]
            for network, sites in (await site_facts(missing, today)).items():
                known.setdefault(network, {}).update(sites)


async def build_sites(known: dict[Network, dict[Any, SiteFacts]], rules: SignalRules, today: date
                      ) -> dict[Network, tuple[list[plan.Site], dict[str, Policy]]]:
    """Each network's sites with their sellable lots (released, not past expiry on ``today``), names and policies:
    a handful of queries for all of them."""
    keys = [(t, loc, sku) for (t, sku), sites in known.items() for loc in sites]
    policies = await policies_for(keys, rules)
    positions = [p for docs in (await positions_of(keys)).values() for p in docs]
    lot_ids = sorted({p["lot_id"] for p in positions if p.get("lot_id")})
    lots: dict[Any, Lot] = {}
    for part in chunks(lot_ids):
        lots.update({lot.id: lot async for lot in Lot.find({"_id": {"$in": part}})})
    location_ids = sorted({loc for _, loc, _ in keys})
    names: dict[Any, str] = {}
    for part in chunks(location_ids):
        names.update({loc["_id"]: loc["code"] async for loc in Location.get_pymongo_collection().find(
            {"_id": {"$in": part}}, {"code": 1})})
    at_site: dict[tuple[str, Any, Any], list[plan.LotAtSite]] = {}
    holders = {t for t, _, _ in keys}
    for p in positions:
        lot = lots.get(p.get("lot_id"))
        if lot is not None and lot.status != LotStatus.released:
            continue  # held stock cannot move to a shelf
        expires = min((d for d in (from_bson(p.get("effective_expires_on")), from_bson(p.get("expires_on")))
                       if d is not None), default=None)
        if expires is not None and expires < today:
            continue  # expired stock covers nobody's demand: counted as a surplus it would strip the source bare
        for t in holders:
            if (t, p["location_id"], p["sku_id"]) in policies:
                at_site.setdefault((t, p["location_id"], p["sku_id"]), []).append(plan.LotAtSite(
                    str(p["lot_id"]) if p.get("lot_id") else None, p.get("lot_code"), expires, p["on_hand"]))
    built: dict[Network, tuple[list[plan.Site], dict[str, Policy]]] = {}
    for (tenant, sku), sites in known.items():
        out = []
        for location, facts in sites.items():
            policy = policies[(tenant, location, sku)]
            here = at_site.get((tenant, location, sku), [])
            out.append(plan.Site(
                holder=tenant, location_id=str(location), location_code=names.get(location, str(location)),
                rate=facts.rate, on_hand=sum(l.on_hand for l in here), inbound=facts.inbound,
                lead_time_days=policy.lead_time_days, review_days=policy.review_days, target_days=policy.target_days,
                sigma=facts.sigma, lots=tuple(here),
            ))
        built[(tenant, sku)] = (out, {str(loc): policies[(tenant, loc, sku)] for loc in sites})
    return built


def _dedupe(tenant: str, sku_id: Any, source: str, destination: str, kind: TransferKind) -> str:
    prefix = "transfer" if kind == TransferKind.internal else "transfer:partner"
    return f"{prefix}:{tenant}:{sku_id}:{source}:{destination}"


async def refresh(database: Database, known: dict[Network, dict[Any, SiteFacts]], today: date, rules: SignalRules,
                  complete: bool = True) -> int:
    """Re-plan the (holder, SKU) networks whose series were judged; answers how many recommendations are open for
    them afterwards. ``complete``: ``known`` holds every site of those networks (a full sweep)."""
    if not complete:
        await complete_networks(known, today)
    tenants = sorted({t for t, _ in known})
    still_open: set[Network] = set()
    if tenants:
        async for doc in TransferRecommendation.get_pymongo_collection().find(
            {"status": RecommendationStatus.open.value, "tenant_id": {"$in": tenants}, "kind": {"$ne": PARTNER}},
            {"tenant_id": 1, "sku_id": 1},
        ):
            if (doc["tenant_id"], doc["sku_id"]) in known:
                still_open.add((doc["tenant_id"], doc["sku_id"]))
    # Lots are read only where a transfer is possible: a network with a site that will run out and another site.
    multi = {n: sites for n, sites in known.items() if len(sites) > 1}
    policies = await policies_for([(t, loc, sku) for (t, sku), sites in multi.items() for loc in sites], rules)
    expired = await expired_sites(tenants)
    needy = {
        (t, sku): sites for (t, sku), sites in multi.items()
        if any(plan.need(_bare(t, facts, policies[(t, loc, sku)]), rules.planning) > 0 or (t, loc, sku) in expired
               for loc, facts in sites.items())
    }
    built = await build_sites(needy, rules, today)
    plans = {n: plan.plan_transfers(sites, today, rules.planning) for n, (sites, _) in built.items()}
    plans.update({n: [] for n in still_open if n not in plans})
    touched = [n for n in plans if plans[n] or n in still_open]
    skus = {s.id: s async for s in Sku.find({"_id": {"$in": sorted({sku for _, sku in touched})}})} if touched else {}
    open_count = 0
    for tenant, sku_id in touched:

        async def work(session: AsyncClientSession, tenant: str = tenant, sku_id: Any = sku_id) -> int:
            return await _store(session, tenant, sku_id, skus.get(sku_id), plans[(tenant, sku_id)], today)

        open_count += await database.in_transaction(work)
    return open_count + await _refresh_partners(database, known, plans, today, rules, expired)


async def expired_sites(tenants: list[str]) -> set[tuple[str, Any, Any]]:
    """(holder, location, SKU) holding expired stock (an open ``expiry_risk`` alert saying so): the series' on-hand
    counts those units, so a site living on them looks covered until its sellable lots are read. Per holder and
    status, an index's equality prefix; the kind and reason are checked here."""
    found: set[tuple[str, Any, Any]] = set()
    for tenant in tenants:
        for status in (AlertStatus.open.value, AlertStatus.acknowledged.value):
            async for a in Alert.get_pymongo_collection().find({"tenant_id": tenant, "status": status},
                                                               {"kind": 1, "subjects": 1, "evidence.reason": 1}):
                if a.get("kind") != AlertKind.expiry_risk.value or a.get("evidence", {}).get("reason") != "expired":
                    continue
                ids = {s["kind"]: s["id"] for s in a.get("subjects", [])}
                if ObjectId.is_valid(ids.get("location", "")) and ObjectId.is_valid(ids.get("sku", "")):
                    found.add((tenant, ObjectId(ids["location"]), ObjectId(ids["sku"])))
    return found


def _after(sites: list[plan.Site], plans: list[plan.TransferPlan]) -> dict[str, plan.Site]:
    """The sites as a holder's own transfers leave them: sources give their lots, destinations expect them."""
    out = {s.location_id: s for s in sites}
    for p in plans:
        source, dest = out[p.source.location_id], out[p.destination.location_id]
        out[source.location_id] = replace(source, on_hand=source.on_hand - p.quantity,
                                          lots=tuple(plan.without(source.lots, p.lots)))
        out[dest.location_id] = replace(dest, inbound=dest.inbound + p.quantity)
    return out


async def _refresh_partners(database: Database, known: dict[Network, dict[Any, SiteFacts]],
                            internal: dict[Network, list[plan.TransferPlan]], today: date, rules: SignalRules,
                            expired: set[tuple[str, Any, Any]]) -> int:
    """Cross-partner recommendations for the SKUs whose series were judged: a holder's site that will still run
    out after its own transfers, and another holder of the same owner's SKU with surplus."""
    skus_seen = {sku for _, sku in known}
    still_open = {(doc["tenant_id"], doc["sku_id"]) async for doc in TransferRecommendation.get_pymongo_collection()
                  .find({"status": RecommendationStatus.open.value, "kind": PARTNER}, {"tenant_id": 1, "sku_id": 1})
                  if doc["sku_id"] in skus_seen}
    held = [(t, loc, sku) for (t, sku), sites in known.items() for loc, f in sites.items() if f.sku_owner != t]
    if held:  # only stock its holder shares with the SKU's owner may be planned across partners
        link = await links({t for t, _, _ in held})
        held = [(t, loc, sku) for t, loc, sku in held if link(t, known[(t, sku)][loc].sku_owner, Scope.stock)]
    policies: dict[tuple[str, Any, Any], Policy] = {}
    for start in range(0, len(held), 500):
        policies.update(await policies_for(held[start:start + 500], rules))
    needy: set[Network] = set()
    for tenant, location, sku in held:
        facts = known[(tenant, sku)][location]
        incoming = sum(p.quantity for p in internal.get((tenant, sku), [])
                       if p.destination.location_id == str(location))
        bare = _bare(tenant, facts, policies[(tenant, location, sku)])
        if plan.need(replace(bare, inbound=bare.inbound + incoming), rules.planning) > 0 \
                or (tenant, location, sku) in expired:
            needy.add((facts.sku_owner, sku))
    plans: dict[Network, list[plan.TransferPlan]] = {n: [] for n in still_open}
    for owner, sku in sorted(needy, key=str):
        plans[(owner, sku)] = await _plan_partners(owner, sku, known, internal, today, rules)
    touched = [n for n in plans if plans[n] or n in still_open]
    skus = {s.id: s async for s in Sku.find({"_id": {"$in": sorted({sku for _, sku in touched})}})} if touched else {}
    count = 0
    for owner, sku_id in touched:

        async def work(session: AsyncClientSession, owner: str = owner, sku_id: Any = sku_id) -> int:
            return await _store(session, owner, sku_id, skus.get(sku_id), plans[(owner, sku_id)], today,
                                TransferKind.partner)

        count += await database.in_transaction(work)
    return count


async def _plan_partners(owner: str, sku: Any, known: dict[Network, dict[Any, SiteFacts]],
                         internal: dict[Network, list[plan.TransferPlan]], today: date,
                         rules: SignalRules) -> list[plan.TransferPlan]:
    docs = [d async for d in DemandSeries.get_pymongo_collection().find({"sku_owner_id": owner, "sku_id": sku})
            if d["tenant_id"] != owner]
    link = await links({d["tenant_id"] for d in docs})
    sharing = {d["tenant_id"] for d in docs if link(d["tenant_id"], owner, Scope.stock)}
    if len(sharing) < 2:
        return []
    network: dict[Network, dict[Any, SiteFacts]] = {
        (t, s): found for (t, s), found in known.items() if s == sku and t in sharing}
    missing = [d for d in docs if d["tenant_id"] in sharing
               and d["location_id"] not in network.get((d["tenant_id"], sku), {})]
    for key, found in (await site_facts(missing, today)).items():
        network.setdefault(key, {}).update(found)
    built = await build_sites(network, rules, today)
    drafted = await _drafted(sharing, sku)
    sites: list[plan.Site] = []
    for (holder, _), (held, _policies) in built.items():
        # Goods cross partners as lots on a dispatch: untracked stock stays where it is, and what an accepted
        # recommendation already drafted is spoken for.
        tracked = []
        for site in held:
            lots = tuple(
                replace(l, on_hand=max(l.on_hand - drafted.get((holder, site.location_id, l.lot_code or ""), 0), 0))
                for l in site.lots if l.lot_id)
            tracked.append(replace(site, lots=lots, on_hand=sum(l.on_hand for l in lots)))
        sites += _after(tracked, internal.get((holder, sku), [])).values()

    def allowed(source: plan.Site, destination: plan.Site) -> bool:
        return source.holder != destination.holder and link(destination.holder, source.holder, Scope.dispatches)

    return plan.plan_transfers(sites, today, rules.planning, allowed)


async def _drafted(holders: set[str], sku: Any) -> dict[tuple[str, str, str], int]:
    """Units of ``sku`` on the holders' draft dispatches, per (holder, source location, lot code)."""
    found: dict[tuple[str, str, str], int] = {}
    async for d in Dispatch.find({"tenant_id": {"$in": sorted(holders)}, "status": DispatchStatus.draft.value,
                                  "lines.sku_id": sku}):
        for line in d.lines:
            if line.sku_id == sku:
                key = (d.tenant_id, str(d.from_location_id), line.lot_code)
                found[key] = found.get(key, 0) + line.quantity
    return found


def _bare(tenant: str, facts: SiteFacts, policy: Policy) -> plan.Site:
    """A site without its lots: enough to tell whether it needs stock."""
    return plan.Site(holder=tenant, location_id=str(facts.location_id), location_code="", rate=facts.rate,
                     on_hand=facts.on_hand, inbound=facts.inbound, lead_time_days=policy.lead_time_days,
                     review_days=policy.review_days, target_days=policy.target_days, sigma=facts.sigma)


async def _store(session: AsyncClientSession, tenant: str, sku_id: Any, sku: Sku | None,
                 plans: list[plan.TransferPlan], today: date, kind: TransferKind = TransferKind.internal) -> int:
    collection = TransferRecommendation.get_pymongo_collection()
    now = utcnow()
    proposed: set[str] = set()
    quiet_since = now - timedelta(days=DISMISS_QUIET_DAYS)
    if kind == TransferKind.partner:
        audience = [tenant]  # the holders hear of it as a draft dispatch once the owner accepts it
    else:
        audience = sorted({tenant, *(await partner_audience(tenant, sku.tenant_id, Scope.stock) if sku else [])})
    for p in plans:
        key = _dedupe(tenant, sku_id, p.source.location_id, p.destination.location_id, kind)
        if await collection.find_one({"dedupe_key": key, "status": RecommendationStatus.dismissed.value,
                                      "decided_at": {"$gte": quiet_since}}, session=session):
            continue
        proposed.add(key)
        fields = {
            "tenant_id": tenant, "kind": kind.value, "audience": audience, "sku_id": sku_id,
            "from_holder_id": p.source.holder, "to_holder_id": p.destination.holder,
            "sku_code": sku.code if sku else str(sku_id),
            "sku_owner_id": sku.tenant_id if sku else tenant,
            "from_location_id": ObjectId(p.source.location_id), "from_location_code": p.source.location_code,
            "to_location_id": ObjectId(p.destination.location_id), "to_location_code": p.destination.location_code,
            "quantity": p.quantity,
            "lots": [TransferLot(lot_id=ObjectId(l.lot_id) if l.lot_id else None, lot_code=l.lot_code,
                                 quantity=l.on_hand, expires_on=l.expires_on).model_dump() for l in p.lots],
            "units_saved_from_expiry": p.units_saved_from_expiry,
            "stockout_days_avoided": round(p.stockout_days_avoided, 1),
            "evidence": {
                "evaluatedOn": today.isoformat(),
                "destination": _site_figures(p.destination),
                "source": _site_figures(p.source),
            },
            "updated_at": now,
        }
        for lot in fields["lots"]:
            lot["expires_on"] = to_bson(lot["expires_on"])
        stored = await collection.update_one(
            {"dedupe_key": key, "status": RecommendationStatus.open.value},
            {"$set": fields, "$setOnInsert": {"created_at": now, "booked_keys": []}},
            upsert=True, session=session,
        )
        if stored.upserted_id is not None:  # refreshed figures of an open one are no news
            await recommendation_event(session, "recommendation.created", {"_id": stored.upserted_id})
    stale = {"tenant_id": tenant, "sku_id": sku_id, "status": RecommendationStatus.open.value,
             "kind": PARTNER if kind == TransferKind.partner else {"$ne": PARTNER},
             "dedupe_key": {"$nin": sorted(proposed)}}
    expiring = await collection.find(stale, {"_id": 1}, session=session).to_list(None)
    await collection.update_many(stale, {"$set": {
        "status": RecommendationStatus.expired.value, "decided_at": now, "decided_by": "system:planning",
        "reason": "the situation changed: no longer needed or no longer possible", "updated_at": now}},
        session=session)
    for doc in expiring:
        await recommendation_event(session, "recommendation.dismissed", doc)
    return len(proposed)


async def recommendation_event(session: AsyncClientSession, event_type: str, doc: dict[str, Any]) -> None:
    """A ``recommendation.*`` event of the recommendation as stored now (``doc``: it, or just its ``_id``), heard
    by its audience: the holder, and the SKU owner while the holder shares ``stock`` with it."""
    if "status" not in doc:
        found = await TransferRecommendation.get_pymongo_collection().find_one({"_id": doc["_id"]}, session=session)
        if found is None:
            return
        doc = found
    await emit(session, event_type, doc["tenant_id"], doc.get("audience", []), {"recommendation": {
        "id": str(doc["_id"]), "ownerId": doc["tenant_id"], "kind": doc.get("kind", TransferKind.internal.value),
        "status": doc["status"], "skuId": str(doc["sku_id"]), "skuCode": doc["sku_code"],
        "skuOwnerId": doc["sku_owner_id"], "fromLocationId": str(doc["from_location_id"]),
        "toLocationId": str(doc["to_location_id"]), "quantity": doc["quantity"],
        "lots": [{"lotId": str(lot["lot_id"]) if lot.get("lot_id") else None, "lotCode": lot.get("lot_code"),
                  "quantity": lot["quantity"], "expiresOn": _day(lot.get("expires_on"))}
                 for lot in doc.get("lots", [])],
        "unitsSavedFromExpiry": doc.get("units_saved_from_expiry", 0),
        "stockoutDaysAvoided": doc.get("stockout_days_avoided", 0.0),
        "dispatchId": str(doc["dispatch_id"]) if doc.get("dispatch_id") else None, "reason": doc.get("reason"),
        "updatedAt": doc["updated_at"].isoformat(),
    }})


def _day(value: Any) -> str | None:
    day = from_bson(value)
    return day.isoformat() if day is not None else None


def _site_figures(site: plan.Site) -> dict[str, Any]:
    return {
        "holderId": site.holder, "locationCode": site.location_code, "onHand": site.on_hand, "inbound": site.inbound,
        "forecastPerDay": round(site.rate, 3), "leadTimeDays": site.lead_time_days,
        "daysOfSupply": round(site.on_hand / site.rate, 1) if site.rate > 0 else None,
    }


async def list_recommendations(access: Access, statuses: list[RecommendationStatus] | None = None,
                               sku_id: str | None = None, location_id: str | None = None) -> dict[str, Any]:
    """The Mongo filter for ``transferRecommendations``: visibility first, then the caller's filter."""
    clauses: list[dict[str, Any]] = [recommendation_filter(access)]
    if statuses:
        clauses.append({"status": {"$in": [s.value for s in statuses]}})
    if sku_id:
        clauses.append({"sku_id": object_id(sku_id, "sku")})
    if location_id:
        loc = object_id(location_id, "location")
        clauses.append({"$or": [{"from_location_id": loc}, {"to_location_id": loc}]})
    return {"$and": clauses}


async def accept(access: Access, database: Database, recommendation_id: str) -> TransferRecommendation:
    """Book the transfer once: accepting an accepted recommendation answers it unchanged."""
    access.require(Group.decisions)
    found = await access.get(TransferRecommendation, recommendation_id, recommendation_filter(access),
                             "transfer recommendation")
    if found.tenant_id != access.tenant_id:
        raise NotFound("transfer recommendation not found")  # a VMI partner reads it; the holder books it
    if found.status == RecommendationStatus.accepted:
        return found
    if found.status != RecommendationStatus.open:
        raise Conflict(f"transfer recommendation is {found.status.value}")
    if found.kind == TransferKind.partner:
        return await _accept_partner(access, database, found)
    items: list[movement_service.MovementInput] = []
    lots = found.lots or [TransferLot(quantity=found.quantity)]
    for n, lot in enumerate(lots):
        for side, location, sign, kind in (("out", found.from_location_id, -1, MovementKind.transfer_out),
                                           ("in", found.to_location_id, 1, MovementKind.transfer_in)):
            items.append(movement_service.MovementInput(
                location_id=str(location), sku=str(found.sku_id), kind=kind, quantity=sign * lot.quantity,
                idempotency_key=f"transfer:{found.id}:{n}:{side}", lot_code=lot.lot_code,
                reference=f"transfer_recommendation:{found.id}",
            ))
    now = utcnow()

    async def work(session: AsyncClientSession) -> TransferRecommendation:
        current = await TransferRecommendation.get_pymongo_collection().find_one({"_id": found.id}, session=session)
        if current is None:
            raise NotFound("transfer recommendation not found")
        if current["status"] == RecommendationStatus.accepted.value:
            return TransferRecommendation.model_validate(current)
        if current["status"] != RecommendationStatus.open.value:
            raise Conflict(f"transfer recommendation is {current['status']}")
        batch = await movement_service.prepare(access, items, session=session)
        # Planned from sellable lots; a lot held, recalled or past expiry since then must not go to another shelf.
        for lot in {p.lot.id: p.lot for p in batch if p.lot is not None}.values():
            expires = min((d for d in (lot.effective_expires_on, lot.expires_on) if d is not None), default=None)
            if lot.status != LotStatus.released or (expires is not None and expires < now.date()):
                state = lot.status.value if lot.status != LotStatus.released else f"past its expiry ({expires})"
                raise Conflict(f"the situation changed, the transfer cannot be booked: lot {lot.lot_code} is {state}")
        try:
            await movement_service.apply(session, access.tenant_id, batch)
        except BadInput as exc:
            raise Conflict(f"the situation changed, the transfer cannot be booked: {exc.message}") from None
        raw = await TransferRecommendation.get_pymongo_collection().find_one_and_update(
            {"_id": found.id, "status": RecommendationStatus.open.value},
            {"$set": {"status": RecommendationStatus.accepted.value, "decided_at": now,
                      "decided_by": f"{access.tenant_id}:{access.principal.subject}", "updated_at": now,
                      "booked_keys": [i.idempotency_key for i in items]}},
            return_document=ReturnDocument.AFTER, session=session,
        )
        if raw is None:
            raise Conflict("transfer recommendation changed meanwhile; reload it")
        await recommendation_event(session, "recommendation.accepted", raw)
        return TransferRecommendation.model_validate(raw)

    return await movement_service.run_batch(database, work)


async def _accept_partner(access: Access, database: Database, found: TransferRecommendation
                          ) -> TransferRecommendation:
    """Draft the dispatch from the source holder to the destination holder, once (its ref is derived from the
    recommendation), in the transaction that marks the recommendation accepted."""
    source, destination = found.from_holder_id or "", found.to_holder_id or ""
    link = await links([source, destination])
    if not link(destination, source, Scope.dispatches):
        raise Conflict(f"{destination} does not accept dispatches from {source}: the transfer cannot be drafted")
    sku = await Sku.find_one({"_id": found.sku_id})
    if sku is None or sku.tenant_id != access.tenant_id or not found.lots:
        raise Conflict("the transfer cannot be drafted: reload it")
    ref = f"TR-{found.id}"
    now = utcnow()

    async def work(session: AsyncClientSession) -> TransferRecommendation:
        current = await TransferRecommendation.get_pymongo_collection().find_one({"_id": found.id}, session=session)
        if current is None:
            raise NotFound("transfer recommendation not found")
        if current["status"] == RecommendationStatus.accepted.value:
            return TransferRecommendation.model_validate(current)
        if current["status"] != RecommendationStatus.open.value:
            raise Conflict(f"transfer recommendation is {current['status']}")
        lines = [dispatch_service.DraftLine(lot.lot_code or "", lot.quantity) for lot in found.lots]
        try:
            dispatch = await dispatch_service.draft_dispatch(
                session, access, sku, ref, source, found.from_location_id, destination, found.to_location_id, lines)
        except NotFound as exc:
            raise Conflict(f"the situation changed, the transfer cannot be drafted: {exc.message}") from None
        raw = await TransferRecommendation.get_pymongo_collection().find_one_and_update(
            {"_id": found.id, "status": RecommendationStatus.open.value},
            {"$set": {"status": RecommendationStatus.accepted.value, "decided_at": now,
                      "decided_by": f"{access.tenant_id}:{access.principal.subject}", "updated_at": now,
                      "dispatch_id": dispatch.id, "dispatch_ref": dispatch.ref}},
            return_document=ReturnDocument.AFTER, session=session,
        )
        if raw is None:
            raise Conflict("transfer recommendation changed meanwhile; reload it")
        await recommendation_event(session, "recommendation.accepted", raw)
        return TransferRecommendation.model_validate(raw)

    return await database.in_transaction(work)


async def dismiss(access: Access, database: Database, recommendation_id: str, reason: str) -> TransferRecommendation:
    access.require(Group.decisions)
    reason = (reason or "").strip()
    if not reason or len(reason) > REASON_LIMIT:
        raise BadInput(f"a reason of 1-{REASON_LIMIT} characters is required", field="reason")
    found = await access.get(TransferRecommendation, recommendation_id, recommendation_filter(access),
                             "transfer recommendation")
    if found.tenant_id != access.tenant_id:
        raise NotFound("transfer recommendation not found")
    if found.status == RecommendationStatus.dismissed:
        return found
    if found.status != RecommendationStatus.open:
        raise Conflict(f"transfer recommendation is {found.status.value}")
    now = utcnow()

    async def work(session: AsyncClientSession) -> dict[str, Any]:
        raw = await TransferRecommendation.get_pymongo_collection().find_one_and_update(
            {"_id": found.id, "status": RecommendationStatus.open.value},
            {"$set": {"status": RecommendationStatus.dismissed.value, "decided_at": now, "reason": reason,
                      "decided_by": f"{access.tenant_id}:{access.principal.subject}", "updated_at": now}},
            return_document=ReturnDocument.AFTER, session=session,
        )
        if raw is None:
            raise Conflict("transfer recommendation changed meanwhile; reload it")
        await recommendation_event(session, "recommendation.dismissed", raw)
        return raw

    return TransferRecommendation.model_validate(await database.in_transaction(work))


@dataclass
class PolicyInput:
    sku: str
    location_id: str | None = None
    lead_time_days: float | None = None
    review_days: float | None = None
    target_days_of_supply: float | None = None
    max_days_of_supply: float | None = None
    discontinued: bool = False


async def set_policy(access: Access, data: PolicyInput) -> PlanningPolicy:
    """Upsert the caller's planning policy for a SKU it can see, at one of its locations or all of them."""
    access.require(Group.master_data)
    for name in ("lead_time_days", "review_days", "target_days_of_supply", "max_days_of_supply"):
        value = getattr(data, name)
        if value is not None and not (0 <= value <= 3650):
            raise BadInput(f"{name} must be between 0 and 3650 days", field=name)
    sku = await _sku(access, data.sku)
    location = None
    if data.location_id is not None:
        location = await access.get(Location, data.location_id, access.locations("write"), "location")
    fields = {"lead_time_days": data.lead_time_days, "review_days": data.review_days,
              "target_days_of_supply": data.target_days_of_supply, "max_days_of_supply": data.max_days_of_supply,
              "discontinued": data.discontinued, "updated_at": utcnow()}
    raw = await PlanningPolicy.get_pymongo_collection().find_one_and_update(
        {"tenant_id": access.tenant_id, "sku_id": sku.id, "location_id": location.id if location else None},
        {"$set": fields}, upsert=True, return_document=ReturnDocument.AFTER,
    )
    return PlanningPolicy.model_validate(raw)


@dataclass
class DemandAnswer:
    sku: Sku
    location: str
    holder: str
    answer: model.Demand


async def demand_of(access: Access, sku_ref: str, location_id: str, today: date, horizon: int) -> DemandAnswer:
    """The demand of a SKU at a location the caller holds, or (VMI) a partner's location holding the caller's SKU."""
    if not 1 <= horizon <= 366:
        raise BadInput("days must be 1-366", field="days")
    sku = await _sku(access, sku_ref)
    location = object_id(location_id, "location")
    raw = await DemandSeries.get_pymongo_collection().find_one(
        {"$and": [access.stock("read"), {"location_id": location, "sku_id": sku.id}]})
    if raw is None:
        own = await Location.find_one({"_id": location, **access.locations("read")})
        if own is None:
            raise NotFound("location not found")
        raw = {"tenant_id": access.tenant_id, "location_id": location, "sku_id": sku.id, "on_hand": 0, "days": {}}
    view = demand.view(raw, today)
    return DemandAnswer(sku, str(location), raw["tenant_id"], model.demand(view.days, today, horizon))


@dataclass
class Suggestion:
    sku: Sku | None
    location_id: str
    location_code: str
    replenishment: plan.Replenishment
    transfers: list[TransferRecommendation]

    @property
    def transfer_units(self) -> int:
        return min(sum(t.quantity for t in self.transfers), self.replenishment.quantity)

    @property
    def purchase_units(self) -> int:
        return self.replenishment.quantity - self.transfer_units


async def replenishment_suggestions(access: Access, today: date, rules: SignalRules, sku_id: str | None = None,
                                    location_id: str | None = None) -> list[Suggestion]:
    """Forecast-driven order quantities for the caller's positions with a lead time set; as transfers first where
    an open recommendation brings stock from a surplus, the rest as a purchase."""
    query: dict[str, Any] = {"tenant_id": access.tenant_id, "lead_time_days": {"$ne": None}}
    if sku_id:
        query["sku_id"] = object_id(sku_id, "sku")
    networks = {p.sku_id async for p in PlanningPolicy.find(query)}
    suggestions: list[Suggestion] = []
    wanted_location = object_id(location_id, "location") if location_id else None
    docs = [d async for d in DemandSeries.get_pymongo_collection().find(
        {"tenant_id": access.tenant_id, "sku_id": {"$in": sorted(networks)}})] if networks else []
    built = await build_sites(await site_facts(docs, today), rules, today)
    skus = {s.id: s async for s in Sku.find({"_id": {"$in": sorted(networks)}})} if networks else {}
    for (_, network_sku), (sites, policies) in built.items():
        sku = skus.get(network_sku)
        for site in sites:
            if not policies[site.location_id].lead_time_set:
                continue
            if wanted_location is not None and site.location_id != str(wanted_location):
                continue
            suggestion = plan.replenishment(site, rules.planning)
            if suggestion is None:
                continue
            incoming = await TransferRecommendation.find({
                "tenant_id": access.tenant_id, "sku_id": network_sku, "to_location_id": ObjectId(site.location_id),
                "status": RecommendationStatus.open.value}).to_list()
            suggestions.append(Suggestion(sku, site.location_id, site.location_code, suggestion, incoming))
    return suggestions
