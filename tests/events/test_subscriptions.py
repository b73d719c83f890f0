"""Live alerts over graphql-transport-ws: who hears what, resuming from a cursor, and revocation."""

from __future__ import annotations

import asyncio

import pytest
from gql.transport.exceptions import TransportQueryError
from pymongo.errors import AutoReconnect

from hub.errors import RateLimited
from hub.events.bus import EventBus
from hub.events.ledger import LEDGER, Ledger
from hub.models.alert import AlertKind, Severity
from tests.events.conftest import ACKNOWLEDGE, REVOKE, alert


async def test_alert_reaches_owner_and_partner_but_not_a_stranger(hub, trio, listen):
    # given
    acme, shopco, rival = await listen("acme"), await listen("shopco"), await listen("rival")
    # when
    raised = await alert(hub, "shopco", ["acme", "shopco"], "k1")
    # then
    for listener in (acme, shopco):
        message = (await listener.next())["alerts"]
        assert message["type"] == "mismatch.detected"
        assert message["alert"]["id"] == str(raised.id) and message["alert"]["ownerId"] == "shopco"
        assert message["alert"]["status"] == "open" and message["alert"]["evidence"] == {"n": 1}
    assert await rival.silent_for(0.5)


async def test_an_audience_member_without_the_alerts_scope_hears_nothing(hub, listen):
    for tenant in ("acme", "shopco"):
        await hub.tenant(tenant)
    acme = await listen("acme")
    # no partnership: Shopco never shared its alerts with Acme, even though the audience names Acme
    await alert(hub, "shopco", ["acme"], "k1")
    assert await acme.silent_for(0.5)


async def test_acknowledgement_reaches_every_party(hub, trio, listen):
    raised = await alert(hub, "shopco", ["acme"], "k1")
    acme = await listen("acme")
    await hub.ok(ACKNOWLEDGE, {"id": str(raised.id), "note": "on it"}, tenant="shopco", roles=("operator",))
    message = (await acme.next())["alerts"]
    assert message["type"] == "alert.acknowledged"
    assert message["alert"]["status"] == "acknowledged" and message["alert"]["note"] == "on it"
    assert message["alert"]["acknowledgedBy"] == "shopco:local:shopco"


async def test_resuming_after_a_cursor_replays_exactly_what_was_missed_in_order_then_goes_live(hub, trio, listen):
    # given: Acme heard one alert, then went offline
    first = await listen("acme")
    await alert(hub, "shopco", ["acme"], "k0")
    cursor = (await first.next())["alerts"]["cursor"]
    await first.close()
    # when: three alerts happen while it is away (plus one it may not hear), and it reconnects with the cursor
    for key in ("k1", "k2", "k3"):
        await alert(hub, "shopco", ["acme"], key)
    await alert(hub, "rival", [], "not-for-acme")
    resumed = await listen("acme", variables={"after": cursor})
    replayed = await resumed.take(3)
    # then: exactly those three, in order, then the live ones
    assert [m["alerts"]["alert"]["title"] for m in replayed] == ["alert k1", "alert k2", "alert k3"]
    await alert(hub, "shopco", ["acme"], "k4")
    live = await resumed.next()
    assert live["alerts"]["alert"]["title"] == "alert k4"
    assert await resumed.silent_for(0.3)
    cursors = [m["alerts"]["cursor"] for m in [*replayed, live]]
    assert len(set(cursors)) == 4 and cursor not in cursors


async def test_events_committed_during_the_replay_arrive_once(hub, trio, listen):
    first = await listen("acme")
    await alert(hub, "shopco", ["acme"], "k0")
    cursor = (await first.next())["alerts"]["cursor"]
    await first.close()
    for n in range(1, 6):
        await alert(hub, "shopco", ["acme"], f"k{n}")
    # alerts keep coming while the subscriber replays
    writer = asyncio.create_task(_raise_many(hub, range(6, 16)))
    resumed = await listen("acme", variables={"after": cursor}, wait=False)
    await writer
    titles = [m["alerts"]["alert"]["title"] for m in await resumed.take(15)]
    assert titles == [f"alert k{n}" for n in range(1, 16)]
    assert await resumed.silent_for(0.3)


async def _raise_many(hub, numbers) -> None:
    for n in numbers:
        await alert(hub, "shopco", ["acme"], f"k{n}")


