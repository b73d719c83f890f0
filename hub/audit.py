"""The audit log: one ``record`` call per token issuance, refusal, revocation and admin change.

Where a request came from (IP, user agent) is captured once per request by ``OriginMiddleware`` into a context
variable, so services deep in the call stack can record it without threading the request through. Entries never
hold secrets or tokens: callers pass identifiers only, and ``details`` is scrubbed of credential-looking keys.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Receive, Scope, Send

from hub.models.audit import AuditEntry

if TYPE_CHECKING:
    from hub.auth import Principal

log = logging.getLogger("lotpulse.audit")
_SECRET_WORDS = ("secret", "token", "password", "code", "verifier", "assertion", "authorization")


@dataclass(frozen=True)
class Origin:
    ip: str | None = None
    user_agent: str | None = None


NO_ORIGIN = Origin()
_origin: contextvars.ContextVar[Origin | None] = contextvars.ContextVar("lotpulse_origin", default=None)
_acting: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("lotpulse_acting", default=None)


def current_origin() -> Origin:
    return _origin.get() or NO_ORIGIN


def bind(principal: Principal) -> None:
    """Remember who acts in this request (``Access.load`` calls it), so services record the actor unasked."""
    _acting.set(principal)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def proxy_networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    """Parse the trusted proxy setting (addresses or CIDR networks); a typo stops the hub at start, not later."""
    try:
        return tuple(ipaddress.ip_network(proxy.strip(), strict=False) for proxy in proxies)
    except ValueError as exc:
        raise ValueError(f"LOTPULSE_TRUSTED_PROXIES: {exc}") from None


def _trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_ip(peer: str | None, forwarded_for: list[str], proxies: tuple[Network, ...]) -> str | None:
    """The caller's address: the TCP peer, unless that is a trusted proxy; then the right-most X-Forwarded-For hop
    that is not a trusted proxy (earlier hops are whatever the client chose to send)."""
    if peer is None or not proxies or not _trusted(peer, proxies):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a proxy that forwards garbage: judge the proxy itself
    return hops[0] if hops else peer


class OriginMiddleware:
    """Remembers the caller's address and user agent for the audit log and rate limits (plain ASGI: HTTP and WS).

    X-Forwarded-For counts only when the peer is one of ``trusted_proxies``; uvicorn's own proxy handling is off
    (``hub.app.uvicorn_options``), so this is the one place that decides.
    """

    def __init__(self, app: ASGIApp, trusted_proxies: tuple[Network, ...] = ()) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            headers = scope.get("headers", [])
            agent = next((v.decode("latin-1") for k, v in headers if k == b"user-agent"), None)
            forwarded = [v.decode("latin-1") for k, v in headers if k == b"x-forwarded-for"]
            ip = client_ip(client[0] if client else None, forwarded, self.trusted_proxies)
            token = _origin.set(Origin(ip=ip, user_agent=(agent or "")[:200] or None))
            try:
                await self.app(scope, receive, send)
            finally:
                _origin.reset(token)
        else:
            await self.app(scope, receive, send)


def _scrub(details: dict[str, Any]) -> dict[str, Any]:
    return {
        key: "[redacted]" if any(word in key.lower() for word in _SECRET_WORDS) else value
        for key, value in details.items()
    }


def actor_of(principal: Principal | None) -> tuple[str | None, str, str | None]:
    """(actor, actor kind, client id) for a principal."""
    if principal is None:
        return None, "anonymous", None
    if principal.client_id and principal.extra.get("member_id") is None:
        return principal.client_id, "client", principal.client_id
    return principal.subject, "member", principal.client_id


def acting() -> tuple[str, str, str | None]:
    """(actor, actor kind, client id) of whoever acts in this request; the hub itself outside one."""
    principal = _acting.get()
    if principal is None:
        return "system", "system", None
    return actor_of(principal)  # type: ignore[return-value]


def entry(
    action: str,
    *,
    tenant_id: str | None,
    principal: Principal | None = None,
    actor: str | None = None,
    actor_kind: str | None = None,
    client_id: str | None = None,
    target: str | None = None,
    outcome: str = "success",
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    origin: Origin | None = None,
) -> AuditEntry:
    """One audit entry, with who acted and from where filled in from the request when not given."""
    who, kind, via = actor_of(principal if principal is not None else (None if actor else _acting.get()))
    where = origin or current_origin()
    return AuditEntry(
        tenant_id=tenant_id,
        action=action,
        outcome=outcome,
        actor=actor if actor is not None else who,
        actor_kind=actor_kind or kind,
        client_id=client_id if client_id is not None else via,
        target=target,
        reason=reason,
        ip=where.ip,
        user_agent=where.user_agent,
        details=_scrub(details or {}),
    )


async def record(
    action: str,
    *,
    tenant_id: str | None,
    principal: Principal | None = None,
    actor: str | None = None,
    actor_kind: str | None = None,
    client_id: str | None = None,
    target: str | None = None,
    outcome: str = "success",
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    origin: Origin | None = None,
) -> None:
    """Write one audit entry. An audit write that fails is logged, never raised: the action itself already
    happened (or was already refused), and the caller must still get its answer."""
    await record_all([entry(action, tenant_id=tenant_id, principal=principal, actor=actor, actor_kind=actor_kind,
                            client_id=client_id, target=target, outcome=outcome, reason=reason, details=details,
                            origin=origin)])


async def record_all(entries: list[AuditEntry]) -> None:
    """Write audit entries in one round trip (a stock import corrects thousands of counts at once); a failure is
    logged, never raised, as for ``record``."""
    if not entries:
        return
    try:
        await AuditEntry.insert_many(entries)
    except Exception:
        log.exception("could not write %d audit entries (%s for tenant %s)", len(entries), entries[0].action,
                      entries[0].tenant_id)
