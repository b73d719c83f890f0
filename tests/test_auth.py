"""Bearer tokens: every way a token can be wrong answers UNAUTHENTICATED (401); a role not allowed answers FORBIDDEN.

Besides the hub's own issuer, two external identity providers are trusted, each serving its JWKS from a tiny
Starlette app on loopback: one maps (issuer, subject) to a tenant through the members collection, the other is
trusted to assert tenant and roles in a namespaced claim.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.config import TrustedIssuer
from hub.db import free_port
from tenants import service as tenant_service
from tests.conftest import hub_settings, start_hub

ME = "{ me { tenant { id } subject issuer roles } }"
UPSERT_SKU = 'mutation { upsertSku(input: {code: "A1", name: "Apple"}) { created } }'
INVITE = 'mutation ($p: ID!) { invitePartner(input: {partnerId: $p, weShare: [sku_master]}) { status } }'


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(
    header: dict[str, Any], claims: dict[str, Any], signature: bytes | None = None, hmac_key: bytes | None = None
) -> str:
    """A JWS assembled by hand, for algorithms and keys that pyjwt rightly refuses to sign with."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    if hmac_key is not None:
        signature = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature or b'')}"


def claims_for(hub: Any, tenant: str = "acme", roles: tuple[str, ...] = ("admin",), **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": hub.settings.issuer,
        "aud": hub.settings.audience,
        "sub": f"local:{tenant}",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        hub.settings.claim_namespace: {"tenant": tenant, "roles": list(roles)},
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def hub_signed(hub: Any, claims: dict[str, Any]) -> str:
    key = hub.keyring.current
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})


async def me_with(hub: Any, token: str | None, scheme: str = "Bearer") -> tuple[int, dict]:
    headers = {"authorization": f"{scheme} {token}"} if token is not None else {}
    response = await hub.http.post("/graphql", json={"query": ME}, headers=headers)
    return response.status_code, response.json() | {"_www": response.headers.get("www-authenticate")}


async def assert_unauthenticated(hub: Any, token: str | None, scheme: str = "Bearer") -> None:
    status, body = await me_with(hub, token, scheme)
    assert status == 401, body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert "data" not in body
    assert body["_www"] and body["_www"].startswith("Bearer")



@pytest.fixture(scope="module")
async def hub(key_file: Path, mongo_uri: str) -> AsyncIterator[Any]:
    """One hub for this module (starting one costs about a second): these tests change little, and never the same."""
    async for running in start_hub(hub_settings(key_file, mongo_uri)):
        await running.tenant("acme", "supplier")
        await running.tenant("globex", "retailer")
        yield running


@pytest.fixture
def acme(hub: Any) -> str:
    return "acme"


# -- the hub's own issuer --------------------------------------------------------------------------------------------


async def test_a_valid_token_is_accepted(hub, acme):
    status, body = await me_with(hub, hub_signed(hub, claims_for(hub)))
    assert status == 200
    assert body["data"]["me"]["tenant"] == {"id": "acme"}


async def test_missing_token_is_unauthenticated(hub, acme):
    await assert_unauthenticated(hub, None)


async def test_wrong_scheme_or_garbage_is_unauthenticated(hub, acme):
    await assert_unauthenticated(hub, hub.token("acme"), scheme="Basic")
    await assert_unauthenticated(hub, "not-a-jwt")
    await assert_unauthenticated(hub, "a.b.c")


async def test_bad_signature_is_unauthenticated(hub, acme):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims_for(hub), other, algorithm="RS256", headers={"kid": hub.keyring.current.kid})
    await assert_unauthenticated(hub, token)


async def test_tampered_claims_are_unauthenticated(hub, acme):
    header, _, signature = hub.token("acme").split(".")
    forged_claims = b64(json.dumps(claims_for(hub, tenant="globex")).encode())
    await assert_unauthenticated(hub, f"{header}.{forged_claims}.{signature}")


async def test_unknown_key_id_is_unauthenticated(hub, acme):
    key = hub.keyring.current
    token = jwt.encode(claims_for(hub), key.private_key, algorithm="RS256", headers={"kid": "no-such-key"})
    await assert_unauthenticated(hub, token)


