"""Shard keys: how each collection would be split across shards, declared next to its documents and indexes.

Every beanie document class carries ``shard_key`` (a ``ShardKey`` or ``Unsharded``) beside ``Settings.indexes``; the
collections written without a document class declare theirs next to their name (``SHARDING``). The hub shards
nothing itself: an operator runs ``sh.shardCollection`` with these keys. docs/sharding.md explains the choices;
tests/test_sharding.py holds code, doc and the indexes the database really has to each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ShardKey:
    """A tenant-prefixed shard key (field, 1) pairs; an index of the collection starts with these fields.

    ``before_sharding``: what has to change before the collection can be sharded with this key, when something does
    (MongoDB requires every unique index to start with the shard key; some unique rules span tenants today).
    """

    fields: tuple[tuple[str, int], ...]
    why: str
    before_sharding: str | None = None
    id_names_tenant: bool = False  # the key is ``_id``, a string that starts with the tenant id


@dataclass(frozen=True)
class Unsharded:
    """Stays on the primary shard: small, read across tenants, or coordination state of the hub processes."""

    why: str


Declaration = ShardKey | Unsharded


def key(*fields: str, why: str, before_sharding: str | None = None, id_names_tenant: bool = False) -> ShardKey:
    return ShardKey(tuple((name, 1) for name in fields), why, before_sharding, id_names_tenant)


def declared() -> dict[str, Declaration]:
    """Collection name -> its declaration, for every collection the hub writes."""
    from hub import keys, leases, ratelimit
    from hub.db import document_models
    from hub.events import ledger, sequencer
    from hub.models import sensor
    from hub.services import signals

    found: dict[str, Declaration] = {
        ledger.LEDGER: ledger.SHARDING, sequencer.STATE: sequencer.SHARDING, keys.COLLECTION: keys.SHARDING,
        leases.COLLECTION: leases.SHARDING, sensor.STATE_COLLECTION: sensor.STATE_SHARDING,
        ratelimit.COLLECTION: ratelimit.SHARDING, signals.STATE: signals.STATE_SHARDING,
    }
    for model in document_models():
        found[model.Settings.name] = model.shard_key  # type: ignore[attr-defined]
    return found
