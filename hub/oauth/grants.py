"""The grants the hub supports, as authlib grant classes, with the RFC 9700 rules authlib leaves to us.

authlib's server is synchronous: its hooks run in a worker thread (``server.py``) and reach the async database
through ``anyio.from_thread.run``. Rules added here: a scope the client was not granted is refused (never silently
dropped), ``state`` is required, PKCE is required for every authorization code and only ``S256`` is accepted,
codes are single-use and a replayed code revokes what it issued, refresh tokens rotate and a reused one revokes its
whole family (RFC 9700 §2.1.1, §4.14).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from anyio import from_thread
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc7636 import CodeChallenge
from beanie import PydanticObjectId
from pymongo import ReturnDocument

from hub import audit
from hub.models.oauth import AuthorizationCode, RefreshToken, Revocation
from hub.oauth.revocation import family_key
from hub.oauth.scopes import parse_scope
from hub.oauth.tokens import Grantee, digest, utc_in
from tenants.models import Member

if TYPE_CHECKING:
    from hub.oauth.clients import HubClient
    from hub.oauth.server import HubAuthorizationServer

SECRET_OR_PUBLIC = ["client_secret_basic", "client_secret_post", "none"]


def _now() -> datetime:
    return datetime.now(UTC)


class ScopeRules:
    """Unknown scopes and scopes the client was not granted are both ``invalid_scope``."""

    request: Any
    server: HubAuthorizationServer

    def validate_requested_scope(self) -> None:
        self.server.validate_requested_scope(self.request.payload.scope)
        client: HubClient = self.request.client
        if lacking := client.lacks_scopes(self.request.payload.scope):
            raise InvalidScopeError(f"the client was not granted: {' '.join(lacking)}")


class ClientCredentialsGrant(ScopeRules, grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class S256Challenge(CodeChallenge):
    """PKCE for every client (RFC 9700 §2.1.1), ``S256`` only: ``plain`` protects nothing against a leaked request."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("'code_challenge' is required (PKCE with S256)")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256")
        super().validate_code_challenge(grant, redirect_uri)


@dataclass
class CodeRecord:
    """An ``AuthorizationCode`` as authlib's AuthorizationCodeMixin."""

    doc: AuthorizationCode

    @property
    def code_challenge(self) -> str:
        return self.doc.code_challenge

    @property
    def code_challenge_method(self) -> str:
        return self.doc.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.doc.redirect_uri

    def get_scope(self) -> str:
        return self.doc.scope


def _signed_in_at(auth_time: int | None) -> int:
    """A grant's sign-in time for the next token (codes and refresh tokens stored before it was kept: now)."""
    return int(time.time()) if auth_time is None else auth_time


async def _member(member_id: str, tenant_id: str) -> Member | None:
    return await Member.find_one({"_id": PydanticObjectId(member_id), "tenant_id": tenant_id})


async def _end_sign_in(server: Any, request: Any, client: HubClient, record: dict[str, Any], reason: str) -> None:
    """A code or refresh token came back after use: revoke every token of that sign-in, and say so in the audit."""
    await server.revocations.revoke_family(record["family_id"], record["tenant_id"], reason, server.access_ttl)
    await audit.record(
        "token.family_revoked",
        tenant_id=record["tenant_id"],
        actor=client.get_client_id(),
        actor_kind="client",
        client_id=client.get_client_id(),
        target=f"family:{record['family_id']}",
        outcome="refused",
        reason=reason,
        origin=request.origin,
    )