async def test_a_cursor_from_another_tenants_stream_is_refused(hub, trio, listen):
    first = await listen("shopco")
    await alert(hub, "shopco", [], "private")
    cursor = (await first.next())["alerts"]["cursor"]
    stranger = await listen("rival", variables={"after": cursor}, wait=False)
    error = await stranger.ended()
    assert isinstance(error, TransportQueryError)
    assert error.errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_replay_skips_events_the_subscriber_is_no_longer_entitled_to(hub, trio, listen):
    first = await listen("acme")
    await alert(hub, "shopco", ["acme"], "k0")
    cursor = (await first.next())["alerts"]["cursor"]
    await first.close()
    await alert(hub, "acme", ["shopco"], "own")  # Acme's own alert: always its to hear
    await alert(hub, "shopco", ["acme"], "k1")
    await hub.ok(REVOKE, {"id": trio}, tenant="shopco")
    resumed = await listen("acme", variables={"after": cursor})
    assert [m["alerts"]["alert"]["title"] for m in await resumed.take(1)] == ["alert own"]
    assert await resumed.silent_for(0.3)


async def test_revoking_a_partnership_stops_delivery_to_the_revoked_partner_at_once(hub, trio, listen):
    # given: Acme hears Shopco's alerts
    acme, shopco = await listen("acme"), await listen("shopco")
    await alert(hub, "shopco", ["acme"], "before")
    assert (await acme.next())["alerts"]["alert"]["title"] == "alert before"
    await shopco.next()
    # when: Shopco revokes, then raises the next alert right away
    await hub.ok(REVOKE, {"id": trio}, tenant="shopco")
    await alert(hub, "shopco", ["acme"], "after")
    # then: Shopco hears it, Acme does not
    assert (await shopco.next())["alerts"]["alert"]["title"] == "alert after"
    assert await acme.silent_for(0.5)


async def test_filter_selects_kinds_and_severities(hub, trio, listen):
    critical_spikes = await listen(
        "acme", variables={"filter": {"kinds": ["sensor_spike"], "severities": ["critical"]}}
    )
    await alert(hub, "shopco", ["acme"], "m", kind=AlertKind.mismatch, severity=Severity.critical)
    await alert(hub, "shopco", ["acme"], "s1", kind=AlertKind.sensor_spike, severity=Severity.warning)
    await alert(hub, "shopco", ["acme"], "s2", kind=AlertKind.sensor_spike, severity=Severity.critical)
    message = (await critical_spikes.next())["alerts"]
    assert message["type"] == "sensor_spike.detected" and message["alert"]["title"] == "alert s2"
    assert await critical_spikes.silent_for(0.3)


async def test_filter_by_event_type_rejects_unknown_types(hub, trio, listen):
    acks = await listen("acme", variables={"filter": {"types": ["alert.acknowledged"]}})
    raised = await alert(hub, "shopco", ["acme"], "k1")
    await hub.ok(ACKNOWLEDGE, {"id": str(raised.id)}, tenant="acme")
    assert (await acks.next())["alerts"]["type"] == "alert.acknowledged"
    bad = await listen("acme", variables={"filter": {"types": ["stock.changed"]}}, wait=False)
    error = await bad.ended()
    assert isinstance(error, TransportQueryError)
    assert error.errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_live_subscriptions_per_tenant_are_limited(hub, trio, listen):
    hub.state.bus.settings = hub.settings.with_(max_subscriptions_per_tenant=2)
    await listen("acme")
    await listen("acme")
    third = await listen("acme", wait=False)
    error = await third.ended()
    assert isinstance(error, TransportQueryError)
    assert error.errors[0]["extensions"]["code"] == "RATE_LIMITED"
    # another tenant is not affected
    shopco = await listen("shopco")
    await alert(hub, "shopco", [], "k1")
    assert (await shopco.next())["alerts"]["alert"]["title"] == "alert k1"


async def test_an_invalid_subscription_document_is_answered_with_an_error(hub, trio, listen):
    bad = await listen("acme", query="subscription { alerts { nope } }", wait=False)
    error = await bad.ended()
    assert isinstance(error, TransportQueryError)
    assert "nope" in error.errors[0]["message"]


EVENT_CURSOR = "{ eventCursor }"


