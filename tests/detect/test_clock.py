"""The settable clock: the wall clock unless told otherwise; a virtual clock moves only forward, when told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub import clock
from hub.dates import utcnow
from tests.conftest import hub_settings, start_hub

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_a_virtual_clock_moves_only_forward_and_only_when_told():
    virtual = clock.VirtualClock(START)

    virtual.set(START - timedelta(hours=1))
    assert virtual.now() == START
    virtual.advance(timedelta(minutes=5))
    assert virtual.now() == START + timedelta(minutes=5)


def test_the_setting_names_the_wall_clock_or_where_a_virtual_one_starts():
    assert isinstance(clock.from_setting("wall"), clock.WallClock)
    assert clock.from_setting("2026-03-01T12:00:00+00:00").now() == START


def test_every_stamp_of_the_hub_reads_the_current_clock():
    previous = clock.use(clock.VirtualClock(START))
    try:
        assert utcnow() == START
    finally:
        clock.use(previous)
    assert abs(utcnow() - datetime.now(UTC)) < timedelta(seconds=5)


async def test_a_hub_started_with_lotpulse_clock_runs_on_it_and_gives_the_wall_clock_back(key_file, mongo_uri):
    settings = hub_settings(key_file, mongo_uri, clock=START.isoformat())
    async for running in start_hub(settings):
        assert utcnow() == START
        await running.tenant("acme")
        from tenants.models import Tenant

        assert (await Tenant.get("acme")).created_at == START
    assert abs(utcnow() - datetime.now(UTC)) < timedelta(seconds=5)
