"""CSV import of master data and opening stock: SKUs, locations and stock counts, the way spreadsheets arrive.

Headers are matched by name, forgiving case, spaces and common synonyms (``EAN`` is a GTIN, ``Batch`` a lot), or by
an explicit mapping; unknown columns are listed and ignored. Every row is checked with the same rules as the API
(``BAD_USER_INPUT`` reasons become report lines naming the row and column). ``all_or_nothing`` writes nothing when
any row is bad; otherwise the valid rows are written and the bad ones reported. Writing is idempotent: SKUs and
locations are upserted by code (an unchanged row changes nothing), stock rows are ``count`` movements whose
idempotency key is the row's content, so importing the same file twice books nothing twice.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pymongo import InsertOne, UpdateOne
from pymongo.errors import BulkWriteError

from hub.dates import RANGE_MESSAGE, in_range, utcnow
from hub.db import Database
from hub.errors import BadInput, Conflict, HubError
from hub.gs1 import validate_gln
from hub.models.location import Location, LocationKind
from hub.models.movement import MovementKind
from hub.models.sku import Sku, Storage
from hub.services import movements as movement_service
from hub.services import skus as sku_service
from hub.services.text import CODE_MAX, NAME_MAX, clean_text
from tenants.access import Access
from tenants.roles import Group

KINDS = ("skus", "locations", "stock")
MAX_ROWS = 1_000_000
CHUNK = 1000  # rows per bulk write (and movements per batch)
# Target field -> header names that mean it (compared after normalising: lower case, non-alphanumerics dropped).
COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "skus": {
        "code": ("code", "sku", "skucode", "item", "itemcode", "article", "articlenumber"),
        "name": ("name", "description", "itemname", "productname"),
        "gtin": ("gtin", "ean", "upc", "barcode", "gtin14", "gtin13"),
        "unit": ("unit", "uom", "baseunit"),
        "pack_size": ("packsize", "pack", "casesize", "unitspercase"),
        "shelf_life_days": ("shelflifedays", "shelflife"),
        "min_remaining_shelf_life_days": ("minremainingshelflifedays", "minremainingshelflife", "mrsl"),
        "unit_cost": ("unitcost", "cost", "standardcost"),
        "currency": ("currency",),
        "category": ("category", "productgroup", "group"),
        "temp_min_c": ("tempminc", "tempmin", "mintemp"),
        "temp_max_c": ("tempmaxc", "tempmax", "maxtemp"),
    },
    "locations": {
        "code": ("code", "location", "locationcode", "site"),
        "name": ("name", "description", "locationname"),
        "kind": ("kind", "type", "locationtype"),
        "gln": ("gln",),
    },
    "stock": {
        "location": ("location", "locationcode", "site", "warehouse"),
        "sku": ("sku", "skucode", "code", "item", "gtin", "ean"),
        "lot_code": ("lotcode", "lot", "batch", "batchcode"),
        "quantity": ("quantity", "qty", "onhand", "count", "counted"),
        "expires_on": ("expireson", "expiry", "expirydate", "bestbefore"),
    },
}
REQUIRED = {"skus": ("code", "name"), "locations": ("code", "name", "kind"), "stock": ("location", "sku", "quantity")}


@dataclass
class RowError:
    row: int  # as a spreadsheet numbers it: the header is row 1
    column: str | None
    reason: str


@dataclass
class ImportReport:
    kind: str
    dry_run: bool
    all_or_nothing: bool
    rows: int = 0
    valid: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    applied: bool = False  # something was (or, dry run, would be) written
    written: bool = False  # a batch of stock counts was written (an all-or-nothing import may still be refused later)
    errors: list[RowError] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def header_map(kind: str, headers: list[str],
               mapping: dict[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """Target field -> the file's header for it, and the headers nobody reads; BAD_USER_INPUT when a required
    column is missing or a mapping names an unknown field."""
    fields = COLUMNS[kind]
    chosen: dict[str, str] = {}
    for header, target in (mapping or {}).items():
        if target not in fields:
            raise BadInput(f"mapping names {target!r}, which {kind} do not have (fields: {', '.join(fields)})",
                           field="mapping")
        if header not in headers:
            raise BadInput(f"mapping names column {header!r}, which the file does not have", field="mapping")
        chosen[target] = header
    for header in headers:
        for target, names in fields.items():
            if target not in chosen and header not in chosen.values() and _norm(header) in names:
                chosen[target] = header
    missing = [f for f in REQUIRED[kind] if f not in chosen]
    if missing:
        raise BadInput(f"the file has no column for {', '.join(missing)} (headers: {', '.join(headers)[:200]})",
                       field="file")
    return chosen, [h for h in headers if h not in chosen.values()]


def _camel_to_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Ticker:
    """Reports progress every ``CHUNK`` rows (the CLI draws its bar from it)."""

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self.progress, self.pending = progress, 0

    def tick(self) -> None:
        self.pending += 1
        if self.pending == CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.progress is not None and self.pending:
            self.progress(self.pending)
        self.pending = 0


class _Row:
    """One data row read through the header map; conversion failures name the column."""

    def __init__(self, number: int, values: dict[str, str], columns: dict[str, str]) -> None:
        self.number, self.values, self.columns = number, values, columns

    def text(self, name: str) -> str | None:
        header = self.columns.get(name)
        value = (self.values.get(header) or "").strip() if header else ""
        return value or None

    def number_of(self, name: str, kind: type[int] | type[float]) -> Any:
        value = self.text(name)
        if value is None:
            return None
        try:
            return kind(value.replace(",", ".") if kind is float else value)
        except ValueError:
            raise BadInput(f"{value[:30]!r} is not a{'n integer' if kind is int else ' number'}", field=name) from None

    def day(self, name: str) -> date | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise BadInput(f"{value[:30]!r} is not a date (YYYY-MM-DD)", field=name) from None
        if not in_range(day):
            raise BadInput(RANGE_MESSAGE, field=name)
        return day

    def error(self, exc: HubError) -> RowError:
        target = _camel_to_snake(str(exc.details.get("field") or "")) or None
        return RowError(self.number, self.columns.get(target or "", target), exc.message)


Write = tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]  # key, fields, the new document (None: exists)


async def _store(collection: Any, writes: list[Write]) -> None:
    """Write in chunks: new rows are inserted outright (an upsert costs several times an insert on some stores);
    a row someone else created meanwhile is updated instead."""
    for start in range(0, len(writes), CHUNK):
        chunk = writes[start:start + CHUNK]
        ops = [InsertOne(doc) if doc is not None else UpdateOne(key, {"$set": fields}) for key, fields, doc in chunk]
        try:
            await collection.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise
            retry = [UpdateOne(chunk[e["index"]][0], {"$set": chunk[e["index"]][1]}) for e in errors]
            try:
                await collection.bulk_write(retry, ordered=False)
            except BulkWriteError:
                raise Conflict("a code or GTIN of this file was registered meanwhile; import it again") from None


def _sku_input(row: _Row) -> sku_service.SkuInput:
    data = sku_service.SkuInput(
        code=row.text("code") or "", name=row.text("name") or "", gtin=row.text("gtin"),
        unit=row.text("unit") or "each", pack_size=row.number_of("pack_size", int) or 1,
        shelf_life_days=row.number_of("shelf_life_days", int),
        storage=Storage(temp_min_c=row.number_of("temp_min_c", float), temp_max_c=row.number_of("temp_max_c", float)),
        min_remaining_shelf_life_days=row.number_of("min_remaining_shelf_life_days", int),
        unit_cost=row.number_of("unit_cost", float), currency=row.text("currency"), category=row.text("category"),
    )
    return sku_service.validate(data)


async def _import_skus(access: Access, rows: list[_Row], report: ImportReport, write: bool,
                        ticker: Ticker) -> None:
    collection = Sku.get_pymongo_collection()
    existing = {d["code"]: d async for d in collection.find({"tenant_id": access.tenant_id})}
    # Other brands' GTINs, read once (a GTIN names one trade item worldwide).
    taken = {d["gtin"] async for d in collection.find(
        {"gtin": {"$type": "string"}, "tenant_id": {"$ne": access.tenant_id}}, {"gtin": 1})}
    seen_codes: dict[str, int] = {}
    seen_gtins: dict[str, int] = {}
    writes: list[Write] = []
    now = utcnow()
    for row in rows:
        ticker.tick()
        try:
            data = _sku_input(row)
        except HubError as exc:
            report.errors.append(row.error(exc))
            continue
        if data.code in seen_codes:
            report.errors.append(RowError(row.number, row.columns["code"],
                                          f"code {data.code!r} already on row {seen_codes[data.code]}"))
            continue
        if data.gtin and (data.gtin in taken or data.gtin in seen_gtins):
            where = f"row {seen_gtins[data.gtin]}" if data.gtin in seen_gtins else "another brand's SKU"
            report.errors.append(RowError(row.number, row.columns.get("gtin"),
                                          f"GTIN {data.gtin} already names {where}"))
            continue
        if data.gtin:
            seen_gtins[data.gtin] = row.number
        seen_codes[data.code] = row.number
        report.valid += 1
        fields: dict[str, Any] = {"name": data.name, "gtin": data.gtin, "unit": data.unit, "pack_size": data.pack_size,
                  "shelf_life_days": data.shelf_life_days, "storage": data.storage.model_dump(),
                  "min_remaining_shelf_life_days": data.min_remaining_shelf_life_days, "unit_cost": data.unit_cost,
                  "currency": data.currency, "category": data.category}
        before = existing.get(data.code)
        if before is not None and all(before.get(k) == v for k, v in fields.items()):
            report.unchanged += 1
            continue
        if before is None:
            report.created += 1
        else:
            report.updated += 1
        key = {"tenant_id": access.tenant_id, "code": data.code}
        fields["updated_at"] = now
        writes.append((key, fields, None if before else {**key, **fields, "aliases": [], "created_at": now}))
    if write and not (report.all_or_nothing and report.errors):
        await _store(collection, writes)


async def _import_locations(access: Access, rows: list[_Row], report: ImportReport, write: bool,
                        ticker: Ticker) -> None:
    collection = Location.get_pymongo_collection()
    existing = {d["code"]: d async for d in collection.find({"tenant_id": access.tenant_id})}
    seen: dict[str, int] = {}
    writes: list[Write] = []
    kinds = {k.value for k in LocationKind}
    for row in rows:
        ticker.tick()
        try:
            code = clean_text(row.text("code") or "", "code", CODE_MAX, "location code")
            name = clean_text(row.text("name") or "", "name", NAME_MAX, "location name")
            kind = (row.text("kind") or "").lower()
            if kind not in kinds:
                raise BadInput(f"kind {kind[:20]!r} is not one of {', '.join(sorted(kinds))}", field="kind")
            gln = validate_gln(row.text("gln") or "") if row.text("gln") else None
        except HubError as exc:
            report.errors.append(row.error(exc))
            continue
        if code in seen:
            report.errors.append(RowError(row.number, row.columns["code"],
                                          f"code {code!r} already on row {seen[code]}"))
            continue
        seen[code] = row.number
        report.valid += 1
        fields = {"name": name, "kind": kind, "gln": gln}
        before = existing.get(code)
        if before is not None and all(before.get(k) == v for k, v in fields.items()):
            report.unchanged += 1
            continue
        report.created += before is None
        report.updated += before is not None
        key = {"tenant_id": access.tenant_id, "code": code}
        writes.append((key, fields, None if before else {**key, **fields, "parent_id": None, "created_at": utcnow()}))
    if write and not (report.all_or_nothing and report.errors):
        await _store(collection, writes)


async def _import_stock(access: Access, database: Database, rows: list[_Row], report: ImportReport,
                        write: bool, ticker: Ticker, audit_threshold: int) -> None:
    """Each row counts one position (``count`` movement): the file is the stock as counted."""
    locations = {d["code"]: d["_id"] async for d in Location.get_pymongo_collection().find(
        {"tenant_id": access.tenant_id}, {"code": 1})}
    refs = sorted({row.text("sku") or "" for row in rows} - {""})
    skus = await sku_service.resolve_skus(access, refs)
    items: list[tuple[_Row, movement_service.MovementInput]] = []
    seen: dict[tuple[str, str, str | None], int] = {}
    for row in rows:
        ticker.tick()
        try:
            where, ref, lot = row.text("location") or "", row.text("sku") or "", row.text("lot_code")
            if where not in locations:
                raise BadInput(f"location {where[:40]!r} is not one of yours", field="location")
            if ref not in skus:
                raise BadInput(f"sku {ref[:40]!r} names no SKU you may use", field="sku")
            quantity = row.number_of("quantity", int)
            if quantity is None or not 0 <= quantity <= movement_service.MAX_QUANTITY:
                raise BadInput(f"a counted quantity is a whole number from 0 to {movement_service.MAX_QUANTITY}",
                               field="quantity")
            if lot is not None:
                lot = clean_text(lot, "lotCode", CODE_MAX, "lot code")
            expires = row.day("expires_on")
        except HubError as exc:
            report.errors.append(row.error(exc))
            continue
        position = (where, str(skus[ref].id), lot)
        if position in seen:
            report.errors.append(RowError(row.number, None, f"the same position is already on row {seen[position]}"))
            continue
        seen[position] = row.number
        content = f"{where}|{skus[ref].id}|{lot}|{quantity}|{expires}".encode()
        items.append((row, movement_service.MovementInput(
            location_id=str(locations[where]), sku=str(skus[ref].id), kind=MovementKind.count, quantity=quantity,
            idempotency_key=f"import:{hashlib.sha256(content).hexdigest()[:32]}", lot_code=lot, expires_on=expires,
            reason="CSV import",
        )))
    items = await _usable_lots(access, skus, items, report)
    report.valid = len(items)
    if not write or (report.all_or_nothing and report.errors):
        report.created = len(items)
        return
    # Sorted by position, a batch names few locations: the ledger reads positions, demand series and sales history
    # once per location in a batch. Each position is on one row, so the order books nothing differently.
    items.sort(key=lambda pair: (pair[1].location_id, pair[1].sku, pair[1].lot_code or ""))
    for start in range(0, len(items), CHUNK):
        batch = items[start:start + CHUNK]
        try:
            result = await movement_service.record_movements(access, database, [i for _, i in batch], CHUNK,
                                                             audit_threshold)
        except HubError as exc:
            _refused(report, batch, exc)
            rest = items[start + CHUNK:]
            if report.all_or_nothing and rest:  # rows were checked above, so only a race gets here: stop writing
                report.errors.append(RowError(rest[0][0].number, None, f"rows {_ranges(r.number for r, _ in rest)} "
                                                                       "not written after the refusal above"))
                report.valid -= len(rest)
                break
            continue
        report.written = True
        report.created += result.accepted
        report.unchanged += result.duplicates


async def _usable_lots(access: Access, skus: dict[str, Sku], items: list[tuple[_Row, Any]],
                       report: ImportReport) -> list[tuple[_Row, Any]]:
    """Rows counting a lot of another brand's SKU that the caller was never shipped are refused here, by row, as the
    ledger would refuse their batch: found only there, a later batch's refusal came after earlier batches were
    written, and an all-or-nothing import was half written."""
    by_id = {str(sku.id): sku for sku in skus.values()}
    foreign = [item for _, item in items if item.lot_code and not access.may_create_lots(by_id[item.sku].tenant_id)]
    if not foreign:
        return items
    known = await movement_service.known_lots(access, by_id, foreign, None)
    kept = []
    for row, item in items:
        sku = by_id[item.sku]
        if item.lot_code and not access.may_create_lots(sku.tenant_id) and (sku.id, item.lot_code) not in known:
            report.errors.append(RowError(row.number, row.columns.get("lot_code"),
                                          f"lot {item.lot_code[:40]!r} of {sku.code} not found: only its owner "
                                          "creates its lots"))
        else:
            kept.append((row, item))
    return kept


def _refused(report: ImportReport, batch: list[tuple[_Row, Any]], exc: HubError) -> None:
    """The API's own checks (e.g. a lot only its owner may create) refuse a batch whole: its rows are reported."""
    index = exc.details.get("index")
    first = batch[index][0].number if isinstance(index, int) and index < len(batch) else batch[0][0].number
    rows = _ranges(row.number for row, _ in batch)
    report.errors.append(RowError(first, None, f"{exc.message} (rows {rows} not written)"))
    report.valid -= len(batch)


