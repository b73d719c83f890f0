"""Live-event fixtures: a standard graphql-transport-ws client (the ``gql`` package), and alerts raised directly.

``Listener`` runs one subscription in the background and queues what arrives, so a test can act and then assert
what each tenant heard (or did not) within a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from hub.models.alert import AlertKind, Severity, SubjectRef
from hub.models.event import Event
from hub.services.alerts import raise_alert

ALERTS_SUBSCRIPTION = """
subscription($filter: AlertEventFilter, $after: ID) {
  alerts(filter: $filter, after: $after) {
    cursor type occurredAt previousSeverity
    alert { id kind severity status ownerId title occurrences acknowledgedBy note evidence subjects { kind id } }
  }
}
"""
INVITE = "mutation($input: InvitePartnerInput!) { invitePartner(input: $input) { id } }"
ACCEPT = "mutation($id: ID!) { acceptPartnership(id: $id) { id status } }"
REVOKE = "mutation($id: ID!) { revokePartnership(id: $id) { id status } }"
ACKNOWLEDGE = """
mutation($id: ID!, $note: String) {
  acknowledgeAlert(id: $id, note: $note) { id status acknowledgedBy acknowledgedAt note severity }
}
"""
RESOLVE = """
mutation($id: ID!, $decision: AlertDecision, $note: String) {
  resolveAlert(id: $id, decision: $decision, note: $note) { id status resolvedBy note decision }
}
"""
DONE = object()


async def numbered(query: dict[str, Any], count: int, within: float = 20.0) -> list[Event]:
    """The ``count`` events matching ``query`` once the sequencer has numbered them all, in ``seq`` order."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        events = await Event.find({**query, "seq": {"$gt": 0}}).sort("seq").to_list()
        if len(events) >= count:
            assert len(events) == count, events
            return events
        assert asyncio.get_running_loop().time() < deadline, f"{len(events)} of {count} events numbered"
        await asyncio.sleep(0.02)


@dataclass
class Listener:
    """One subscription over its own WebSocket, run by gql's websockets transport."""

    url: str
    token: str
    query: str
    variables: dict[str, Any] | None = None
    received: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    error: BaseException | None = None
    task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        transport = WebsocketsTransport(
            url=self.url,
            init_payload={"authorization": f"Bearer {self.token}"},
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        )
        try:
            async with Client(transport=transport, fetch_schema_from_transport=False) as session:
                request = GraphQLRequest(self.query, variable_values=self.variables)
                async for result in session.subscribe(request):
                    await self.received.put(result)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.error = exc
        await self.received.put(DONE)

    def start(self) -> Listener:
        self.task = asyncio.create_task(self._run())
        return self

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        item = await asyncio.wait_for(self.received.get(), timeout)
        assert item is not DONE, f"subscription ended: {self.error!r}"
        return item

    async def take(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        return [await self.next(timeout) for _ in range(count)]

    async def silent_for(self, seconds: float) -> bool:
        """True when nothing arrives for ``seconds``."""
        try:
            item = await asyncio.wait_for(self.received.get(), seconds)
        except TimeoutError:
            return True
        await self.received.put(item)
        return False

    async def ended(self, timeout: float = 5.0) -> BaseException | None:
        """Wait for the subscription to end; answers the error that ended it."""
        while True:
            item = await asyncio.wait_for(self.received.get(), timeout)
            if item is DONE:
                return self.error

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task


@pytest.fixture
async def listen(hub) -> AsyncIterator[Any]:
    """``await listen(tenant, query, variables)``: a started listener, live on the hub's bus before it returns."""
    listeners: list[Listener] = []

    async def start(tenant: str, query: str = ALERTS_SUBSCRIPTION, variables: dict | None = None,
                    *, token: str | None = None, wait: bool = True) -> Listener:
        bus = hub.state.bus
        before = bus.count(tenant)
        listener = Listener(hub.ws_url, token or hub.token(tenant, "viewer"), query, variables).start()
        listeners.append(listener)
        if wait:
            for _ in range(500):
                if bus.count(tenant) > before:
                    break
                if listener.task.done():
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("subscription never reached the bus")
        return listener

    yield start
    for listener in listeners:
        await listener.close()


async def partner(hub, sharer: str, other: str, scopes: list[str], they_share: list[str] | None = None) -> str:
    """``sharer`` invites ``other`` sharing ``scopes``; ``other`` accepts. Answers the partnership id."""
    data = await hub.ok(INVITE, {"input": {"partnerId": other, "weShare": scopes, "theyShare": they_share or []}},
                        tenant=sharer)
    partnership = data["invitePartner"]["id"]
    await hub.ok(ACCEPT, {"id": partnership}, tenant=other)
    return partnership


async def alert(hub, owner: str, audience: list[str], key: str, *, severity: Severity = Severity.warning,
                kind: AlertKind = AlertKind.mismatch, evidence: dict | None = None, title: str | None = None) -> Any:
    """Raise an alert the way detectors do: in a transaction, with its event."""

    async def work(session: Any) -> Any:
        return await raise_alert(
            session, kind=kind, severity=severity, owner=owner, audience=audience, title=title or f"alert {key}",
            dedupe_key=key, subjects=[SubjectRef(kind="dispatch", id=f"d-{key}")], evidence=evidence or {"n": 1},
        )

    return await hub.state.database.in_transaction(work)


@pytest.fixture
async def trio(hub) -> Any:
    """Acme (supplier) and Shopco (retailer) share alerts both ways; Rival is unrelated."""
    for tenant, kind in (("acme", "supplier"), ("shopco", "retailer"), ("rival", "retailer")):
        await hub.tenant(tenant, kind)
    return await partner(hub, "acme", "shopco", ["alerts", "dispatches"], ["alerts", "stock"])
