"""Event retention: events past the live window move to monthly archives (never silently dropped), an archived cursor
answers CURSOR_EXPIRED naming its archive, and `lotpulse events export` writes the whole history."""

from __future__ import annotations

import asyncio
import gzip
import json
from datetime import UTC, datetime, timedelta

from gql.transport.exceptions import TransportQueryError

from hub.dates import utcnow
from hub.events.archive import archive_due, archive_name, archives, export
from hub.models.event import Event
from tests.events.conftest import alert
from tests.test_cli import cli_env, lotpulse  # noqa: F401 - the CLI fixture

MARCH, APRIL = datetime(2026, 3, 5, 12, tzinfo=UTC), datetime(2026, 4, 2, 8, tzinfo=UTC)


async def numbered_events(count: int) -> list[Event]:
    for _ in range(200):
        events = await Event.find({"seq": {"$gt": 0}}).sort("seq").to_list()
        if len(events) >= count:
            return events
        await asyncio.sleep(0.05)
    raise AssertionError("the sequencer never numbered the events")


async def age(events: list[Event], occurred_at: datetime) -> None:
    """Make events look as if they occurred at ``occurred_at`` and left the live window since."""
    await Event.get_pymongo_collection().update_many(
        {"_id": {"$in": [e.id for e in events]}},
        {"$set": {"occurred_at": occurred_at, "expires_at": utcnow() - timedelta(seconds=1)}},
    )


async def test_expired_events_move_to_their_month_s_archive_and_nothing_is_lost(hub, trio):
    # given: four events; two from March and one from April are past the live window, the newest is not
    for key in ("k1", "k2", "k3", "k4"):
        await alert(hub, "shopco", ["acme"], key)
    events = await numbered_events(4)
    await age(events[:2], MARCH)
    await age(events[2:3], APRIL)
    database = hub.state.database
    # a pass that crashed after archiving one event and before deleting it
    await database.db[archive_name(MARCH)].insert_one(await Event.get_pymongo_collection().find_one(
        {"_id": events[0].id}))
    # when
    assert await archive_due(database) == 3
    assert await archive_due(database) == 0
    # then: each in its month, once; only the live one stays in the log
    assert await archives(database) == ["events_archive_2026_03", "events_archive_2026_04"]
    march = await database.db["events_archive_2026_03"].find({}).sort("seq").to_list(None)
    april = await database.db["events_archive_2026_04"].find({}).to_list(None)
    assert [d["_id"] for d in march] == [events[0].id, events[1].id]
    assert [d["_id"] for d in april] == [events[2].id]
    assert [e.id for e in await Event.find({}).to_list()] == [events[3].id]
    assert march[0]["payload"]["alert"]["title"] == "alert k1" and march[0]["seq"] == events[0].seq


async def test_a_cursor_older_than_the_live_window_names_its_archive(hub, trio, listen):
    await alert(hub, "shopco", ["acme"], "k1")
    await alert(hub, "shopco", [], "private")
    shared, private = await numbered_events(2)
    await age([shared, private], MARCH)
    await archive_due(hub.state.database)
    # when: acme resumes from the archived event it heard
    resumed = await listen("acme", variables={"after": str(shared.id)}, wait=False)
    error = await resumed.ended()
    # then: a typed error saying where the history is
    assert isinstance(error, TransportQueryError)
    [detail] = error.errors
    assert detail["extensions"]["code"] == "CURSOR_EXPIRED"
    assert detail["extensions"]["archive"] == "events_archive_2026_03" and detail["extensions"]["field"] == "after"
    assert "lotpulse events export --since 2026-03-05" in detail["message"]
    # and: a cursor of an event acme never heard stays unknown (no existence leak)
    stranger = await listen("acme", variables={"after": str(private.id)}, wait=False)
    error = await stranger.ended()
    assert isinstance(error, TransportQueryError) and error.errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_export_writes_archived_and_live_events_in_log_order(hub, trio, tmp_path, cli_env):
    for key in ("k1", "k2", "k3"):
        await alert(hub, "shopco", ["acme"], key)
    await alert(hub, "shopco", [], "private")
    events = await numbered_events(4)
    await age(events[:1], MARCH)
    await archive_due(hub.state.database)
    # the function: a tenant's history since March, the archived event first
    out = tmp_path / "acme.jsonl.gz"
    assert await export(hub.state.database, datetime(2026, 3, 1, tzinfo=UTC), out, tenant_id="acme") == 3
    with gzip.open(out, "rt") as lines:
        exported = [json.loads(line) for line in lines]
    assert [e["payload"]["alert"]["title"] for e in exported] == ["alert k1", "alert k2", "alert k3"]
    assert [e["seq"] for e in exported] == sorted(e["seq"] for e in exported)
    # the command: everything since March, every tenant
    done = lotpulse("events", "export", "--since", "2026-03-01", "--out", str(tmp_path / "all.jsonl.gz"), env=cli_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("4 events written")
    with gzip.open(tmp_path / "all.jsonl.gz", "rt") as lines:
        assert len(lines.readlines()) == 4
    # a date the command cannot read is refused before anything is written
    bad = lotpulse("events", "export", "--since", "last week", env=cli_env)
    assert bad.returncode == 2 and "not an ISO date" in bad.stderr
