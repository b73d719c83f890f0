"""Reading JSON sent from outside as the hub can store it and answer it again.

Python's reader takes more than JSON: ``NaN`` and ``Infinity``, numbers too large for a double (``1e400`` reads as
infinity), integers beyond BSON's 64 bits and escaped lone surrogates (``"\\ud800"``), which are not Unicode and
cannot be encoded as UTF-8. Each of these either failed deep inside a request as an internal error, or was stored and
then broke every later answer carrying it (a JSON answer cannot hold NaN). ``loads`` refuses them up front.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

INT64 = 2**63
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")


class Unreadable(ValueError):
    """Valid to Python's reader, but nothing the hub can keep: ``str(exc)`` says what."""


def _int(text: str) -> int:
    value = int(text)  # beyond Python's digit limit this is a ValueError too
    if not -INT64 <= value < INT64:
        raise Unreadable("an integer beyond 64 bits")
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise Unreadable("a number beyond the range of a double")
    return value


def _constant(name: str) -> Any:
    raise Unreadable(f"{name} is not a JSON number")


def _lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            try:
                current.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(current, dict):
            stack.extend(current.keys())
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return False


class _Kept:
    """A number refused anywhere but where each item is judged alone (``loads(judged_alone=...)``)."""

    __slots__ = ("value", "why")

    def __init__(self, value: Any, why: str) -> None:
        self.value, self.why = value, why


def _settle(value: Any, key: str) -> Any:
    """``value`` with each ``_Kept`` under a ``key`` list unwrapped; ``Unreadable`` for one anywhere else."""

    def walk(node: Any, inside: bool) -> Any:
        if isinstance(node, _Kept):
            if not inside:
                raise Unreadable(node.why)
            return node.value
        if isinstance(node, dict):
            return {k: walk(v, inside or (k == key and isinstance(v, list))) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(item, inside) for item in node]
        return node

    return walk(value, False)


def loads(text: str | bytes, judged_alone: str | None = None) -> Any:
    """``json.loads`` that raises ``Unreadable`` for what the hub could not keep, ``ValueError`` (or
    ``RecursionError``) for what is not JSON at all.

    Inside a list under the key ``judged_alone`` (a gateway's ``samples``), such numbers are read as Python reads
    them (NaN, infinity, the big integer) and left to the caller, which rejects that one item with its reason: a
    probe's NaN costs one reading, not the gateway's whole upload.
    """
    if judged_alone is None:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    else:
        kept: list[_Kept] = []

        def keep(parse: Any, raw: Any) -> Any:
            def read(token: str) -> Any:
                try:
                    return parse(token)
                except Unreadable as exc:
                    kept.append(_Kept(raw(token), str(exc)))
                    return kept[-1]
            return read

        value = json.loads(text, parse_int=keep(_int, int), parse_float=keep(_float, float),
                           parse_constant=keep(_constant, float))
        if kept:
            value = _settle(value, judged_alone)
    escaped = _SURROGATE_ESCAPE_BYTES.search(text) if isinstance(text, bytes) else _SURROGATE_ESCAPE.search(text)
    if escaped and _lone_surrogate(value):  # only an escape can make one, and escapes of pairs are common: walk then
        raise Unreadable("a string holds a lone surrogate, which is not Unicode")
    return value
