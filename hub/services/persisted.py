"""Automatic persisted queries (Apollo's APQ protocol) and per-client safelists.

APQ: a client sends ``extensions.persistedQuery.sha256Hash`` without the query; an unknown hash answers
``PERSISTED_QUERY_NOT_FOUND``, and the client sends both once, which registers the text under its hash for the
caller's tenant. A hash is known only to the tenants that registered it: a query text can hold what it asks about,
and a shared store would tell anyone whether some tenant ever ran a guessed text. Hashes are
stored in MongoDB (they survive restarts and are shared by every process) with a bounded in-process cache in front.

Safelist: a tenant admin registers the queries an OAuth client may run and can then enforce the list; an enforced
client's other queries are refused. Each process caches a client's list for ``ttl`` seconds (changes made on this
process apply at once).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from graphql import GraphQLError, parse
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from hub import audit
from hub.dates import utcnow
from hub.errors import BadInput, NotFound
from hub.models.persisted import ClientSafelist, PersistedQuery, SafelistedQuery
from hub.oauth.clients import tenant_client
from tenants.access import Access
from tenants.roles import Group

if TYPE_CHECKING:
    from hub.state import HubState

HASH = re.compile(r"[0-9a-f]{64}")


def sha256_hex(query: str) -> str:
    return hashlib.sha256(query.encode("utf-8")).hexdigest()


class PersistedQueries:
    """Query texts by hash, each answering only the tenants that registered it: a bounded LRU in front of the
    ``persisted_queries`` collection."""

    def __init__(self, size: int = 1000) -> None:
        self.size = size
        self._cache: OrderedDict[str, tuple[str, frozenset[str]]] = OrderedDict()

    def _remember(self, digest: str, query: str, tenants: Iterable[str]) -> None:
        self._cache[digest] = (query, frozenset(tenants))
        self._cache.move_to_end(digest)
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)

    async def lookup(self, digest: str, tenant: str | None) -> str | None:
        """The text behind ``digest`` if ``tenant`` registered it (``None``: whoever did, for the hub's own use
        before the caller is known, e.g. choosing a report's deadline; never answered to a client)."""
        cached = self._cache.get(digest)
        if cached is not None and (tenant is None or tenant in cached[1]):
            self._cache.move_to_end(digest)
            return cached[0]
        doc = await PersistedQuery.get(digest)  # another process may have registered it for this tenant
        if doc is None:
            return None
        self._remember(digest, doc.query, doc.tenants)
        return doc.query if tenant is None or tenant in doc.tenants else None

    async def register(self, digest: str, query: str, tenant: str) -> None:
        cached = self._cache.get(digest)
        if cached is not None and tenant in cached[1]:
            return
        collection = PersistedQuery.get_pymongo_collection()
        change = {"$setOnInsert": {"query": query, "created_at": utcnow()}, "$addToSet": {"tenants": tenant}}
        try:
            doc = await collection.find_one_and_update({"_id": digest}, change, upsert=True,
                                                       return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:  # inserted meanwhile by another request or process: add the tenant to it
            doc = await collection.find_one_and_update({"_id": digest}, {"$addToSet": {"tenants": tenant}},
                                                       return_document=ReturnDocument.AFTER)
        self._remember(digest, query, doc.get("tenants", []) if doc else [tenant])


class Safelists:
    """Which hashes an enforcing client may run, cached per process for ``ttl`` seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._cache: dict[str, tuple[float, frozenset[str] | None]] = {}

    def forget(self, client_id: str) -> None:
        self._cache.pop(client_id, None)

    async def allowed(self, client_id: str) -> frozenset[str] | None:
        """The client's safelisted hashes if it enforces a safelist, else None (anything may run)."""
        cached = self._cache.get(client_id)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        mode = await ClientSafelist.get(client_id)
        hashes: frozenset[str] | None = None
        if mode is not None and mode.enforced:
            docs = await SafelistedQuery.find({"client_id": client_id}).to_list()
            hashes = frozenset(doc.hash for doc in docs)
        self._cache[client_id] = (time.monotonic(), hashes)
        return hashes


async def register_safelisted(
    access: Access, store: PersistedQueries, safelists: Safelists, client_id: str, query: str, name: str | None
) -> SafelistedQuery:
    access.require(Group.administration)
    client = await tenant_client(access, client_id)
    try:
        parse(query)
    except GraphQLError as exc:
        raise BadInput(f"query does not parse: {exc.message}", field="query") from None
    digest = sha256_hex(query)
    await store.register(digest, query, access.tenant_id)
    existing = await SafelistedQuery.find_one({"client_id": client.client_id, "hash": digest})
    if existing is not None:
        return existing
    entry = SafelistedQuery(tenant_id=access.tenant_id, client_id=client.client_id, hash=digest, name=name,
                            created_by=access.principal.subject)
    try:
        await entry.insert()
    except DuplicateKeyError:
        found = await SafelistedQuery.find_one({"client_id": client.client_id, "hash": digest})
        assert found is not None
        return found
    safelists.forget(client.client_id)
    await audit.record("client.safelist_added", tenant_id=access.tenant_id, principal=access.principal,
                       target=client.client_id, details={"hash": digest, "name": name})
    return entry


async def remove_safelisted(access: Access, safelists: Safelists, client_id: str, digest: str) -> bool:
    access.require(Group.administration)
    client = await tenant_client(access, client_id)
    result = await SafelistedQuery.get_pymongo_collection().delete_one({"client_id": client.client_id, "hash": digest})
    if result.deleted_count == 0:
        raise NotFound("safelisted query not found")
    safelists.forget(client.client_id)
    await audit.record("client.safelist_removed", tenant_id=access.tenant_id, principal=access.principal,
                       target=client.client_id, details={"hash": digest})
    return True


async def set_enforced(access: Access, safelists: Safelists, client_id: str, enforced: bool) -> bool:
    access.require(Group.administration)
    client = await tenant_client(access, client_id)
    await ClientSafelist.get_pymongo_collection().update_one(
        {"_id": client.client_id},
        {"$set": {"tenant_id": access.tenant_id, "enforced": enforced, "updated_at": utcnow()}},
        upsert=True,
    )
    safelists.forget(client.client_id)
    await audit.record("client.safelist_enforced" if enforced else "client.safelist_relaxed",
                       tenant_id=access.tenant_id, principal=access.principal, target=client.client_id)
    return enforced


async def safelist_of(access: Access, client_id: str) -> tuple[bool, list[SafelistedQuery]]:
    access.require(Group.administration)
    client = await tenant_client(access, client_id)
    mode = await ClientSafelist.get(client.client_id)
    entries = await SafelistedQuery.find({"client_id": client.client_id}).sort("created_at").to_list()
    return bool(mode and mode.enforced), entries


async def start_persisted_queries(hub: HubState) -> None:
    """Startup hook: the process's APQ cache and safelist cache."""
    hub.persisted_queries = PersistedQueries()
    hub.safelists = Safelists(hub.settings.safelist_cache_seconds)
