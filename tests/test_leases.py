"""Periodic work shared by hub processes: tenants are split into leased partitions, each handled by one process.

``Partitions`` instances here stand for hub processes on the hub's database: a process that stops renewing (killed)
is simulated by one that is simply never refreshed again.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from hub.dates import utcnow
from hub.leases import PARTITIONS, Partitions, partition_of, tenant_ids
from hub.models.alert import Alert, AlertKind, Severity, SubjectRef
from hub.services.alerts import raise_alert
from hub.services.escalation import escalate_overdue


async def refresh_all(*processes: Partitions) -> None:
    for _ in range(3):  # shares settle once every process has seen the others
        for process in processes:
            await process.refresh()


async def test_live_processes_split_the_partitions_without_overlap(module_hub):
    database = module_hub.state.database
    job = f"split-{time.monotonic_ns()}"
    processes = [Partitions(database, job, lease_seconds=30) for _ in range(3)]
    await refresh_all(*processes)
    held = [process.held for process in processes]
    assert all(held), held  # each process has a share
    assert sum(len(h) for h in held) == PARTITIONS and frozenset().union(*held) == frozenset(range(PARTITIONS))
    for tenant in ("acme", "shopco", "rival", "northwind"):
        assert sum(process.owns(tenant) for process in processes) == 1


async def test_a_dead_process_s_partitions_are_taken_over_after_its_lease(module_hub):
    database = module_hub.state.database
    job = f"takeover-{time.monotonic_ns()}"
    survivor, dead = Partitions(database, job, lease_seconds=3), Partitions(database, job, lease_seconds=3)
    await refresh_all(survivor, dead)
    assert dead.held and len(survivor.held) < PARTITIONS
    # when: the dead one never renews again; then: the survivor takes everything once the lease has lapsed
    deadline = time.monotonic() + 20
    while len(await survivor.refresh()) < PARTITIONS:
        assert time.monotonic() < deadline, survivor.held
        await asyncio.sleep(0.1)
    assert survivor.held == frozenset(range(PARTITIONS))


async def test_each_overdue_alert_is_escalated_by_the_one_process_that_leases_its_owner(module_hub, suffix):
    # given: overdue alerts of many tenants, and two processes leasing the tenants' partitions
    database = module_hub.state.database
    owners = [f"t{n}-{suffix}" for n in range(12)]
    for owner in owners:
        await module_hub.tenant(owner, "retailer")

        async def work(session, owner=owner):  # type: ignore[no-untyped-def]
            return await raise_alert(session, kind=AlertKind.mismatch, severity=Severity.info, owner=owner,
                                     audience=[], title="late", dedupe_key=f"late-{owner}",
                                     subjects=[SubjectRef(kind="dispatch", id="d")], evidence={})

        await database.in_transaction(work)
    job = f"escalation-{suffix}"
    one, two = Partitions(database, job, lease_seconds=30), Partitions(database, job, lease_seconds=30)
    await refresh_all(one, two)
    later = utcnow() + timedelta(hours=1)
    # when: both run the escalation pass for their own tenants
    mine_one = [t for t in await tenant_ids(database, one) if t in owners]
    mine_two = [t for t in await tenant_ids(database, two) if t in owners]
    counts = await asyncio.gather(
        escalate_overdue(database, timedelta(minutes=30), later, tenants=mine_one),
        escalate_overdue(database, timedelta(minutes=30), later, tenants=mine_two),
    )
    # then: the owners are split between them, and every alert was escalated exactly once
    assert set(mine_one).isdisjoint(mine_two) and set(mine_one) | set(mine_two) == set(owners)
    assert counts == [len(mine_one), len(mine_two)]
    alerts = await Alert.find({"tenant_id": {"$in": owners}}).to_list()
    assert len(alerts) == 12 and all(a.severity == Severity.warning for a in alerts)


def test_a_tenant_s_partition_is_the_same_in_every_process():
    assert partition_of("acme") == 96778814 % PARTITIONS  # crc32 of the id, not the per-process hash()
