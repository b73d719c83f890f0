"""Per-request GraphQL context: the hub's state, the caller, and its (lazily loaded) access rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.websockets import WebSocket

from hub.auth import Principal
from hub.errors import Unauthenticated
from tenants.access import Access

if TYPE_CHECKING:
    from hub.ratelimit import Decision
    from hub.state import HubState


@dataclass
class Context:
    hub: HubState
    request: Request | WebSocket
    response: Any = None
    principal: Principal | None = None
    connection_params: dict[str, Any] = field(default_factory=dict)
    rate_limit: Decision | None = None  # the tightest rate-limit decision so far, reported in the response headers
    _access: Access | None = None

    def require_principal(self) -> Principal:
        if self.principal is None:
            raise Unauthenticated("missing bearer token")
        return self.principal

    async def access(self) -> Access:
        """Access rules for this request (live subscriptions re-check entitlement per event in hub/events/bus.py).

        A WebSocket's context serves its whole connection, and graphql-transport-ws runs queries and mutations too:
        each of them reads the sharing afresh, so a revocation holds from the next operation on, as over HTTP."""
        if isinstance(self.request, WebSocket):
            return await Access.load(self.require_principal())
        if self._access is None:
            self._access = await Access.load(self.require_principal())
        return self._access