def _ranges(numbers: Iterable[int], limit: int = 20) -> str:
    """Row numbers as ranges ("2-40, 45, 50-61"), the first ``limit`` of them."""
    spans: list[list[int]] = []
    for number in sorted(numbers):
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    text = ", ".join(f"{a}-{b}" if b > a else str(a) for a, b in spans[:limit])
    return text + (f" and {len(spans) - limit} more ranges" if len(spans) > limit else "")


async def import_csv(access: Access, database: Database, kind: str, lines: Iterable[str], *,
                     dry_run: bool = False, all_or_nothing: bool = True, mapping: dict[str, str] | None = None,
                     progress: Callable[[int], None] | None = None, audit_threshold: int = 0) -> ImportReport:
    """Read, check and (unless ``dry_run``) write one CSV file of ``kind``; the report says what happened."""
    access.require(Group.master_data if kind != "stock" else Group.operations)
    if kind not in KINDS:
        raise BadInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
    reader = csv.DictReader(lines)
    try:
        headers = [h.strip() for h in reader.fieldnames or []]
    except csv.Error as exc:
        raise BadInput(f"the header line cannot be read as CSV: {exc}", field="file") from None
    if not headers:
        raise BadInput("the file is empty (the first line must name the columns)", field="file")
    reader.fieldnames = headers
    columns, ignored = header_map(kind, headers, mapping)
    report = ImportReport(kind=kind, dry_run=dry_run, all_or_nothing=all_or_nothing, ignored_columns=ignored)
    rows: list[_Row] = []
    try:
        for number, values in enumerate(reader, start=2):
            if len(rows) >= MAX_ROWS:
                raise BadInput(f"at most {MAX_ROWS} rows per file", field="file")
            if any((v or "").strip() for v in values.values() if isinstance(v, str)):
                rows.append(_Row(number, values, columns))
    except csv.Error as exc:  # e.g. a field beyond the csv module's limit (128 KiB): no row of ours is that long
        raise BadInput(f"line {reader.line_num} cannot be read as CSV: {exc}", field="file") from None
    report.rows = len(rows)
    write, ticker = not dry_run, Ticker(progress)
    if kind == "skus":
        await _import_skus(access, rows, report, write, ticker)
    elif kind == "locations":
        await _import_locations(access, rows, report, write, ticker)
    else:
        await _import_stock(access, database, rows, report, write, ticker, audit_threshold)
    ticker.flush()
    report.applied = report.valid > 0 and not (all_or_nothing and report.errors) or report.written
    return report


def lines_of(text: str) -> io.StringIO:
    """CSV text as the line source ``import_csv`` reads (a leading byte-order mark is dropped)."""
    return io.StringIO(text.lstrip("\ufeff"), newline="")
