"""The CBV 2.0 event hash: the standard's canonical ``eventID`` of an event that carries none.

The pre-hash string is the event's fields in the standard's order, each identifier in its canonical GS1 Digital Link
form, CBV words as web URIs, times in UTC to the millisecond, numbers without trailing zeros, repeated elements
sorted, and the remaining fields (business transactions, sources, destinations, ILMD, extensions) sorted after them;
its SHA-256 is written ``ni:///sha-256;<hex>?ver=CBV2.0``. Where the standard's text leaves room, this follows the
GS1 reference implementation (epcis-event-hash-generator): tests/epcis/test_hashing.py checks known answers it gave.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from hub import epc

CBV = "https://ref.gs1.org/cbv/"
GS1_VOC = "https://gs1.org/voc/"
_OLD_CBV = {"urn:epcglobal:cbv:bizstep:": "BizStep-", "urn:epcglobal:cbv:disp:": "Disp-",
            "urn:epcglobal:cbv:btt:": "BTT-", "urn:epcglobal:cbv:sdt:": "SDT-", "urn:epcglobal:cbv:er:": "ER-"}
# Bare CBV words the JSON-LD context expands, by the field that holds them.
_BARE = {"bizStep": CBV + "BizStep-", "disposition": CBV + "Disp-", "set": CBV + "Disp-", "unset": CBV + "Disp-",
         "component": CBV + "Comp-", "type": GS1_VOC, "exception": GS1_VOC}
_PAIR_TYPE = {"bizTransactionList": CBV + "BTT-", "sourceList": CBV + "SDT-", "destinationList": CBV + "SDT-"}
_PAIR_VALUE = {"bizTransactionList": "bizTransaction", "sourceList": "source", "destinationList": "destination"}
_QUANTITY = ("epcClass", "quantity", "uom")
_METADATA = ("time", "startTime", "endTime", "deviceID", "deviceMetadata", "rawData", "dataProcessingMethod",
             "bizRules")
_REPORT = ("type", "exception", "deviceID", "deviceMetadata", "rawData", "dataProcessingMethod", "time",
           "microorganism", "chemicalSubstance", "value", "component", "stringValue", "booleanValue",
           "hexBinaryValue", "uriValue", "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue", "uom",
           "coordinateReferenceSystem")
_EPC_LISTS = ("epcList", "inputEPCList", "childEPCs", "outputEPCList")
_QUANTITY_LISTS = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")
# The standard's order of the fields it names (after eventType); the rest follows, sorted.
_ORDER = ("eventTime", "eventTimeZoneOffset", "certificationInfo", "parentID", "epcList", "inputEPCList",
          "childEPCs", "quantityList", "childQuantityList", "inputQuantityList", "outputEPCList",
          "outputQuantityList", "action", "transformationID", "bizStep", "disposition", "persistentDisposition",
          "readPoint", "bizLocation", "sensorElementList")
_ORDERED = frozenset(_ORDER)
_SKIPPED = {"type", "eventID", "recordTime", "errorDeclaration"}
_NUMERIC_START = frozenset("+-.0123456789iInN")  # what float() might read: digits, signs, inf, nan
# A UTC time to the millisecond is already in the pre-hash form.
_UTC_MILLIS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")

Namespaces = Mapping[str, str]


class _Prefixes(dict[str, str]):
    """The prefixes in force for one event, hashable (by content) so that rendered values can be cached."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        super().__init__(items)
        self._hash = hash(frozenset(self.items()))

    def __hash__(self) -> int:  # type: ignore[override]
        return self._hash


def namespaces(context: Any) -> dict[str, str]:
    """Prefixes a document's own ``@context`` declares (``{"ex": "https://ns.example.org/"}``)."""
    found: dict[str, str] = {}
    for entry in context if isinstance(context, list) else [context]:
        if isinstance(entry, dict):
            found.update({k: v for k, v in entry.items() if isinstance(v, str)})
    return found


def _expand(text: str, ns: Namespaces, as_key: bool) -> str:
    prefix, colon, rest = text.partition(":")
    if colon and prefix in ns:
        return ("{" + ns[prefix] + "}" + rest) if as_key else ns[prefix] + rest
    return text


def _timestamp(text: str) -> str:
    if len(text) == 24 and _UTC_MILLIS.fullmatch(text):
        return text  # what the conversion below would answer, valid date or not
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return text
    try:
        at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
        at = at.replace(microsecond=0) + timedelta(milliseconds=round(at.microsecond / 1000))
    except OverflowError:  # past year 1 or 9999 in UTC: hashed as written
        return text
    return at.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _number(text: str) -> str:
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    return str(int(number)) if number == int(number) else str(number)


def _value(key: str, value: Any, ns: _Prefixes, bare: str | None = None) -> str:
    return _rendered(key, (value if isinstance(value, str) else str(value)).strip(), ns, bare)


def _render(key: str, text: str, ns: _Prefixes, bare: str | None) -> str:
    if not text:
        return ""
    lowered = key.lower()
    if "time" in lowered and "offset" not in lowered:
        return _timestamp(text)
    if bare is not None and ":" not in text:
        return bare + text
    text = _expand(text, ns, as_key=False)
    if text.startswith("urn:epcglobal:cbv:"):
        for old, new in _OLD_CBV.items():
            if text.startswith(old):
                return CBV + new + text[len(old):]
    if text[0] in _NUMERIC_START:
        return _number(text)
    if text.startswith(("urn:epc:", "http")):
        return epc.canonical(text) or text
    return text


