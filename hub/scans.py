"""GS1 barcode scans as line fields: what a dock scanner reads, parsed by biip and checked before anything is stored.

A scan is a GS1-128 / DataMatrix element string (an optional symbology identifier such as ``]C1`` or ``]d2``, FNC1
as the ASCII group separator, or written ``<GS>`` / ``{GS}``), the same in parenthesised human-readable form
(``(01)...(10)...``), or a GS1 Digital Link URI (``https://id.gs1.org/01/.../10/...?17=...``). The elements read are
GTIN (AI 01, or 02 for the trade items a logistic unit contains), batch/lot (10), expiry (17, else best before 15),
production date (11), SSCC (00) and count (30, or 37 with 02). A wrong check digit, a date that is no date or an
element that cannot be read answers BAD_USER_INPUT naming the element.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from biip import ParseError
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gs1_element_strings import GS1ElementString
from biip.gs1_messages import GS1Message

from hub.errors import BadInput
from hub.services.skus import resolve_skus
from tenants.access import Access

SCAN_MAX = 300
_SYMBOLOGY = re.compile(r"^\][A-Za-z][0-9A-Za-z]")
_SEPARATORS = ("<GS>", "{GS}", "\\x1d", "\\u001d")
_EMPTY_HRI = re.compile(r"\((\d{2,4})\)\s*(?=\(|$)")
_EMPTY_QUERY = re.compile(r"[?&](\d{2,4})=(?=&|#|$)")


@dataclass(frozen=True)
class Scan:
    gtin: str | None = None  # GTIN-14
    lot_code: str | None = None
    expires_on: date | None = None
    produced_on: date | None = None
    sscc: str | None = None
    quantity: int | None = None


def _empty_element(text: str) -> str | None:
    """The AI written with no data after it (``(10)(17)...``, ``?30=``), which biip drops without a word."""
    is_uri = text.lower().startswith(("http://", "https://"))
    pattern = _EMPTY_QUERY if is_uri else _EMPTY_HRI if text.startswith("(") else None
    found = pattern.search(text) if pattern else None
    return found.group(1) if found else None


def _elements(text: str) -> list[GS1ElementString]:
    if text.lower().startswith(("http://", "https://")):
        return GS1DigitalLinkURI.parse(text).element_strings
    if text.startswith("("):
        return GS1Message.parse_hri(text).element_strings
    text = _SYMBOLOGY.sub("", text)
    for written in _SEPARATORS:
        text = text.replace(written, "\x1d")
    return GS1Message.parse(text.strip("\x1d")).element_strings


def parse_scan(raw: str, field: str = "scan") -> Scan:
    """The GS1 elements of one scan; BAD_USER_INPUT (on ``field``) when it cannot be read or a check fails."""
    text = raw.strip()
    if not text or len(text) > SCAN_MAX:
        raise BadInput(f"a scan is 1-{SCAN_MAX} characters of GS1 data", field=field)
    if not text.isascii():  # biip's numeric patterns take any Unicode digit: a count of '٣' read as 3
        raise BadInput(f"scan {text[:60]!r} holds characters beyond ASCII, which GS1 data never does", field=field)
    empty = _empty_element(text)
    if empty is not None:
        raise BadInput(f"scan element ({empty}) is empty", field=field, ai=empty)
    try:
        elements = _elements(text)
    except (ParseError, ValueError) as exc:  # ValueError: urllib on a malformed URI ('https://id.gs1.org]C1')
        raise BadInput(f"scan {text[:60]!r} is not GS1 data biip can read: {exc}", field=field) from exc
    found: dict[str, GS1ElementString] = {}
    for element in elements:
        ai = element.ai.ai
        if not element.value:  # biip reads an AI with nothing after it as an empty element
            raise BadInput(f"scan element ({ai}) is empty", field=field, ai=ai)
        error = element.gtin_error or element.sscc_error
        if error:
            raise BadInput(f"scan element ({ai}) {element.value}: {error}", field=field, ai=ai)
        if ai in ("11", "15", "17") and element.date is None:
            raise BadInput(f"scan element ({ai}) {element.value}: not a date (YYMMDD)", field=field, ai=ai)
        if ai in found and found[ai].value != element.value:
            raise BadInput(f"scan repeats element ({ai}) with different values", field=field, ai=ai)
        found[ai] = element
    gtin = found.get("01") or found.get("02")
    expiry = found.get("17") or found.get("15")
    count = found.get("30") or found.get("37")
    scan = Scan(
        gtin=gtin.value.zfill(14) if gtin else None,
        lot_code=found["10"].value if "10" in found else None,
        expires_on=expiry.date if expiry else None,
        produced_on=found["11"].date if "11" in found else None,
        sscc=found["00"].value if "00" in found else None,
        quantity=int(count.value) if count else None,
    )
    if scan.gtin is None and scan.sscc is None:
        raise BadInput(f"scan {text[:60]!r} names neither a GTIN (01/02) nor an SSCC (00)", field=field)
    return scan


@dataclass(frozen=True)
class Line:
    """What a dispatch, receipt or movement line says about its goods, typed or scanned."""

    sku: str | None
    lot_code: str | None
    quantity: int | None
    expires_on: date | None = None
    produced_on: date | None = None
    sscc: str | None = None  # the logistic unit the goods are on (AI 00), or the unit scanned alone


def _agree(field: str, name: str, typed: object, scanned: object) -> None:
    if typed is not None and scanned is not None and typed != scanned:
        raise BadInput(f"{field}: the scan says {name} {scanned}, the line says {typed}", field=field)


async def with_scan(access: Access, line: Line, raw: str | None, field: str, units: bool = False) -> Line:
    """The line with what its scan adds; the typed fields and the scan must agree where both are given.

    With ``units`` (dispatch and receipt lines), a line naming only a logistic unit (an SSCC typed or scanned, no
    GTIN) stands for the unit's contents: it comes back with ``sku`` None for the caller to expand.
    """
    typed_goods = (line.sku, line.lot_code, line.quantity, line.expires_on, line.produced_on) != (None,) * 5
    if raw is None:
        if units and line.sscc is not None and not typed_goods:
            return line
        if line.sku is None:
            raise BadInput(f"{field}: give the SKU (id, code, alias or GTIN) or a GS1 scan", field=field)
        return line
    scan = parse_scan(raw, f"{field}.scan")
    _agree(field, "SSCC", line.sscc.strip() if line.sscc else None, scan.sscc)
    if scan.gtin is None:
        if units and not typed_goods:
            return Line(None, None, None, sscc=scan.sscc)
        hint = "scan it alone for its contents" if units else "scan the trade items, or give the SKU and lot"
        raise BadInput(f"{field}: scan {raw.strip()[:40]!r} is a logistic unit (SSCC {scan.sscc}) without a GTIN: "
                       f"{hint}", field=f"{field}.scan")
    _agree(field, "lot", line.lot_code.strip() if line.lot_code else None, scan.lot_code)
    _agree(field, "quantity", abs(line.quantity) if line.quantity is not None else None, scan.quantity)
    _agree(field, "expiry", line.expires_on, scan.expires_on)
    _agree(field, "production date", line.produced_on, scan.produced_on)
    if line.sku is not None:
        found = await resolve_skus(access, [line.sku, scan.gtin])
        typed, scanned = found.get(line.sku.strip()), found.get(scan.gtin)
        if typed is None or scanned is None or typed.id != scanned.id:
            said = f"SKU {scanned.code}" if scanned is not None else "no SKU you may use"
            raise BadInput(f"{field}: the scan's GTIN {scan.gtin} is {said}, the line says SKU {line.sku.strip()[:40]}"
                           " (give one or the other)", field=field)
    return Line(
        sku=line.sku if line.sku is not None else scan.gtin,
        lot_code=line.lot_code if line.lot_code is not None else scan.lot_code,
        quantity=line.quantity if line.quantity is not None else scan.quantity,
        expires_on=line.expires_on or scan.expires_on,
        produced_on=line.produced_on or scan.produced_on,
        sscc=line.sscc if line.sscc is not None else scan.sscc,
    )
