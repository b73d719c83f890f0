"""The bus's ordering and back-pressure rules, without a database (owners and dispatch events need no lookup)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from hub.config import Settings
from hub.errors import RateLimited
from hub.events.bus import EventBus, LiveEvent, Subscription


def event(seq: int, type: str = "dispatch.created", owner: str = "acme", audience: tuple[str, ...] = ("acme",)):
    return LiveEvent(id=f"{seq:024x}", seq=seq, type=type, tenant_id=owner, audience=audience,
                     payload={"n": seq}, occurred_at=datetime.now(UTC))


def bus(**settings) -> EventBus:
    return EventBus(database=None, settings=Settings(**settings))  # type: ignore[arg-type]


async def test_live_events_at_or_below_the_replayed_position_are_dropped_at_the_seam():
    feed = bus()
    subscription = Subscription("acme", frozenset({"dispatch.created"}), None, queue_size=10)
    subscription.last_seq = 5  # what the replay delivered last
    for seq in (4, 5, 6, 7):
        subscription.offer(event(seq))
    stream = feed._stream(subscription, None)
    assert [(await stream.__anext__()).seq for _ in range(2)] == [6, 7]


async def test_the_feed_never_dispatches_an_event_twice_or_backwards():
    feed = bus()
    subscription = Subscription("acme", frozenset({"dispatch.created"}), None, queue_size=10)
    feed.by_tenant["acme"] = {subscription: None}
    for seq in (1, 2, 2, 1, 3):
        await feed._dispatch(event(seq))
    assert [subscription.queue.get_nowait().seq for _ in range(3)] == [1, 2, 3]
    assert subscription.queue.empty() and feed.delivered == 3


async def test_only_subscribers_in_the_audience_that_want_the_type_get_the_event():
    feed = bus()
    wanted = Subscription("shopco", frozenset({"dispatch.created"}), None, queue_size=10)
    other_type = Subscription("shopco", frozenset({"dispatch.received"}), None, queue_size=10)
    filtered = Subscription("shopco", frozenset({"dispatch.created"}), lambda e: e.payload["n"] > 5, queue_size=10)
    outsider = Subscription("rival", frozenset({"dispatch.created"}), None, queue_size=10)
    feed.by_tenant = {"shopco": dict.fromkeys([wanted, other_type, filtered]), "rival": {outsider: None}}
    await feed._dispatch(event(1, audience=("acme", "shopco")))
    assert wanted.queue.qsize() == 1
    assert other_type.queue.empty() and filtered.queue.empty() and outsider.queue.empty()


async def test_a_subscriber_that_falls_behind_is_cut_off_with_an_error_it_can_resume_from():
    feed = bus()
    subscription = Subscription("acme", frozenset({"dispatch.created"}), None, queue_size=2)
    for seq in (1, 2, 3):
        subscription.offer(event(seq))
    assert subscription.overflowed
    with pytest.raises(RateLimited, match="resubscribe with 'after'"):
        await feed._stream(subscription, None).__anext__()


async def test_the_tenant_limit_refuses_one_subscription_too_many():
    feed = bus(max_subscriptions_per_tenant=1)
    async with feed.subscribe("acme", ["dispatch.created"]):
        assert feed.count("acme") == 1
        with pytest.raises(RateLimited):
            async with feed.subscribe("acme", ["dispatch.created"]):
                pass
    assert feed.count("acme") == 0


class Writer:
    """A ``direct`` writer that takes events while ``open``."""

    def __init__(self) -> None:
        self.open = True
        self.written: list[int] = []

    def __call__(self, live: LiveEvent) -> bool:
        if self.open:
            self.written.append(live.seq)
        return self.open


async def test_a_waiting_reader_has_live_events_written_for_it_in_order_without_being_woken():
    feed = bus()
    writer = Writer()
    async with feed.subscribe("acme", ["dispatch.created"], direct=writer) as events:
        reader = asyncio.create_task(anext(events))
        await asyncio.sleep(0)  # the reader waits on its empty queue
        for seq in (1, 2, 2, 3):
            await feed._dispatch(event(seq))
        assert writer.written == [1, 2, 3]
        assert not reader.done() and feed.delivered == 3
        reader.cancel()


async def test_an_event_that_cannot_be_written_now_is_queued_and_every_later_one_waits_behind_it():
    feed = bus()
    writer = Writer()
    async with feed.subscribe("acme", ["dispatch.created"], direct=writer) as events:
        reader = asyncio.create_task(anext(events))
        await asyncio.sleep(0)
        await feed._dispatch(event(1))
        writer.open = False  # the socket stops taking writes
        await feed._dispatch(event(2))
        writer.open = True  # and takes them again: 3 must still not overtake 2
        await feed._dispatch(event(3))
        assert writer.written == [1]
        assert (await reader).seq == 2
        assert (await anext(events)).seq == 3
        # the queue is drained and the reader waits again: writing from the fan-out resumes
        reader = asyncio.create_task(anext(events))
        await asyncio.sleep(0)
        await feed._dispatch(event(4))
        assert writer.written == [1, 4] and not reader.done()
        reader.cancel()


async def test_nothing_is_written_from_the_fan_out_while_the_reader_replays():
    writer = Writer()
    subscription = Subscription("acme", frozenset({"dispatch.created"}), None, queue_size=10)
    subscription.direct = writer
    subscription.offer(event(1))  # not parked: the reader has not reached the live stream yet
    assert writer.written == [] and subscription.queue.qsize() == 1
