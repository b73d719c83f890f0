"""Shard keys in code: every collection the hub writes declares one next to its documents (hub/sharding.py), each key
starts with the tenant and is served by an index the database really has, every unique rule that does not start with
the key is named as work to do before sharding, and docs/sharding.md says exactly what the code declares."""

from __future__ import annotations

import re
from pathlib import Path

from hub.events.archive import PREFIX as ARCHIVES
from hub.sharding import Declaration, ShardKey, Unsharded, declared

DOC = Path(__file__).resolve().parent.parent / "docs" / "sharding.md"


def rendered(declaration: Declaration) -> str:
    if isinstance(declaration, Unsharded):
        return "unsharded"
    return "{" + ", ".join(f"{name}: {direction}" for name, direction in declaration.fields) + "}"


def starts_with(index_key: list[tuple[str, object]], fields: tuple[tuple[str, int], ...]) -> bool:
    return [tuple(part) for part in index_key[: len(fields)]] == [tuple(field) for field in fields]


async def test_every_collection_declares_a_tenant_prefixed_key_served_by_an_index(module_hub):
    database = module_hub.state.database.db
    declarations = declared()
    # the collections that exist once a hub has started (indexes built, leases taken, key ring stored)
    existing = {name for name in await database.list_collection_names() if not name.startswith(("system.", ARCHIVES))}
    assert existing - set(declarations) == set(), "collections without a shard key declaration"
    keys = {name: d for name, d in declarations.items() if isinstance(d, ShardKey)}
    assert len(keys) >= 15  # the tenant data is sharded; only small or coordination collections stay unsharded
    for name, key in keys.items():
        tenant_first = key.fields[0] == ("tenant_id", 1) or (key.id_names_tenant and key.fields == (("_id", 1),))
        assert tenant_first, f"{name}: the shard key must start with the tenant"
        indexes = await database[name].index_information()
        by_id = key.fields == (("_id", 1),)  # every collection has its _id index (made with its first document)
        assert by_id or any(starts_with(index["key"], key.fields) for index in indexes.values()), f"{name}: no index"
        unique = [i["key"] for n, i in indexes.items() if i.get("unique") and n != "_id_"]
        blocking = [index for index in unique if not starts_with(index, key.fields)]
        # MongoDB requires every unique index of a sharded collection to start with the shard key
        assert bool(blocking) == bool(key.before_sharding), (
            f"{name}: unique indexes {blocking} need a before_sharding note" if blocking
            else f"{name}: before_sharding names work that is already done")


def test_the_sharding_doc_lists_what_the_code_declares():
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 2 and re.fullmatch(r"`[a-z_]+`", cells[0]):
            rows[cells[0].strip("`")] = cells[1].strip("`")
    declarations = declared()
    assert set(rows) == set(declarations)
    assert {name: rendered(d) for name, d in declarations.items()} == rows