async def test_expired_token_is_unauthenticated(hub, acme):
    now = int(time.time())
    await assert_unauthenticated(hub, hub_signed(hub, claims_for(hub, iat=now - 7200, nbf=now - 7200, exp=now - 3600)))


async def test_token_not_yet_valid_is_unauthenticated(hub, acme):
    now = int(time.time())
    await assert_unauthenticated(hub, hub_signed(hub, claims_for(hub, nbf=now + 3600, exp=now + 7200)))


async def test_token_without_expiry_is_unauthenticated(hub, acme):
    claims = claims_for(hub)
    del claims["exp"]
    await assert_unauthenticated(hub, hub_signed(hub, claims))


async def test_wrong_audience_is_unauthenticated(hub, acme):
    await assert_unauthenticated(hub, hub_signed(hub, claims_for(hub, aud="someone-else")))


async def test_wrong_issuer_is_unauthenticated(hub, acme):
    await assert_unauthenticated(hub, hub_signed(hub, claims_for(hub, iss="https://evil.example")))


async def test_alg_none_is_unauthenticated(hub, acme):
    kid = hub.keyring.current.kid
    for alg in ("none", "None", "NONE"):
        await assert_unauthenticated(hub, forge({"alg": alg, "typ": "JWT", "kid": kid}, claims_for(hub)))


async def test_hs256_signed_with_the_public_key_pem_is_unauthenticated(hub, acme):
    key = hub.keyring.current
    pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for secret in (pem, pem.strip()):
        await assert_unauthenticated(
            hub, forge({"alg": "HS256", "typ": "JWT", "kid": key.kid}, claims_for(hub), hmac_key=secret)
        )


async def test_hs256_signed_with_the_public_jwk_is_unauthenticated(hub, acme):
    key = hub.keyring.current
    served = (await hub.http.get("/.well-known/jwks.json")).json()["keys"][0]
    for secret in (json.dumps(served).encode(), RSAAlgorithm.to_jwk(key.private_key.public_key()).encode()):
        await assert_unauthenticated(
            hub, forge({"alg": "HS256", "typ": "JWT", "kid": key.kid}, claims_for(hub), hmac_key=secret)
        )


async def test_token_for_an_unknown_tenant_is_unauthenticated(hub, acme):
    await assert_unauthenticated(hub, hub.token("ghost-tenant"))


async def test_malformed_tenant_claim_is_unauthenticated(hub, acme):
    await assert_unauthenticated(hub, hub_signed(hub, claims_for(hub) | {hub.settings.claim_namespace: {"tenant": 7}}))


async def test_viewer_may_read_but_not_write(hub, acme):
    assert (await hub.ok(ME, tenant="acme", roles=("viewer",)))["me"]["roles"] == ["viewer"]
    body = await hub.gql(UPSERT_SKU, tenant="acme", roles=("viewer",))
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert (await hub.ok('{ skus(filter: {code: "A1"}) { edges { cursor } } }', tenant="acme"))["skus"]["edges"] == []


async def test_only_admins_manage_partnerships(hub, acme):
    for role in ("planner", "operator", "viewer", "integration"):
        body = await hub.gql(INVITE, {"p": "globex"}, tenant="acme", roles=(role,))
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], role
    assert (await hub.ok(INVITE, {"p": "globex"}, tenant="acme"))["invitePartner"]["status"] == "invited"


async def test_integration_role_may_write(hub, acme):
    data = await hub.ok(UPSERT_SKU.replace("A1", "I1"), tenant="acme", roles=("integration",))
    assert data["upsertSku"]["created"] is True


async def test_the_hub_serves_its_public_keys_only(hub):
    keys = (await hub.http.get("/.well-known/jwks.json")).json()["keys"]
    assert keys and all(key["kty"] == "RSA" and key["alg"] == "RS256" for key in keys)
    assert not any(field in key for key in keys for field in ("d", "p", "q", "dp", "dq", "qi"))


# -- external identity providers ---------------------------------------------------------------------------------------