async def test_a_client_can_read_state_then_subscribe_from_the_cursor_it_read_with(hub, trio, listen):
    assert (await hub.ok(EVENT_CURSOR, tenant="acme"))["eventCursor"] is None
    await alert(hub, "shopco", ["acme"], "k1")
    # given: the client reads its state and the cursor together
    cursor = (await hub.ok(EVENT_CURSOR, tenant="acme"))["eventCursor"]
    # when: something happens before it manages to subscribe
    await alert(hub, "shopco", ["acme"], "k2")
    await alert(hub, "rival", [], "not-for-acme")
    resumed = await listen("acme", variables={"after": cursor})
    # then: it still hears it, and nothing from before its read
    assert (await resumed.next())["alerts"]["alert"]["title"] == "alert k2"
    assert await resumed.silent_for(0.3)
    assert (await hub.ok(EVENT_CURSOR, tenant="rival"))["eventCursor"] != cursor


async def test_the_tenant_limit_counts_subscriptions_on_every_hub_process(hub, trio, listen):
    # given: a limit of two, one subscription here and one on another process sharing the database
    bus = hub.state.bus
    bus.settings = hub.settings.with_(max_subscriptions_per_tenant=2)
    elsewhere = EventBus(hub.state.database, bus.settings, Ledger(hub.state.database))
    await listen("acme")
    async with elsewhere.subscribe("acme", ["mismatch.detected"]):
        # when / then: a third one is refused, wherever it connects
        third = await listen("acme", wait=False)
        error = await third.ended()
        assert isinstance(error, TransportQueryError)
        assert error.errors[0]["extensions"]["code"] == "RATE_LIMITED"
    # once the other process's subscription ends, there is room again
    for _ in range(500):
        if await counted(hub, "acme") == 1:
            break
        await asyncio.sleep(0.02)
    await listen("acme")


async def counted(hub, tenant: str) -> int:
    return sum([doc["count"] async for doc in hub.state.database.db[LEDGER].find({"tenant_id": tenant})])


async def test_a_process_keeps_one_ledger_document_per_tenant_whatever_its_subscriptions(hub, trio):
    # given: one process admitting 30 subscriptions of one tenant and 2 of another
    ledger = Ledger(hub.state.database)
    entries = [await ledger.admit("acme", limit=100) for _ in range(30)]
    entries += [await ledger.admit("shopco", limit=100) for _ in range(2)]
    # then: its renewal has two documents to write, which count them
    mine = {doc["tenant_id"]: doc["count"] async for doc in hub.state.database.db[LEDGER].find(
        {"process": ledger.process})}
    assert mine == {"acme": 30, "shopco": 2}
    # and releasing them takes them off the count
    for entry in entries[:29] + entries[30:]:
        ledger.release(entry)
    while ledger._releases:
        await asyncio.gather(*ledger._releases)
    assert await counted(hub, "acme") == 1 and await counted(hub, "shopco") == 0
    with pytest.raises(RateLimited):
        await ledger.admit("acme", limit=1)
    assert await counted(hub, "acme") == 1  # a refused admission counts nothing


async def test_a_release_the_database_missed_is_applied_by_the_next_renewal(hub, trio):
    # given: a subscription counted, then released while the database is away
    ledger = Ledger(hub.state.database)
    entry = await ledger.admit("away-co", limit=5)

    class Away:
        async def update_one(self, *args, **kwargs):
            raise AutoReconnect("the database is away")

    ledger.collection, real = Away(), ledger.collection
    ledger.release(entry)
    while ledger._releases:
        await asyncio.gather(*ledger._releases)
    ledger.collection = real
    assert await counted(hub, "away-co") == 1  # still counted: this process keeps renewing its document
    # when: the process renews its leases
    await ledger.renew()
    # then: the missed release is counted off, once
    assert await counted(hub, "away-co") == 0
    await ledger.renew()
    assert await counted(hub, "away-co") == 0


async def test_a_crashed_processs_subscriptions_stop_counting_when_their_lease_lapses(hub, trio):
    crashed = Ledger(hub.state.database, lease_seconds=0.2)  # never renewed: its process is gone
    await crashed.admit("acme", limit=1)
    with pytest.raises(RateLimited):
        await Ledger(hub.state.database).admit("acme", limit=1)
    await asyncio.sleep(0.3)
    await Ledger(hub.state.database).admit("acme", limit=1)
