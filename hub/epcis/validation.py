"""Validation of captured EPCIS documents and events: the official EPCIS 2.0 JSON schema, then the CBV.

The schema (``data/EPCIS-JSON-Schema.json``, as published with the standard) is checked with jsonschema-rs: the
pure-Python ``jsonschema`` takes about 7 ms per event on this schema, which alone would cap capture near 140
events/s; the tests check that both validators agree on the documents they use. The schema admits any URI for CBV
fields; ``cbv_errors`` adds that a CBV web URI (``https://ref.gs1.org/cbv/BizStep-x``) or old URN must name a word
the CBV defines.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

SCHEMA_FILE = Path(__file__).parent / "data" / "EPCIS-JSON-Schema.json"
CBV_WEB = "https://ref.gs1.org/cbv/"
# CBV vocabularies: schema definition -> (web URI prefix, old URN prefix).
VOCABULARIES = {
    "bizStep": ("BizStep-", "urn:epcglobal:cbv:bizstep:"),
    "disposition": ("Disp-", "urn:epcglobal:cbv:disp:"),
    "bizTransaction-type": ("BTT-", "urn:epcglobal:cbv:btt:"),
    "source-dest-type": ("SDT-", "urn:epcglobal:cbv:sdt:"),
    "error-reason": ("ER-", "urn:epcglobal:cbv:er:"),
    "component": ("Comp-", "urn:epcglobal:cbv:comp:"),
}


@dataclass(frozen=True)
class Problem:
    """One reason a document is refused: where (a JSON pointer into the request body) and why."""

    pointer: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "message": self.message}


@cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return loaded


@cache
def _validator() -> Any:
    return jsonschema_rs.Draft7Validator(schema(), validate_formats=True)


@cache
def words(vocabulary: str) -> frozenset[str]:
    """The bare words of a CBV vocabulary, as the schema lists them."""
    definition = schema()["definitions"][vocabulary]
    return frozenset(w for branch in definition["anyOf"] for w in branch.get("enum", []))


def bare(vocabulary: str, value: str) -> str | None:
    """The CBV word a value names (bare, web URI or old URN); ``None`` if it is some other URI."""
    web, urn = VOCABULARIES[vocabulary]
    for prefix in (CBV_WEB + web, urn):
        if value.startswith(prefix):
            return value[len(prefix):]
    return value if ":" not in value else None


def _pointer(path: Any) -> str:
    return "".join(f"/{str(p).replace('~', '~0').replace('/', '~1')}" for p in path)


def schema_errors(document: Mapping[str, Any], limit: int = 20) -> list[Problem]:
    problems = []
    for error in _validator().iter_errors(document):
        message = error.message if len(error.message) < 300 else error.message[:300] + "..."
        problems.append(Problem(_pointer(error.instance_path), message))
        if len(problems) >= limit:
            break
    return problems


def _cbv_values(event: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(vocabulary, JSON pointer, value) of every CBV-typed field of an event."""
    for key, vocabulary in (("bizStep", "bizStep"), ("disposition", "disposition")):
        if isinstance(event.get(key), str):
            yield vocabulary, f"/{key}", event[key]
    persistent = event.get("persistentDisposition")
    if isinstance(persistent, dict):
        for part in ("set", "unset"):
            for n, value in enumerate(persistent.get(part) or []):
                yield "disposition", f"/persistentDisposition/{part}/{n}", value
    for key, vocabulary in (("bizTransactionList", "bizTransaction-type"), ("sourceList", "source-dest-type"),
                            ("destinationList", "source-dest-type")):
        for n, item in enumerate(event.get(key) or []):
            if isinstance(item, dict) and isinstance(item.get("type"), str):
                yield vocabulary, f"/{key}/{n}/type", item["type"]
    declaration = event.get("errorDeclaration")
    if isinstance(declaration, dict) and isinstance(declaration.get("reason"), str):
        yield "error-reason", "/errorDeclaration/reason", declaration["reason"]
    for n, element in enumerate(event.get("sensorElementList") or []):
        for m, report in enumerate(element.get("sensorReport") or [] if isinstance(element, dict) else []):
            if isinstance(report, dict) and isinstance(report.get("component"), str):
                yield "component", f"/sensorElementList/{n}/sensorReport/{m}/component", report["component"]


@cache
def _spellings(vocabulary: str) -> frozenset[str]:
    """Every accepted spelling of the vocabulary's words: bare, CBV web URI and old URN."""
    web, urn = VOCABULARIES[vocabulary]
    return frozenset(f for w in words(vocabulary) for f in (w, CBV_WEB + web + w, urn + w))


def cbv_errors(event: Mapping[str, Any], at: str = "") -> list[Problem]:
    problems = []
    for vocabulary, pointer, value in _cbv_values(event):
        if value in _spellings(vocabulary):
            continue
        word = bare(vocabulary, value)
        if word is not None and word not in words(vocabulary):
            problems.append(Problem(at + pointer, f"{value!r} is not a CBV {vocabulary.split('-')[0]}"))
    return problems