@dataclass
class IdentityProvider:
    issuer: str
    audience: str
    key: Any
    kid: str
    algorithm: str

    def token(self, subject: str, **extra: Any) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.audience, "sub": subject, "iat": now, "exp": now + 600, **extra}
        return jwt.encode(claims, self.key, algorithm=self.algorithm, headers={"kid": self.kid})

    def public_jwk(self) -> dict[str, Any]:
        codec = RSAAlgorithm if self.algorithm.startswith("RS") else ECAlgorithm
        return {**json.loads(codec.to_jwk(self.key.public_key())), "kid": self.kid, "alg": self.algorithm, "use": "sig"}


@dataclass
class Federation:
    hub: Any
    members_idp: IdentityProvider  # tenant and roles from the members collection
    claims_idp: IdentityProvider  # trusted to assert tenant and roles


async def serve_jwks(port: int, providers: dict[str, IdentityProvider]) -> AsyncIterator[None]:
    async def jwks(request: Any) -> JSONResponse:
        return JSONResponse({"keys": [providers[request.path_params["name"]].public_jwk()]})

    app = Starlette(routes=[Route("/{name}/jwks.json", jwks)])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield
    server.should_exit = True
    await task


@pytest.fixture(scope="module")
async def federation(key_file: Path, mongo_uri: str) -> AsyncIterator[Federation]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    members_idp = IdentityProvider(
        f"{base}/corp",
        "lotpulse-api",
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "corp-1",
        "RS256",
    )
    claims_idp = IdentityProvider(
        f"{base}/partner", "lotpulse", ec.generate_private_key(ec.SECP256R1()), "p-1", "ES256"
    )
    trusted = (
        TrustedIssuer(members_idp.issuer, f"{base}/corp/jwks.json", members_idp.audience),
        TrustedIssuer(claims_idp.issuer, f"{base}/partner/jwks.json", claims_idp.audience, trusted_claims=True),
        # An identity provider whose JWKS endpoint is down.
        TrustedIssuer(f"{base}/down", f"http://127.0.0.1:{free_port()}/jwks.json", trusted_claims=True),
    )
    async for _ in serve_jwks(port, {"corp": members_idp, "partner": claims_idp}):
        async for hub in start_hub(hub_settings(key_file, mongo_uri, trusted_issuers=trusted)):
            await hub.tenant("acme", "supplier")
            await hub.tenant("globex", "retailer")
            yield Federation(hub, members_idp, claims_idp)


async def test_member_of_an_external_issuer_gets_the_tenant_and_roles_recorded_for_it(federation):
    hub, idp = federation.hub, federation.members_idp
    await tenant_service.add_member("acme", idp.issuer, "alice", ["planner"])
    status, body = await me_with(hub, idp.token("alice"))
    assert status == 200, body
    assert body["data"]["me"] == {
        "tenant": {"id": "acme"},
        "subject": "alice",
        "issuer": idp.issuer,
        "roles": ["planner"],
    }


async def test_untrusted_claims_from_a_members_issuer_are_ignored(federation):
    hub, idp = federation.hub, federation.members_idp
    await tenant_service.add_member("acme", idp.issuer, "bob", ["viewer"])
    asserted = {hub.settings.claim_namespace: {"tenant": "globex", "roles": ["admin"]}}
    status, body = await me_with(hub, idp.token("bob", **asserted))
    assert body["data"]["me"]["tenant"] == {"id": "acme"}
    assert body["data"]["me"]["roles"] == ["viewer"]
    await assert_unauthenticated(hub, idp.token("mallory", **asserted))


async def test_a_member_removed_over_graphql_is_refused_at_once_by_that_process(federation):
    hub, idp = federation.hub, federation.members_idp
    member = await tenant_service.add_member("acme", idp.issuer, "carol", ["operator"])
    token = idp.token("carol")
    status, body = await me_with(hub, token)
    assert status == 200 and body["data"]["me"]["subject"] == "carol", body
    await hub.ok("mutation($id: ID!) { removeMember(id: $id) }", {"id": str(member.id)}, tenant="acme")
    await assert_unauthenticated(hub, token)


