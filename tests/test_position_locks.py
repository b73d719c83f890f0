"""Batches of one process naming the same positions take turns; others run side by side; nothing is kept after."""

from __future__ import annotations

import asyncio

from hub.services.position_locks import KeyedLocks


async def test_overlapping_holders_take_turns_and_disjoint_ones_do_not_wait() -> None:
    locks = KeyedLocks()
    inside: list[str] = []
    first_in, release_first = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with locks.hold([("dc", "a"), ("dc", "b")]):
            inside.append("first")
            first_in.set()
            await release_first.wait()
        inside.append("first out")

    async def overlapping() -> None:
        async with locks.hold([("dc", "b"), ("dc", "c")]):
            inside.append("overlapping")

    async def disjoint() -> None:
        async with locks.hold([("dc", "z")]):
            inside.append("disjoint")

    holder = asyncio.create_task(first())
    await first_in.wait()
    waiting = asyncio.create_task(overlapping())
    await disjoint()  # not held up by the first holder
    assert inside == ["first", "disjoint"] and not waiting.done()
    release_first.set()
    await asyncio.gather(holder, waiting)
    assert inside == ["first", "disjoint", "first out", "overlapping"]
    assert len(locks) == 0


async def test_keys_in_any_order_never_wait_crosswise_and_a_cancelled_waiter_leaves_nothing() -> None:
    locks = KeyedLocks()
    totals = {"x": 0, "y": 0}

    async def book(keys: list[str]) -> None:
        async with locks.hold(keys):
            for key in keys:
                before = totals[key]
                await asyncio.sleep(0)  # another batch would interleave here without the lock
                totals[key] = before + 1

    await asyncio.wait_for(asyncio.gather(*(book(["x", "y"] if n % 2 else ["y", "x"]) for n in range(50))), 30)
    assert totals == {"x": 50, "y": 50}

    held = asyncio.Event()

    async def hold_forever() -> None:
        async with locks.hold(["x"]):
            held.set()
            await asyncio.Event().wait()

    holder = asyncio.create_task(hold_forever())
    await held.wait()
    waiter = asyncio.create_task(book(["x"]))
    await asyncio.sleep(0)
    waiter.cancel()
    holder.cancel()
    await asyncio.gather(holder, waiter, return_exceptions=True)
    assert len(locks) == 0
