"""The sequencer's failure modes: a leader that dies, a hand-over, two processes that both believe they lead.

Each test runs extra ``Sequencer`` instances next to the hub's own (whose lease the test takes away first), on the
hub's database, and checks the one property readers rely on: every event gets exactly one number, and the numbers are
dense, so a reader that has seen n never meets a new event below n.
"""

from __future__ import annotations

import asyncio

from hub.events.log import build_event, emit_many
from hub.events.sequencer import STATE, STATE_ID, Sequencer
from hub.models.event import Event
from hub.state import cancel_and_wait
from tests.events.conftest import alert, numbered


async def stop_hubs_sequencer(hub) -> None:
    """The hub's own sequencer stops and gives up its lease, so the test's instances are alone."""
    await hub.state.stop_task("event-sequencer")


async def write(count: int, tag: str) -> list[Event]:
    events = [build_event("stock.changed", "acme", [], {"tag": tag, "n": n}) for n in range(count)]
    await emit_many(None, events)
    return events


def assert_dense(events: list[Event]) -> None:
    seqs = [event.seq for event in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


async def test_a_dead_leaders_lease_lapses_and_another_process_numbers_the_rest(hub):
    # given: a leader that numbered a first batch, then died without a word (its lease is left standing)
    await stop_hubs_sequencer(hub)
    dead = Sequencer(hub.state.database, lease_seconds=0.5)
    await write(5, "before")
    assert await dead.stamp_once() == 5
    await write(7, "after")
    # when: another process tries while the lease stands, and again once it has lapsed
    heir = Sequencer(hub.state.database, lease_seconds=0.5)
    assert await heir.stamp_once() == 0 and not heir.leader
    # (an unrenewed lease is all a crash leaves; it runs out on its own)
    deadline = asyncio.get_running_loop().time() + 20
    while not (stamped := await heir.stamp_once()):
        assert asyncio.get_running_loop().time() < deadline, "the lease was never taken over"
        await asyncio.sleep(0.05)
    assert stamped == 7
    # then: the numbering continues where the dead one stopped, with no gap and no repeat
    assert_dense(await numbered({"payload.tag": {"$in": ["before", "after"]}}, 12))


async def test_a_leader_that_stops_hands_over_at_once_and_nothing_is_numbered_twice(hub):
    await stop_hubs_sequencer(hub)
    first = Sequencer(hub.state.database, lease_seconds=60)
    await write(3, "one")
    assert await first.stamp_once() == 3
    await first.release()
    second = Sequencer(hub.state.database, lease_seconds=60)
    await write(4, "two")
    assert await second.stamp_once() == 4 and second.leader
    state = await hub.state.database.db[STATE].find_one({"_id": STATE_ID})
    assert state["owner"] == second.name
    assert_dense(await numbered({"payload.tag": {"$in": ["one", "two"]}}, 7))


async def test_a_process_that_is_not_leading_asks_for_the_lease_once_per_poll_not_per_insert(hub):
    # given: one process leads; another asked and was refused
    await stop_hubs_sequencer(hub)
    leader = Sequencer(hub.state.database, lease_seconds=60)
    await write(2, "poll")
    assert await leader.stamp_once() == 2
    other = Sequencer(hub.state.database, lease_seconds=60, poll_seconds=60)
    assert await other.stamp_once() == 0 and not other.leader
    # when: the lease is free, but the other is woken by an insert before its next poll is due
    await leader.release()
    await write(3, "poll")
    # then: it does not ask (each ask is a refused write while someone leads) ...
    assert await other.stamp_once() == 0 and not other.leader
    state = await hub.state.database.db[STATE].find_one({"_id": STATE_ID})
    assert state["owner"] is None
    # ... and takes over at that poll, continuing the numbering
    other.retry_at = 0.0
    assert await other.stamp_once() == 3 and other.leader
    assert_dense(await numbered({"payload.tag": "poll"}, 5))


async def test_two_processes_that_both_believe_they_lead_never_share_or_skip_a_number(hub):
    # given: two sequencers that both hold the lease in their own eyes (one was paused while its lease lapsed),
    # each with its own stale idea of the next number, and writers that keep adding events meanwhile
    await stop_hubs_sequencer(hub)
    database = hub.state.database
    await write(3, "race")
    a, b = Sequencer(database, lease_seconds=60), Sequencer(database, lease_seconds=60)
    assert await a.stamp_once() == 3
    for zombie in (a, b):
        zombie.leader, zombie.renew_at = True, float("inf")
    b.next_seq = 1  # far behind: its first stamp meets numbers that are taken

    async def writers() -> None:
        for _ in range(10):
            await write(5, "race")

    async def stamping(sequencer: Sequencer) -> None:
        for _ in range(40):
            await sequencer.stamp_once()
            await asyncio.sleep(0)

    # when: both stamp concurrently while events arrive
    await asyncio.gather(writers(), stamping(a), stamping(b))
    while await a.stamp_once() or await b.stamp_once():
        pass
    # then: all 53 events carry one number each, the numbers dense, none left pending
    events = await numbered({"payload.tag": "race"}, 53)
    assert_dense(events)
    assert len({event.id for event in events}) == 53
    assert await Event.find({"pending": True}).count() == 0


async def test_numbers_continue_above_the_high_water_mark_when_every_event_has_expired(hub):
    await stop_hubs_sequencer(hub)
    database = hub.state.database
    first = Sequencer(database, lease_seconds=60)
    await write(2, "old")
    await first.stamp_once()
    await first.release()  # records the high-water mark
    top = max(event.seq for event in await Event.find({"payload.tag": "old"}).to_list())
    await Event.get_pymongo_collection().delete_many({})  # retention removed the whole log
    later = Sequencer(database, lease_seconds=60)
    (event,) = await write(1, "new")
    await later.stamp_once()
    (event,) = await numbered({"_id": event.id}, 1)
    assert event.seq == top + 1


async def test_a_live_subscriber_gets_events_numbered_by_a_sequencer_in_another_process(hub, trio, listen):
    # The hub's sequencer is stopped; a "remote" one numbers the log, and the hub's bus delivers from its stamps.
    await stop_hubs_sequencer(hub)
    remote = Sequencer(hub.state.database, lease_seconds=60, poll_seconds=0.05)
    task = asyncio.create_task(remote.run())
    try:
        acme = await listen("acme")
        for key in ("k1", "k2"):
            await alert(hub, "shopco", ["acme"], key)
        assert [m["alerts"]["alert"]["title"] for m in await acme.take(2)] == ["alert k1", "alert k2"]
        # The stamps reach the subscriber through the database's change stream, which may be read before the
        # remote sequencer has read the reply to its own write and counted them.
        deadline = asyncio.get_running_loop().time() + 20
        while remote.stamped < 2:
            assert asyncio.get_running_loop().time() < deadline, remote.stamped
            await asyncio.sleep(0.05)
        state = await hub.state.database.db[STATE].find_one({"_id": STATE_ID})
        assert state["owner"] == remote.name
    finally:
        await cancel_and_wait([task])