async def test_a_member_added_over_graphql_may_sign_in_at_once(federation):
    hub, idp = federation.hub, federation.members_idp
    token = idp.token("dana")
    await assert_unauthenticated(hub, token)  # not a member yet (and this process remembers that)
    add = "mutation($input: AddMemberInput!) { addMember(input: $input) { id } }"
    await hub.ok(add, {"input": {"issuer": idp.issuer, "subject": "dana", "roles": ["viewer"]}}, tenant="acme")
    status, body = await me_with(hub, token)
    assert status == 200 and body["data"]["me"]["roles"] == ["viewer"], body


async def test_unknown_subject_of_a_members_issuer_is_unauthenticated(federation):
    await assert_unauthenticated(federation.hub, federation.members_idp.token("nobody"))


async def test_trusted_issuer_may_assert_tenant_and_roles(federation):
    hub, idp = federation.hub, federation.claims_idp
    token = idp.token(
        "svc-42", **{hub.settings.claim_namespace: {"tenant": "globex", "roles": ["integration", "bogus"]}}
    )
    status, body = await me_with(hub, token)
    assert status == 200, body
    assert body["data"]["me"]["tenant"] == {"id": "globex"}
    assert body["data"]["me"]["roles"] == ["integration"]


async def test_a_token_naming_no_role_the_hub_knows_reads_nothing(federation):
    # a tenant alone is not a role: least privilege gives such a token nothing, not the reader's view
    hub, idp = federation.hub, federation.claims_idp
    for asserted in ({"tenant": "globex"}, {"tenant": "globex", "roles": []}, {"tenant": "globex", "roles": ["root"]}):
        await assert_unauthenticated(hub, idp.token("svc", **{hub.settings.claim_namespace: asserted}))


async def test_a_trusted_issuer_cannot_speak_for_another_identity(federation):
    # the member, family and identity-provider fields of the claim are the hub's own sign-in's, from no one else
    hub, idp, corp = federation.hub, federation.claims_idp, federation.members_idp
    member = await tenant_service.add_member("globex", corp.issuer, "gina", ["admin"])
    asserted = {"tenant": "globex", "roles": ["viewer"], "idp": corp.issuer, "idp_sub": "gina",
                "member": str(member.id)}
    status, body = await me_with(hub, idp.token("svc-7", **{hub.settings.claim_namespace: asserted}))
    assert status == 200, body
    assert (body["data"]["me"]["issuer"], body["data"]["me"]["subject"]) == (idp.issuer, "svc-7")


async def test_a_trusted_issuers_scope_claim_narrows_its_roles_in_any_shape(federation):
    hub, idp = federation.hub, federation.claims_idp
    asserted = {hub.settings.claim_namespace: {"tenant": "globex", "roles": ["admin"]}}
    for scope in ("read", ["read"]):  # RFC 9068's string, and the list some issuers send
        token = idp.token("svc-scoped", scope=scope, **asserted)
        body = (await hub.http.post("/graphql", json={"query": UPSERT_SKU},
                                    headers={"authorization": f"Bearer {token}"})).json()
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", (scope, body)
    # a scope or roles claim of any other shape is no token of ours
    for malformed in ({"scope": 7}, {"scope": ["read", 7]}):
        await assert_unauthenticated(hub, idp.token("svc-scoped", **malformed, **asserted))
    bad_roles = {hub.settings.claim_namespace: {"tenant": "globex", "roles": [{"admin": True}, "viewer"]}}
    await assert_unauthenticated(hub, idp.token("svc-scoped", **bad_roles))
    # a client id of another shape is not taken for one (pyjwt refuses a jti that is not a string)
    status, body = await me_with(hub, idp.token("svc-odd", client_id={"a": 1}, **asserted))
    assert status == 200 and body["data"]["me"]["subject"] == "svc-odd", body


async def test_trusted_issuer_asserting_an_unknown_tenant_is_unauthenticated(federation):
    hub, idp = federation.hub, federation.claims_idp
    await assert_unauthenticated(
        hub, idp.token("svc", **{hub.settings.claim_namespace: {"tenant": "nope", "roles": []}})
    )


