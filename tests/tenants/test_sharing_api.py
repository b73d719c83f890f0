"""The sharing rule's API (tenants/access.py), as the bus, the webhook dispatcher and alert audiences ask it."""

from __future__ import annotations

from tenants import access
from tenants.models import Scope
from tests.catalog.conftest import ACCEPT, REVOKE
from tests.tenants.test_partnerships import invite


async def test_shares_follow_the_partnership_through_invite_accept_and_revoke(hub, acme, globex, initech):
    # given: Acme invites Globex, sharing its SKU master and alerts; Globex shares stock back
    pid = await invite(hub, acme, globex, we=("sku_master", "alerts"), they=("stock",))
    # then: an invitation shares nothing (and the answer is cached)
    assert await access.grantees(acme, Scope.alerts) == frozenset()
    assert not await access.may_reach(acme, globex, Scope.alerts)
    # when accepted, the cached answer is dropped at once in this process
    await hub.ok(ACCEPT, {"id": pid}, tenant=globex)
    assert await access.grantees(acme, Scope.alerts) == {globex}
    assert await access.grantees(globex, Scope.stock) == {acme}
    assert await access.shares_of(acme) == {globex: frozenset({Scope.sku_master, Scope.alerts})}
    assert await access.may_reach(acme, globex, Scope.sku_master)
    assert not await access.may_reach(acme, globex, Scope.stock)  # Acme shares no stock
    assert not await access.may_reach(acme, initech, Scope.alerts)  # a stranger
    assert await access.may_reach(acme, initech, None)  # news that needs no share (a dispatch's parties)
    assert await access.may_reach(acme, acme, Scope.alerts)  # the owner always
    # events: alert events need ``alerts``, stock changes ``stock``, dispatch events nothing
    assert await access.may_hear(globex, acme, "mismatch.detected")
    assert not await access.may_hear(globex, acme, "stock.changed")
    assert await access.may_hear(acme, globex, "stock.changed")
    assert await access.may_hear(initech, acme, "dispatch.created")
    # when revoked, every answer changes at once
    await hub.ok(REVOKE, {"id": pid}, tenant=acme)
    assert await access.grantees(acme, Scope.alerts) == frozenset()
    assert not await access.may_hear(globex, acme, "mismatch.detected")
    assert await access.shares_of(globex, fresh=True) == {}