class AuthorizationCodeGrant(ScopeRules, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = SECRET_OR_PUBLIC

    def validate_authorization_request(self) -> str:
        if not self.request.payload.redirect_uri:
            # Registered URIs are matched exactly, so the request must name one (no implied default).
            raise InvalidRequestError("'redirect_uri' is required")
        redirect_uri = super().validate_authorization_request()
        if not self.request.payload.state:
            raise InvalidRequestError("'state' is required", redirect_uri=redirect_uri)
        return redirect_uri

    def create_authorization_response(self, redirect_uri: str, grant_user: Any) -> tuple[int, str, list]:
        status, body, headers = super().create_authorization_response(redirect_uri, grant_user)
        # RFC 9207: name the issuer in the response, so a client talking to several servers cannot be mixed up.
        location = add_params_to_uri(dict(headers)["Location"], [("iss", self.server.settings.issuer)])
        return status, body, [("Location", location)]

    def save_authorization_code(self, code: str, request: Any) -> None:
        grantee: Grantee = request.user
        data = request.payload.data
        doc = AuthorizationCode(
            code_hash=digest(code),
            client_id=request.client.get_client_id(),
            tenant_id=request.client.tenant_id,
            member_id=str(grantee.member.id),
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope or "",
            code_challenge=data["code_challenge"],
            code_challenge_method=data.get("code_challenge_method", "S256"),
            family_id=grantee.family_id,
            expires_at=utc_in(self.server.settings.oauth_code_ttl_seconds),
            auth_time=grantee.auth_time,
        )
        from_thread.run(doc.insert)

    def query_authorization_code(self, code: str, client: HubClient) -> CodeRecord | None:
        return from_thread.run(self._claim_code, digest(code), client)

    async def _claim_code(self, code_hash: str, client: HubClient) -> CodeRecord | None:
        """Mark the code used in the same step that reads it, so two racing redemptions cannot both succeed."""
        collection = AuthorizationCode.get_pymongo_collection()
        doc = await collection.find_one_and_update(
            {"code_hash": code_hash, "client_id": client.get_client_id(), "used": False, "expires_at": {"$gt": _now()}},
            {"$set": {"used": True}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is not None:
            return CodeRecord(AuthorizationCode.model_validate(doc))
        replayed = await collection.find_one(
            {"code_hash": code_hash, "client_id": client.get_client_id(), "used": True}
        )
        if replayed is not None:
            await _end_sign_in(self.server, self.request, client, replayed, "authorization code replayed")
        return None

    def delete_authorization_code(self, authorization_code: CodeRecord) -> None:
        """Kept (already marked used) until it expires, so a replay is recognised as one and not as a typo."""

    def authenticate_user(self, authorization_code: CodeRecord) -> Grantee | None:
        doc = authorization_code.doc
        member = from_thread.run(_member, doc.member_id, doc.tenant_id)
        return Grantee(member, family_id=doc.family_id, auth_time=_signed_in_at(doc.auth_time)) if member else None


@dataclass
class RefreshRecord:
    doc: RefreshToken

    def check_client(self, client: HubClient) -> bool:
        return self.doc.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.doc.scope


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = SECRET_OR_PUBLIC
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: every refresh answers a new refresh token

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshRecord | None:
        return from_thread.run(self._claim, digest(refresh_token), self.request.client)

    async def _claim(self, token_hash: str, client: HubClient) -> RefreshRecord | None:
        """Mark the token used in the same step that reads it (two racing refreshes: the second is a reuse).
        A request for more scope than the token holds is refused first, so a client bug does not burn the token."""
        collection = RefreshToken.get_pymongo_collection()
        owned = {"token_hash": token_hash, "client_id": client.get_client_id()}
        current = await collection.find_one(owned)
        if current is None:
            return None
        if not current["rotated"] and not set(parse_scope(self.request.payload.scope)) <= set(current["scope"].split()):
            raise InvalidScopeError("a refresh cannot widen the scope")
        doc = await collection.find_one_and_update(
            {**owned, "rotated": False, "revoked": False, "expires_at": {"$gt": _now()}},
            {"$set": {"rotated": True}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is not None:
            # The family may have been revoked while this token was being issued (a racing reuse or replay).
            if await Revocation.get_pymongo_collection().find_one({"key": family_key(doc["family_id"])}):
                return None
            return RefreshRecord(RefreshToken.model_validate(doc))
        reused = await collection.find_one(owned)
        if reused is not None and reused["rotated"] and not reused["revoked"]:
            # A rotated token came back: it was stolen, or the client lost track. Either way, end the sign-in.
            await _end_sign_in(self.server, self.request, client, reused, "refresh token reused")
        return None

    def authenticate_user(self, refresh_token: RefreshRecord) -> Grantee | None:
        doc = refresh_token.doc
        member = from_thread.run(_member, doc.member_id, doc.tenant_id)
        if member is None:
            return None
        return Grantee(member, family_id=doc.family_id, auth_time=_signed_in_at(doc.auth_time), refresh_scope=doc.scope)

    def revoke_old_credential(self, refresh_token: RefreshRecord) -> None:
        """Already marked rotated when it was claimed."""
