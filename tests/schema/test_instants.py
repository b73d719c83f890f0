"""The DateTime scalar's fast path reads and refuses exactly what strawberry's own parser does."""

from __future__ import annotations

import pytest
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.schema.types.base_scalars import DateTimeDefinition

from schema.instants import parse_instant

READ = [
    "2026-12-01T10:23:00Z", "2026-12-01T10:23:00+00:00", "2026-12-01T10:23:00.125-05:30", "2026-12-01T10:23",
    "2026-12-01", "20261201T1023Z", "2026-W01-1T10:00", "2026-12-01T24:00:00", "2026-12-01T10:23:00.1234567+01:00",
]
REFUSED = ["nonsense", "2026-13-01T00:00:00Z", "", "2026-12-01T10:23:00+25:00", 5, None, ["2026-12-01"]]


@pytest.mark.parametrize("value", READ)
def test_an_instant_reads_as_strawberry_reads_it(value):
    assert parse_instant(value) == DateTimeDefinition.parse_value(value)


@pytest.mark.parametrize("value", REFUSED)
def test_what_strawberry_refuses_is_refused_with_its_message(value):
    with pytest.raises(StrawberryInputCoercionError) as ours:
        parse_instant(value)
    with pytest.raises(StrawberryInputCoercionError) as theirs:
        DateTimeDefinition.parse_value(value)

    assert str(ours.value) == str(theirs.value)