async def test_external_token_with_the_wrong_audience_is_unauthenticated(federation):
    hub, idp = federation.hub, federation.members_idp
    await tenant_service.add_member("acme", idp.issuer, "carol", ["admin"])
    now = int(time.time())
    token = jwt.encode(
        {"iss": idp.issuer, "aud": "lotpulse", "sub": "carol", "exp": now + 600},
        idp.key,
        "RS256",
        headers={"kid": idp.kid},
    )
    await assert_unauthenticated(hub, token)


async def test_one_issuers_token_signed_with_another_issuers_key_is_unauthenticated(federation):
    hub, corp, partner = federation.hub, federation.members_idp, federation.claims_idp
    await tenant_service.add_member("acme", corp.issuer, "dave", ["admin"])
    now = int(time.time())
    claims = {"iss": corp.issuer, "aud": corp.audience, "sub": "dave", "exp": now + 600}
    await assert_unauthenticated(hub, jwt.encode(claims, partner.key, "ES256", headers={"kid": corp.kid}))
    hub_key = hub.keyring.current
    await assert_unauthenticated(hub, jwt.encode(claims, hub_key.private_key, "RS256", headers={"kid": hub_key.kid}))


async def test_algorithm_outside_an_issuers_allow_list_is_unauthenticated(federation):
    hub, corp = federation.hub, federation.members_idp
    await tenant_service.add_member("acme", corp.issuer, "erin", ["admin"])
    now = int(time.time())
    claims = {"iss": corp.issuer, "aud": corp.audience, "sub": "erin", "exp": now + 600}
    await assert_unauthenticated(hub, jwt.encode(claims, corp.key, "RS512", headers={"kid": corp.kid}))
    public_pem = corp.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    await assert_unauthenticated(hub, forge({"alg": "HS256", "kid": corp.kid}, claims, hmac_key=public_pem))
    await assert_unauthenticated(hub, forge({"alg": "none", "kid": corp.kid}, claims))


async def test_token_signed_with_a_key_missing_from_the_issuers_jwks_is_unauthenticated(federation):
    hub, corp = federation.hub, federation.members_idp
    await tenant_service.add_member("acme", corp.issuer, "frank", ["admin"])
    stray = IdentityProvider(corp.issuer, corp.audience, corp.key, "rotated-away", "RS256")
    await assert_unauthenticated(hub, stray.token("frank"))


async def test_issuer_whose_jwks_is_unreachable_is_unauthenticated_not_an_error(federation):
    hub, partner = federation.hub, federation.claims_idp
    down = IdentityProvider(partner.issuer.replace("/partner", "/down"), "lotpulse", partner.key, "p-1", "ES256")
    await assert_unauthenticated(
        hub, down.token("svc", **{hub.settings.claim_namespace: {"tenant": "acme", "roles": ["admin"]}})
    )
    assert (await hub.http.get("/healthz")).status_code == 200


async def test_a_validated_token_is_checked_once_then_kept_until_it_expires(hub, acme, monkeypatch):
    validator = hub.state.validator
    token = hub.token(acme, "viewer", ttl=600)
    lookups = []
    find_key = validator._issuer_key

    def counting(token: str, issuer: str) -> Any:
        lookups.append(issuer)
        return find_key(token, issuer)

    monkeypatch.setattr(validator, "_issuer_key", counting)
    first = await validator.authenticate(f"Bearer {token}")
    second = await validator.authenticate(f"Bearer {token}")
    assert first == second and len(lookups) == 1
    # once the kept result's expiry has passed, it is dropped and the token is checked again
    digest = hashlib.sha256(token.encode()).digest()
    expires, kid, claims = validator._verified[digest]
    assert expires == claims["exp"]
    validator._verified[digest] = (time.time() - 1, kid, claims)
    assert await validator.authenticate(f"Bearer {token}") == first
    assert len(lookups) == 2


async def test_a_token_changed_by_one_character_is_not_taken_for_a_kept_one(hub, acme):
    token = hub.token(acme, "viewer")
    assert (await hub.gql("{ me { subject } }", token=token)).get("data")
    forged = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    body = await hub.gql("{ me { subject } }", token=forged)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
