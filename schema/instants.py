"""The ``DateTime`` scalar, read with the standard library's ISO 8601 parser first.

Strawberry reads ``DateTime`` inputs with dateutil's ``isoparse``: 7.6 µs a value against 0.2 µs for
``datetime.fromisoformat``, which on Python 3.11 reads every form gateways send; a batch of 5,000 typed readings spent
~40 ms there. What ``fromisoformat`` refuses still goes to strawberry's own parser, so the same inputs are accepted
and a value neither reads is refused with strawberry's message, as before.
"""

from __future__ import annotations

from datetime import datetime

from strawberry.schema.types.base_scalars import DateTimeDefinition
from strawberry.types.scalar import ScalarDefinition

_strawberry_parse = DateTimeDefinition.parse_value


def parse_instant(value: object) -> object:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return _strawberry_parse(value)  # type: ignore[misc]


DATETIME = ScalarDefinition(
    name=DateTimeDefinition.name,
    description=DateTimeDefinition.description,
    specified_by_url=DateTimeDefinition.specified_by_url,
    serialize=DateTimeDefinition.serialize,
    parse_value=parse_instant,
    parse_literal=None,
    origin=datetime,
)
