"""GS1 keys inside EPC URIs and GS1 Digital Link URIs (EPCIS identifiers).

EPCIS names objects, classes, locations and parties with EPC pure-identity URNs (``urn:epc:id:sgtin:...``), EPC
class URNs (``urn:epc:class:lgtin:...``, ``urn:epc:idpat:sgtin:...``) or GS1 Digital Link URIs
(``https://id.gs1.org/01/...``). ``parse`` turns any of them into one ``Key`` (GTIN, lot, serial, SSCC, GLN ...),
and ``Key.digital_link`` writes the canonical Digital Link form the CBV event hash and the hub's own exports use.
Scans of barcodes (element strings, HRI) are another matter: see the GS1 scan parser.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import urlsplit

from hub.gs1 import check_digit

CANONICAL_HOST = "https://id.gs1.org"
_EPC = re.compile(r"^urn:epc:(id|class|idpat):([a-z]+):(.+)$")
# Digital Link primary keys this module knows, by application identifier.
_DL_KEYS = {"01": "gtin", "00": "sscc", "414": "gln", "417": "pgln", "8003": "grai", "8004": "giai", "8018": "gsrn",
            "253": "gdti"}


class Key(NamedTuple):
    """One GS1 identifier. ``kind`` is the EPC scheme (``sgtin``, ``lgtin``, ``gtin`` for a class without lot,
    ``sscc``, ``sgln``, ``pgln``, ``grai``, ``giai``, ``gsrn``, ``gdti``); ``value`` the GS1 key itself (GTIN-14,
    SSCC-18, GLN-13 ...)."""

    kind: str
    value: str
    lot: str | None = None  # AI 10 (lgtin)
    serial: str | None = None  # AI 21 (sgtin), or the serial of a GRAI / GDTI
    extension: str | None = None  # AI 254: a GLN extension (sgln), None for "0"

    @property
    def gtin(self) -> str | None:
        return self.value if self.kind in ("sgtin", "lgtin", "gtin") else None

    @property
    def digital_link(self) -> str:
        if self.kind in ("sgtin", "lgtin", "gtin"):
            tail = f"/10/{self.lot}" if self.lot is not None else f"/21/{self.serial}" if self.serial else ""
            return f"{CANONICAL_HOST}/01/{self.value}{tail}"
        if self.kind == "sgln":
            return f"{CANONICAL_HOST}/414/{self.value}" + (f"/254/{self.extension}" if self.extension else "")
        ai = {"sscc": "00", "pgln": "417", "grai": "8003", "giai": "8004", "gsrn": "8018", "gdti": "253"}[self.kind]
        return f"{CANONICAL_HOST}/{ai}/{self.value}{self.serial or ''}"


@lru_cache(maxsize=4096)  # company prefix + item reference repeat across every instance of an item
def _with_check(digits: str) -> str:
    return digits + str(check_digit(digits))


def _from_epc(scheme: str, kind: str, body: str) -> Key | None:
    parts = body.split(".")
    if kind in ("sgtin", "lgtin", "sscc") and len(parts) > 1 and not parts[1]:
        return None  # no item (serial) reference, whose first digit, the indicator (extension), leads the key
    if kind == "sgtin" and len(parts) == 3 and (parts[0] + parts[1]).isdigit() and len(parts[0] + parts[1]) == 13:
        gtin = _with_check(parts[1][0] + parts[0] + parts[1][1:])
        if scheme == "id" and parts[2]:
            return Key("sgtin", gtin, serial=parts[2])
        if scheme == "idpat" and parts[2] == "*":
            return Key("gtin", gtin)
        return None
    if kind == "lgtin" and scheme == "class" and len(parts) >= 3:
        prefix, item, lot = parts[0], parts[1], ".".join(parts[2:])
        if (prefix + item).isdigit() and len(prefix + item) == 13 and lot:
            return Key("lgtin", _with_check(item[0] + prefix + item[1:]), lot=lot)
        return None
    if scheme != "id":
        return None
    if kind == "sscc" and len(parts) == 2 and (parts[0] + parts[1]).isdigit() and len(parts[0] + parts[1]) == 17:
        return Key("sscc", _with_check(parts[1][0] + parts[0] + parts[1][1:]))
    if kind in ("sgln", "pgln") and len(parts) == 2 + (kind == "sgln"):
        digits = parts[0] + parts[1]
        if not digits.isdigit() or len(digits) != 12:
            return None
        extension = parts[2] if kind == "sgln" and parts[2] != "0" else None
        return Key(kind, _with_check(digits), extension=extension)
    if kind in ("grai", "gdti") and len(parts) == 3 and (parts[0] + parts[1]).isdigit():
        digits = parts[0] + parts[1]
        value = _with_check(("0" if kind == "grai" else "") + digits)
        return Key(kind, value, serial=parts[2] or None)
    if kind == "giai" and len(parts) == 2 and parts[0].isdigit():
        return Key("giai", parts[0] + parts[1])
    if kind == "gsrn" and len(parts) == 2 and (parts[0] + parts[1]).isdigit() and len(parts[0] + parts[1]) == 17:
        return Key("gsrn", _with_check(parts[0] + parts[1]))
    return None


def _from_digital_link(uri: str) -> Key | None:
    split = urlsplit(uri)
    if split.scheme not in ("http", "https") or not split.netloc:
        return None
    segments = [s for s in split.path.split("/") if s]
    # The primary key may sit below a path prefix of the resolver: find the first known AI followed by a value.
    for start in range(len(segments) - 1):
        ai = segments[start]
        if ai not in _DL_KEYS:
            continue
        value, rest = segments[start + 1], dict(zip(segments[start + 2::2], segments[start + 3::2]))
        kind = _DL_KEYS[ai]
        if kind == "gtin":
            if not value.isdigit() or len(value) not in (8, 12, 13, 14):
                return None
            gtin = value.zfill(14)
            if "10" in rest:
                return Key("lgtin", gtin, lot=rest["10"])
            return Key("sgtin", gtin, serial=rest["21"]) if "21" in rest else Key("gtin", gtin)
        if kind == "gln":
            return Key("sgln", value, extension=rest.get("254") if rest.get("254") not in (None, "0") else None)
        if kind in ("grai", "gdti"):
            size = 14 if kind == "grai" else 13
            return Key(kind, value[:size], serial=value[size:] or None)
        return Key(kind, value)
    return None


@lru_cache(maxsize=65536)  # read points, locations and classes repeat
def parse(uri: str) -> Key | None:
    """The GS1 key an EPC URI, EPC class URI or GS1 Digital Link URI names; ``None`` for anything else (a private
    identifier, a malformed URI). Check digits of Digital Link keys are verified."""
    return _parse(uri)


def _parse(uri: str) -> Key | None:
    uri = uri.strip()
    match = _EPC.match(uri)
    if match:
        return _from_epc(*match.groups())
    key = _from_digital_link(uri)
    if key is None:
        return None
    if key.kind not in ("giai",) and (not key.value.isdigit() or check_digit(key.value[:-1]) != int(key.value[-1])):
        return None
    return key


_SGTIN = "urn:epc:id:sgtin:"


def _sgtin_link(uri: str) -> str | None:
    """An SGTIN's Digital Link written directly (what ``_parse`` then ``digital_link`` answer): instance EPCs are
    most of a captured event's identifiers, each seen once, so none of them is ever found in a cache."""
    parts = uri[len(_SGTIN):].split(".")
    if len(parts) != 3 or not parts[1] or not parts[2] or "\n" in parts[2]:
        return None
    digits = parts[0] + parts[1]
    if len(digits) != 13 or not digits.isdigit():
        return None
    return f"{CANONICAL_HOST}/01/{_with_check(parts[1][0] + parts[0] + parts[1][1:])}/21/{parts[2]}"


@lru_cache(maxsize=65536)  # every identifier of a captured event is canonicalised for its hash and its index fields
def canonical(uri: str) -> str | None:
    """The canonical GS1 Digital Link URI of an identifier, ``None`` if it names no GS1 key."""
    if uri.startswith(_SGTIN) and not uri[-1].isspace():
        return _sgtin_link(uri)
    key = _parse(uri)
    return key.digital_link if key else None
