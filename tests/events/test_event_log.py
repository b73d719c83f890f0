"""The event log: written with the state or not at all, numbered densely after commit, retained by TTL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import SimpleNamespace

import pytest
from pymongo.errors import AutoReconnect

from hub.events.log import emit
from hub.models.event import Event
from tests.events.conftest import alert, numbered


class Rollback(Exception):
    pass


async def test_concurrent_transactions_commit_without_retrying_and_are_numbered_densely(hub):
    database = hub.state.database
    await emit(None, "stock.changed", "acme", [], {"n": -1})  # the collection exists before the race
    runs = []

    async def write(n: int) -> None:
        async def work(session):
            runs.append(n)
            await emit(session, "stock.changed", "acme", [], {"n": n})
            await asyncio.sleep(0.002)  # widen the window in which two transactions overlap

        await database.in_transaction(work)

    await asyncio.gather(*(write(n) for n in range(12)))
    # no shared document: no transaction had to run twice
    assert sorted(runs) == list(range(12))
    events = await numbered({"payload.n": {"$gte": 0}}, 12)
    seqs = sorted(event.seq for event in events)
    assert seqs == list(range(seqs[0], seqs[0] + 12))


async def test_an_event_is_written_pending_and_numbered_after_the_previous_one(hub):
    first = await emit(None, "stock.changed", "acme", [], {"k": "first"})
    assert first.seq is None and first.pending
    (first,) = await numbered({"_id": first.id}, 1)
    second = await emit(None, "stock.changed", "acme", ["shopco"], {"k": "second"})
    (second,) = await numbered({"_id": second.id}, 1)
    assert second.seq == first.seq + 1
    assert second.pending is None and second.audience == ["acme", "shopco"]


async def test_a_rolled_back_change_leaves_no_event_and_no_gap(hub):
    database = hub.state.database
    before = await emit(None, "stock.changed", "acme", [], {})

    async def work(session):
        await emit(session, "stock.changed", "acme", [], {"lost": True})
        raise Rollback

    with pytest.raises(Rollback):
        await database.in_transaction(work)
    after = await emit(None, "stock.changed", "acme", [], {})
    before, after = await numbered({"_id": {"$in": [before.id, after.id]}}, 2)
    assert after.seq == before.seq + 1
    assert await Event.find({"payload.lost": True}).count() == 0


async def test_events_leave_the_live_log_after_the_retention_period_and_never_expire_unarchived(hub):
    event = await emit(None, "stock.changed", "acme", [], {})
    assert event.expires_at - event.occurred_at == timedelta(days=hub.settings.event_retention_days)
    indexes = await Event.get_pymongo_collection().index_information()
    assert not [index for index in indexes.values() if "expireAfterSeconds" in index]  # archived: hub/events/archive.py


async def test_the_bus_runs_on_a_change_stream_when_the_database_offers_one(hub):
    assert hub.state.bus.mode == "change_stream"


async def test_a_restarted_feed_catches_up_from_the_log_without_duplicates(hub, trio, listen):
    # given: a subscriber, and the bus losing its stream while alerts are written
    bus = hub.state.bus
    acme = await listen("acme")
    await alert(hub, "shopco", ["acme"], "k1")
    assert (await acme.next())["alerts"]["alert"]["title"] == "alert k1"
    await hub.state.stop_task("event-bus")
    await alert(hub, "shopco", ["acme"], "k2")
    await alert(hub, "shopco", ["acme"], "k3")
    # when: the feed starts again from where it was
    last_seq = bus.last_seq
    hub.state.spawn("event-bus", lambda: bus._watch())
    # then: the subscriber gets the two it missed, once, in order, then live ones
    assert [m["alerts"]["alert"]["title"] for m in await acme.take(2)] == ["alert k2", "alert k3"]
    assert bus.last_seq > last_seq
    await alert(hub, "shopco", ["acme"], "k4")
    assert (await acme.next())["alerts"]["alert"]["title"] == "alert k4"
    assert await acme.silent_for(0.3)


class FlakyStream:
    """A change stream that drops its connection after ``survive`` changes, as a failover would."""

    def __init__(self, stream, survive: int) -> None:
        self.stream, self.survive = stream, survive

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stream.close()

    @property
    def resume_token(self):
        return self.stream.resume_token

    async def try_next(self):
        if self.survive == 0:
            raise AutoReconnect("connection reset (simulated)")
        change = await self.stream.try_next()
        if change is not None:
            self.survive -= 1
        return change


async def test_after_a_connection_drop_the_feed_resumes_from_its_token_without_gap_or_duplicate(hub, trio, listen):
    # given: the feed restarted on a database whose first change stream dies after one change
    bus = hub.state.bus
    await hub.state.stop_task("event-bus")
    real = bus.database
    resumed_from: list = []

    class Db:
        def __getitem__(self, name):
            return real.db[name]

        async def watch(self, pipeline, resume_after=None):
            resumed_from.append(resume_after)
            return FlakyStream(await real.db.watch(pipeline, resume_after=resume_after),
                               1 if len(resumed_from) == 1 else 10**6)

    bus.database = SimpleNamespace(db=Db())
    hub.state.spawn("event-bus", lambda: bus._watch())
    acme = await listen("acme")
    # when: alerts are written before, during and after the drop
    for key in ("k1", "k2", "k3"):
        await alert(hub, "shopco", ["acme"], key)
    # then: each arrives once, in order, and the second stream resumed from the first one's token
    assert [m["alerts"]["alert"]["title"] for m in await acme.take(3)] == ["alert k1", "alert k2", "alert k3"]
    assert await acme.silent_for(0.3)
    assert len(resumed_from) == 2 and resumed_from[0] is None and resumed_from[1] is not None
