"""The hub answers over real HTTP on a real database."""

from __future__ import annotations

ME = "{ me { tenant { id name kind } roles } }"


async def test_health_and_readiness(hub):
    assert (await hub.http.get("/healthz")).json() == {"status": "ok"}
    assert (await hub.http.get("/readyz")).json() == {"status": "ready"}


async def test_me_answers_the_callers_tenant_and_roles(hub):
    await hub.tenant("acme", "supplier", "Acme Foods")
    data = await hub.ok(ME, tenant="acme", roles=("planner",))
    assert data["me"] == {"tenant": {"id": "acme", "name": "Acme Foods", "kind": "supplier"}, "roles": ["planner"]}
