"""Pallets and cases by SSCC on dispatches: which goods a logistic unit carries, for receipts and sensors.

A dispatch line may name the logistic unit its goods travel on (``sscc``) and the pallet that unit is stacked on
(``in_sscc``: a case-level or layer SSCC on a pallet). What is "on" an SSCC is every line naming it either way, so
scanning a pallet receives its cases too, and a logger on a pallet watches them. The dispatch keeps the set of its
SSCCs (``Dispatch.ssccs``) so the lines of one unit are found through an index, scoped by the dispatch's parties.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from beanie import PydanticObjectId
from biip import ParseError
from biip.sscc import Sscc
from pymongo.asynchronous.client_session import AsyncClientSession

from hub.errors import BadInput, NotFound
from hub.models.dispatch import Dispatch, DispatchLine, DispatchStatus
from hub.models.pallet import Pallet
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