# Locations, steps, dispositions, offsets and transactions repeat from event to event.
_rendered = lru_cache(maxsize=16384)(_render)


@lru_cache(maxsize=16384)
def _rendered_field(key: str, text: str, ns: _Prefixes, bare: str | None) -> str:
    text = _render(key, text, ns, bare)
    return f"{key}={text}" if text else ""


def _field(key: str, value: Any, ns: _Prefixes, bare: str | None = None) -> str:
    return _rendered_field(key, (value if isinstance(value, str) else str(value)).strip(), ns, bare)


def _ordered(obj: Mapping[str, Any], order: tuple[str, ...], ns: _Prefixes, bare: Mapping[str, str]) -> str:
    """Fields of a nested object in the given order, then its extension fields (sorted)."""
    parts = [_field(k, obj[k], ns, bare.get(k)) for k in order if k in obj and not isinstance(obj[k], (dict, list))]
    extensions = sorted(_generic(k, v, ns) for k, v in obj.items() if k not in order and ":" in k)
    return "".join(parts) + "".join(extensions)


def _generic(key: str, value: Any, ns: _Prefixes, sort: bool = True) -> str:
    name = _expand(key, ns, as_key=True)
    if isinstance(value, dict):
        children = [_generic(k, v, ns) for k, v in value.items() if not k.startswith("@")]
        return name + "".join(sorted(children) if sort else children)
    if isinstance(value, list):
        return "".join(sorted(_generic(key, item, ns) for item in value))
    text = _value(key, value, ns)
    return name + ("=" + text if text else "")


def _pairs(name: str, items: list[Any], ns: _Prefixes) -> str:
    rendered = []
    for item in items:
        if not isinstance(item, dict):
            continue
        kind = _field("type", item["type"], ns, _PAIR_TYPE[name]) if "type" in item else ""
        value_key = _PAIR_VALUE[name]
        rendered.append(kind + (_field(value_key, item[value_key], ns) if value_key in item else ""))
    return name + "".join(sorted(rendered)) if any(rendered) else ""


def _sensor_element(element: Mapping[str, Any], ns: _Prefixes) -> str:
    text = "sensorElement"
    metadata = element.get("sensorMetadata")
    if isinstance(metadata, dict):
        inner = _ordered(metadata, _METADATA, ns, {})
        text += "sensorMetadata" + inner if inner else ""
    reports = [r for r in element.get("sensorReport", []) if isinstance(r, dict)]
    text += "".join(sorted("sensorReport" + _ordered(r, _REPORT, ns, _BARE) for r in reports))
    extensions = [_generic(k, v, ns) for k, v in element.items() if k not in ("sensorMetadata", "sensorReport")]
    return text + "".join(sorted(extensions))


def _epc(item: str, ns: _Prefixes) -> str:
    """``_field("epc", item)``, EPC URNs rendered without the field cache: instance identifiers are each seen once, and
    would only push the repeating values out of it."""
    text = item.strip()
    if text.startswith("urn:epc:") and "urn" not in ns:
        return "epc=" + (epc.canonical(text) or text)
    return _field("epc", item, ns)


def _known(key: str, value: Any, ns: _Prefixes) -> str:
    if key in _EPC_LISTS:
        epcs = sorted(_epc(item, ns) for item in value if isinstance(item, str))
        return key + "".join(epcs) if any(epcs) else ""
    if key in _QUANTITY_LISTS:
        elements = sorted("quantityElement" + _ordered(item, _QUANTITY, ns, {})
                          for item in value if isinstance(item, dict))
        return key + "".join(elements) if elements else ""
    if key == "persistentDisposition":
        parts = [_field(k, v, ns, _BARE[k]) for k in ("set", "unset") for v in sorted(value.get(k, []))]
        return key + "".join(parts) if any(parts) else ""
    if key in ("readPoint", "bizLocation"):
        if isinstance(value, dict) and len(value) == 1 and "id" in value:  # the usual shape: its id alone
            inner = _field("id", value["id"], ns) if not isinstance(value["id"], (dict, list)) else ""
        else:
            inner = _ordered(value, ("id",), ns, {}) if isinstance(value, dict) else ""
        return key + inner if inner else ""
    if key == "sensorElementList":
        elements = sorted(_sensor_element(e, ns) for e in value if isinstance(e, dict))
        return key + "".join(elements) if elements else ""
    return _field(key, value, ns, _BARE.get(key))


def pre_hash(event: Mapping[str, Any], ns: Namespaces | None = None) -> str:
    """The canonical pre-hash string of one event (``ns``: the prefixes of its document's ``@context``)."""
    ns = _Prefixes({**(ns or {}), **namespaces(event.get("@context"))}.items())
    head = f"eventType={event.get('type', '')}"
    known = "".join(_known(k, event[k], ns) for k in _ORDER if k in event)
    rest = []
    for key, value in event.items():
        if key in _ORDERED or key in _SKIPPED or key.startswith("@"):
            continue
        pairs = key in _PAIR_VALUE and isinstance(value, list)
        rest.append(_pairs(key, value, ns) if pairs else _generic(key, value, ns))
    return head + known + "".join(sorted(rest))


def event_hash(event: Mapping[str, Any], ns: Namespaces | None = None) -> str:
    """The event's CBV 2.0 hash id, ``ni:///sha-256;...?ver=CBV2.0``."""
    digest = hashlib.sha256(pre_hash(event, ns).encode("utf-8")).hexdigest()
    return f"ni:///sha-256;{digest}?ver=CBV2.0"
