"""Pallets and cases by SSCC: which goods a logistic unit carries, for receipts and sensors.

A dispatch line may name the logistic unit its goods travel on (``sscc``) and the pallet that unit is stacked on
(``in_sscc``: a case-level or layer SSCC on a pallet). What is "on" an SSCC is every line naming it either way, so
scanning a pallet receives its cases too, and a logger on a pallet watches them. The dispatch keeps the set of its
SSCCs (``Dispatch.ssccs``) so the lines of one unit are found through an index, scoped by the dispatch's parties.

A pallet no dispatch carries yet (packed in the tenant's warehouse, known from its own EPCIS aggregation events)
holds what its record lists: lot quantities (LGTIN) of lots the tenant holds in stock, and the cases (SSCCs) stacked
on it with theirs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from beanie import PydanticObjectId
from biip import ParseError
from biip.sscc import Sscc
from pymongo.asynchronous.client_session import AsyncClientSession

from hub import epc
from hub.dates import from_bson
from hub.errors import BadInput, NotFound
from hub.models.dispatch import Dispatch, DispatchLine, DispatchStatus
from hub.models.lot import Lot
from hub.models.pallet import Pallet
from hub.models.sku import Sku
from hub.models.stock import StockPosition
from tenants.access import Access


@dataclass(frozen=True)
class UnitLine:
    """A pallet or case given as a whole (an SSCC alone): it stands for its contents, as the dispatch lists them (on
    a receipt) or as the shipper's EPCIS aggregation events recorded them (on a dispatch)."""

    sscc: str
    field: str  # where it was given, for errors


def validate_sscc(value: str, field: str) -> str:
    """The SSCC-18 (digits only, check digit right) or BAD_USER_INPUT naming ``field``."""
    text = value.strip()
    if len(text) > 40:  # not echoed back: an SSCC is 18 digits
        raise BadInput(f"{field}: an SSCC is 18 digits", field=field)
    try:
        return Sscc.parse(text).value
    except ParseError as exc:
        raise BadInput(f"{field}: {exc}", field=field) from exc


def on_unit(line: DispatchLine, sscc: str) -> bool:
    return sscc in (line.sscc, line.in_sscc)


def unit_lines(dispatch: Dispatch, sscc: str) -> list[tuple[int, DispatchLine]]:
    """The dispatch's lines on ``sscc`` (the unit's own and those of units stacked on it), with their indexes."""
    return [(n, line) for n, line in enumerate(dispatch.lines) if on_unit(line, sscc)]


def dispatch_ssccs(lines: Iterable[DispatchLine]) -> list[str]:
    return sorted({unit for line in lines for unit in (line.sscc, line.in_sscc) if unit})


@dataclass(frozen=True)
class UnitGoods:
    """Goods of one lot on the watched units of one dispatch, and how many of that lot the dispatch carries."""

    dispatch_id: PydanticObjectId
    lot_id: PydanticObjectId
    lines: tuple[int, ...]  # indexes of the dispatch lines on the units
    units: int
    dispatch_units: int  # the whole dispatch's quantity of the lot: what "3 of 100 cases" counts against
    ssccs: tuple[str, ...]


async def dispatches_carrying(
    tenant_ids: Iterable[str], ssccs: Iterable[str], session: AsyncClientSession | None = None
) -> list[Dispatch]:
    """Dispatches (not cancelled) that carry any of ``ssccs`` and name one of ``tenant_ids`` as a party."""
    wanted, tenants = sorted(set(ssccs)), set(tenant_ids)
    if not wanted or not tenants:
        return []
    # By SSCC alone, then the parties: SecantusDB plans no index for two multikey fields in one filter, and an SSCC
    # is on a handful of dispatches at most.
    found = await Dispatch.find({"ssccs": {"$in": wanted}}, session=session).to_list()
    return sorted((d for d in found if tenants & set(d.parties) and d.status != DispatchStatus.cancelled),
                  key=lambda dispatch: dispatch.id)  # type: ignore[arg-type, return-value]


def goods_on(tenant_id: str, ssccs: Iterable[str], dispatches: Iterable[Dispatch]) -> list[UnitGoods]:
    """Per dispatch and lot, what ``tenant_id`` (a party) has on the units ``ssccs``: each unit on its latest
    dispatch only (a pallet relayed on a second leg is not counted twice)."""
    ssccs = list(ssccs)
    latest: dict[str, Dispatch] = {}
    for dispatch in sorted(dispatches, key=lambda d: d.id):  # type: ignore[arg-type, return-value]
        if tenant_id in dispatch.parties:
            latest.update({unit: dispatch for unit in ssccs if unit in dispatch.ssccs})
    result = []
    for dispatch in {id(d): d for d in latest.values()}.values():
        watched = {unit for unit, on in latest.items() if on is dispatch}
        per_lot: dict[PydanticObjectId, list[int]] = {}
        for n, line in enumerate(dispatch.lines):
            if watched & {line.sscc, line.in_sscc}:
                per_lot.setdefault(line.lot_id, []).append(n)
        for lot_id, indexes in per_lot.items():
            lines = [dispatch.lines[n] for n in indexes]
            result.append(UnitGoods(
                dispatch_id=dispatch.id,  # type: ignore[arg-type]
                lot_id=lot_id,
                lines=tuple(indexes),
                units=sum(line.quantity for line in lines),
                dispatch_units=sum(line.quantity for line in dispatch.lines if line.lot_id == lot_id),
                ssccs=tuple(sorted({u for line in lines for u in (line.sscc, line.in_sscc) if u in watched})),
            ))
    return result


@dataclass(frozen=True)
class PalletView:
    """One SSCC as the caller may see it: lines of dispatches it is a party to, and its own aggregation record."""

    sscc: str
    lines: list[tuple[Dispatch, int]]  # (dispatch, index of a line on the unit)
    aggregation: Pallet | None  # what the caller's EPCIS aggregation events said it holds


async def visible_pallet(access: Access, sscc: str) -> PalletView:
    """NOT_FOUND unless a dispatch the caller is a party to carries it or the caller's own events aggregated it."""
    sscc = validate_sscc(sscc, "sscc")
    carrying = await dispatches_carrying([access.tenant_id], [sscc])
    aggregation = await Pallet.find_one({"tenant_id": access.tenant_id, "sscc": sscc})
    lines = [(dispatch, n) for dispatch in carrying for n, _ in unit_lines(dispatch, sscc)]
    if not lines and aggregation is None:
        raise NotFound("pallet not found", field="sscc")
    return PalletView(sscc, lines, aggregation)


def unshipped(ssccs: Iterable[str], shipped: Iterable[UnitGoods]) -> list[str]:
    """The watched units no dispatch carries: their goods are what the packing record says."""
    on_dispatches = {unit for goods in shipped for unit in goods.ssccs}
    return [unit for unit in ssccs if unit not in on_dispatches]


@dataclass(frozen=True)
class PackedGoods:
    """Goods of one lot that a tenant's own aggregation record puts on a watched pallet (no dispatch carries it)."""

    pallet_id: PydanticObjectId
    sscc: str  # the watched unit (the pallet, or the case the goods are on)
    content: int  # index in the record's contents
    lot_id: PydanticObjectId
    units: int
    location_id: PydanticObjectId | None  # where the tenant's events last saw the pallet
    effective_expires_on: date | None  # shortened by an earlier excursion on this pallet


async def packed_goods(tenant_id: str, ssccs: Iterable[str], session: AsyncClientSession | None = None
                       ) -> list[PackedGoods]:
    """What the tenant's own aggregation records put on ``ssccs`` (and on the cases stacked on them), resolved to
    the lots it holds in stock; a quantity of a lot it holds none of is left out."""
    collection = Pallet.get_pymongo_collection()
    watched = sorted(set(ssccs))
    records = await collection.find({"tenant_id": tenant_id, "sscc": {"$in": watched}}, session=session).to_list(None)
    children = {}
    for record in records:
        for content in record.get("contents", []):
            key = epc.parse(content.get("epc", ""))
            if key is not None and key.kind == "sscc":
                children[key.value] = record
    if children:
        records += await collection.find({"tenant_id": tenant_id, "sscc": {"$in": sorted(children)}},
                                         session=session).to_list(None)
    counted = [(record, n, content) for record in records for n, content in enumerate(record.get("contents", []))
               if content.get("gtin") and content.get("lot_code") and content.get("uom") is None
               and float(content.get("quantity") or 0).is_integer() and (content.get("quantity") or 0) > 0]
    skus = {sku.gtin: sku.id async for sku in Sku.find({"gtin": {"$in": sorted({c["gtin"] for _, _, c in counted})}},
                                                      session=session)}
    # One indexed field per filter, the rest checked here: SecantusDB scans the collection for two lists.
    codes = {c["lot_code"] for _, _, c in counted}
    lots = {(lot["sku_id"], lot["lot_code"]): lot["_id"] for lot in await Lot.get_pymongo_collection().find(
        {"sku_id": {"$in": sorted(set(skus.values()))}}, {"sku_id": 1, "lot_code": 1}, session=session
    ).to_list(None) if lot["lot_code"] in codes}
    mine = {p["lot_id"] for p in await StockPosition.get_pymongo_collection().find(
        {"lot_id": {"$in": sorted(lots.values())}}, {"lot_id": 1, "tenant_id": 1}, session=session
    ).to_list(None) if p["tenant_id"] == tenant_id}
    held = {key: lot_id for key, lot_id in lots.items() if lot_id in mine}
    found = []
    for record, n, content in counted:
        lot_id = held.get((skus.get(content["gtin"]), content["lot_code"]))
        if lot_id is None:
            continue
        outer = children.get(record["sscc"])
        found.append(PackedGoods(
            pallet_id=record["_id"], sscc=record["sscc"] if outer is None else outer["sscc"], content=n,
            lot_id=lot_id, units=int(content["quantity"]),
            location_id=record.get("location_id") or (outer or {}).get("location_id"),
            effective_expires_on=from_bson(content.get("effective_expires_on")),
        ))
    return found
