"""Cross-tenant property: no operation lets another tenant read or change the owner's data by naming it.

From the live schema's introspection, every query and mutation with an id- or code-like argument (at any depth of
its input objects) is called by an unrelated tenant and by a partner the owner shares nothing with, with the
owner's real ids and codes. Each response must hold none of the owner's data that the caller did not send itself,
and the owner's state (every document in the database that mentions the owner or one of its ids) must be unchanged.
New operations are covered without touching this file: arguments come from the introspected types; only how to
fill a required scalar (``SCALARS``) and which of the owner's values suit an argument name (``KINDS``) are listed.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    build_client_schema,
    get_introspection_query,
    get_named_type,
    is_required_argument,
    is_required_input_field,
)

from hub.gs1 import check_digit
from tests.conftest import Hub, hub_settings, start_hub

# An argument or input field is id- or code-like by its name.
ID_LIKE = re.compile(r"(^id$|^ids$|Ids?$|^code$|Code$|^ref$|^sku$|^toLocation$|^after$|^cursor$|^gtin$|^hash$)")
# How to fill a required argument that is not id-like, per scalar type (anything else fails the test, loudly).
SCALARS: dict[str, Any] = {
    "String": "x", "ID": "x", "Int": 1, "Float": 1.0, "Boolean": False, "Date": "2030-01-01",
    "DateTime": "2030-01-01T00:00:00+00:00", "JSON": [],
}
# Which of the owner's values an argument gets, by words in its name (or, for a bare ``id``, in the operation's).
KINDS = {
    "sku": "sku", "location": "location", "parent": "location", "lot": "lot", "dispatch": "dispatch",
    "receipt": "receipt", "alert": "alert", "subject": "alert", "sensor": "sensor", "device": "sensor",
    "excursion": "excursion", "endpoint": "endpoint", "webhook": "endpoint", "delivery": "endpoint",
    "client": "client", "member": "member", "partnership": "partnership", "partner": "tenant",
    "consignee": "tenant", "carrier": "tenant", "owner": "tenant", "holder": "tenant", "after": "cursor",
    "cursor": "cursor", "gtin": "gtin", "ref": "dispatch", "hash": "safelist",
}
OK_CODES = {"NOT_FOUND", "FORBIDDEN", "BAD_USER_INPUT", "CONFLICT"}
MARKER = "zq-owner-marker"


def gtin13(seed: int) -> str:
    body = f"400{seed % 10**9:09d}"
    return body + str(check_digit(body))


@dataclass
class World:
    owner: str
    stranger: str
    partner: str
    values: dict[str, list[str]] = field(default_factory=dict)  # kind -> the owner's ids and codes of that kind
    private: set[str] = field(default_factory=set)  # strings that only the owner's data holds
    shared_with_partner: set[str] = field(default_factory=set)  # what the partner may know (the owner's tenant)
    partner_partnership: str = ""

    def pool(self, kind: str | None) -> list[str]:
        if kind is not None and self.values.get(kind):
            return self.values[kind]
        return [values[0] for values in self.values.values() if values]  # unknown: one of each kind


async def build_world(hub: Hub) -> World:
    sfx = uuid.uuid4().hex[:6]
    world = World(owner=f"own-{sfx}", stranger=f"str-{sfx}", partner=f"ptn-{sfx}")
    consignee, supplier = f"con-{sfx}", f"sup-{sfx}"
    for tenant, kind in ((world.owner, "supplier"), (consignee, "retailer"), (supplier, "supplier"),
                         (world.stranger, "retailer"), (world.partner, "retailer")):
        await hub.tenant(tenant, kind, name=f"Tenant {tenant}")

    async def ok(tenant: str, query: str, **variables: Any) -> dict:
        return await hub.ok(query, variables, tenant=tenant)

    async def partner(inviter: str, invitee: str, we: list[str], they: list[str]) -> str:
        invite = "mutation($i: InvitePartnerInput!) { invitePartner(input: $i) { id } }"
        pid = (await ok(inviter, invite, i={"partnerId": invitee, "weShare": we, "theyShare": they}))["invitePartner"]
        await ok(invitee, "mutation($id: ID!) { acceptPartnership(id: $id) { id } }", id=pid["id"])
        return pid["id"]

    owner = world.owner
    oc = await partner(consignee, owner, ["dispatches", "stock", "alerts"], ["sku_master", "alerts"])
    os_ = await partner(owner, supplier, ["dispatches"], ["sku_master"])
    world.partner_partnership = await partner(world.partner, owner, ["alerts"], [])  # the owner shares nothing
    upsert = "mutation($i: SkuInput!) { upsertSku(input: $i) { sku { id } } }"
    gtin = gtin13(int(sfx, 16))
    sku = (await ok(owner, upsert, i={
        "code": f"SKU-{sfx}", "name": f"{MARKER} yogurt", "gtin": gtin, "shelfLifeDays": 30,
        "storage": {"tempMaxC": 8.0}, "excursionSensitivity": 1.0}))["upsertSku"]["sku"]["id"]
    await ok(supplier, upsert, i={"code": f"SUPSKU-{sfx}", "name": "supplied"})
    await ok(consignee, "mutation($id: ID!, $c: String) { setSkuAlias(skuId: $id, code: $c) { id } }",
             id=sku, c=f"ALIAS-{sfx}")
    location = "mutation($i: CreateLocationInput!) { createLocation(input: $i) { id } }"
    wh = (await ok(owner, location, i={"code": f"WH-{sfx}", "name": f"{MARKER} wh", "kind": "warehouse"}))
    wh_id = wh["createLocation"]["id"]
    zone = (await ok(owner, location, i={"code": f"ZN-{sfx}", "name": f"{MARKER} zone", "kind": "zone",
                                        "parentId": wh_id}))["createLocation"]["id"]
    await ok(consignee, location, i={"code": f"DC-{sfx}", "name": "dc", "kind": "dc"})
    lot = (await ok(owner, "mutation($i: RegisterLotInput!) { registerLot(input: $i) { id } }",
                    i={"skuId": sku, "lotCode": f"LOT-{sfx}", "expiresOn": "2030-06-01"}))["registerLot"]["id"]
    dispatch = "mutation($i: CreateDispatchInput!) { createDispatch(input: $i) { id } }"
    shipped = (await ok(owner, dispatch, i={"ref": f"ASN-{sfx}", "consigneeId": consignee, "toLocation": f"DC-{sfx}",
                                            "lines": [{"sku": sku, "lotCode": f"LOT-{sfx}", "quantity": 10}]}))
    inbound = (await ok(supplier, dispatch, i={"ref": f"IN-{sfx}", "consigneeId": owner, "toLocation": f"WH-{sfx}",
                                               "lines": [{"sku": f"SUPSKU-{sfx}", "lotCode": "S1", "quantity": 5}]}))
    receipt = (await ok(owner, "mutation($i: RecordReceiptInput!) { recordReceipt(input: $i) { id alertId } }",
                        i={"dispatchId": inbound["createDispatch"]["id"], "ref": f"RCV-{sfx}", "final": True,
                           "lines": [{"sku": f"SUPSKU-{sfx}", "lotCode": "S2", "quantity": 5}]}))["recordReceipt"]
    moves = [
        {
            "sku": f"SKU-{sfx}",
            "lotCode": f"LOT-{sfx}",
            "kind": "receipt",
            "quantity": 100,
            "idempotencyKey": f"k1-{sfx}",
        },
        {"sku": f"SKU-{sfx}", "lotCode": f"LOT-{sfx}", "kind": "sale", "quantity": -1, "idempotencyKey": f"k2-{sfx}"},
    ]
    await ok(owner, "mutation($m: [MovementInput!]!, $l: ID) { recordMovements(movements: $m, locationId: $l) "
                    "{ accepted } }", m=moves, l=wh_id)
    sensor = (await ok(owner, "mutation($i: RegisterSensorInput!) { registerSensor(input: $i) { sensor { id } } }",
                       i={"deviceId": f"DEV-{sfx}", "locationId": wh_id, "name": f"{MARKER} probe"}))
    sensor_id = sensor["registerSensor"]["sensor"]["id"]
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=45)
    temps = [4.0] * 10 + [14.0] * 20 + [4.0] * 10
    readings = [{"at": (start + timedelta(minutes=i)).isoformat(), "temperatureC": t} for i, t in enumerate(temps)]
    await hub.ok("mutation($i: [SensorReadingsInput!]!) { ingestReadings(input: $i) { accepted } }",
                 {"i": [{"sensorId": sensor_id, "readings": readings}]}, tenant=owner, roles=("integration",))
    endpoint = (await ok(owner, "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) "
                                "{ endpoint { id } } }",
                         i={"url": "http://127.0.0.1:9/hook", "description": MARKER}))
    client = (await ok(owner, "mutation($i: CreateOAuthClientInput!) { createOAuthClient(input: $i) "
                              "{ client { clientId } } }", i={"name": f"{MARKER} erp", "scopes": ["read"]}))
    client_id = client["createOAuthClient"]["client"]["clientId"]
    member = (await ok(owner, "mutation($i: AddMemberInput!) { addMember(input: $i) { id } }",
                       i={"issuer": "https://idp.invalid", "subject": f"{MARKER}-sub", "roles": ["viewer"]}))
    safelisted = await ok(owner, "mutation($c: String!, $q: String!) { registerSafelistedQuery(clientId: $c, "
                                 "query: $q) { hash } }", c=client_id, q="{ me { roles } }")
    await ok(owner, "mutation($i: PlanningPolicyInput!) { setPlanningPolicy(input: $i) { leadTimeDays } }",
             i={"sku": f"SKU-{sfx}", "locationId": wh_id, "leadTimeDays": 3.0})

    db = hub.state.database.db
    alerts = [str(a["_id"]) async for a in db["alerts"].find({"tenant_id": owner})]
    excursions = [str(e["_id"]) async for e in db["excursions"].find({"tenant_id": owner})]
    event = await db["events"].find_one({"tenant_id": owner}, sort=[("seq", -1)])
    page = (await ok(owner, "{ skus(first: 1) { edges { cursor } } }"))["skus"]["edges"][0]["cursor"]
    world.values = {
        "sku": [sku, f"SKU-{sfx}", gtin],
        "gtin": [gtin],
        "location": [wh_id, f"WH-{sfx}", zone],
        "lot": [lot, f"LOT-{sfx}"],
        "dispatch": [shipped["createDispatch"]["id"], f"ASN-{sfx}"],
        "receipt": [receipt["id"], f"RCV-{sfx}"],
        "alert": alerts[:2],
        "sensor": [sensor_id, f"DEV-{sfx}"],
        "excursion": excursions[:1],
        "endpoint": [endpoint["createWebhookEndpoint"]["endpoint"]["id"]],
        "client": [client_id],
        "member": [member["addMember"]["id"]],
        "partnership": [oc, os_],
        "tenant": [owner],
        "cursor": [page, *([str(event["_id"])] if event else [])],  # a page cursor, a live-stream cursor
        "safelist": [safelisted["registerSafelistedQuery"]["hash"]],
    }
    assert all(world.values[kind] for kind in ("alert", "excursion", "cursor")), world.values
    world.private = {MARKER, *(v for values in world.values.values() for v in values), "0" + gtin}
    world.private |= {str(doc["_id"]) async for doc in db["events"].find({"tenant_id": owner})}
    world.shared_with_partner = {owner}
    return world


# -- generating operations from the introspected schema ------------------------------------------------------------


def type_ref(t: Any) -> str:
    if isinstance(t, GraphQLNonNull):
        return f"{type_ref(t.of_type)}!"
    if isinstance(t, GraphQLList):
        return f"[{type_ref(t.of_type)}]"
    return t.name


def kind_of(name: str, operation: str) -> str | None:
    for word, kind in KINDS.items():
        if word in name.lower():
            return kind
    if name.lower() in ("id", "ids", "code"):
        return next((kind for word, kind in KINDS.items() if word in operation.lower()), None)
    return None


@dataclass
class Slot:
    """An id-like place in the arguments: a path to it, the owner's values to try there, and the innermost
    optional place at or above it (set to null to leave this slot out; ``None``: it cannot be left out)."""

    path: tuple[str | int, ...]
    values: list[str]
    optional: tuple[str | int, ...] | None


def fill(t: Any, name: str, operation: str, world: World, path: tuple, slots: list[Slot], depth: int = 0,
         optional: tuple | None = None, required: bool = False) -> Any:
    """A value for type ``t``: id-like places get the owner's values (recorded as slots), the rest a filler."""
    if isinstance(t, GraphQLNonNull):
        return fill(t.of_type, name, operation, world, path, slots, depth, optional, required=True)
    if not required:
        optional = path  # null is allowed here
    if isinstance(t, GraphQLList):
        return [fill(t.of_type, name, operation, world, (*path, 0), slots, depth, optional)]
    named = get_named_type(t)
    if ID_LIKE.search(name) and isinstance(named, GraphQLScalarType):
        kind = kind_of(name, operation)
        values = world.pool(kind)[:2] if kind else world.pool(None)
        slots.append(Slot(path, values, optional))
        return values[0]
    if isinstance(named, GraphQLEnumType):
        return next(iter(named.values))
    if isinstance(named, GraphQLScalarType):
        assert named.name in SCALARS, f"add how to fill a required {named.name} to SCALARS"
        return SCALARS[named.name]
    assert isinstance(named, GraphQLInputObjectType) and depth < 6, named
    value = {}
    for fname, f in named.fields.items():
        if is_required_input_field(f) or ID_LIKE.search(fname) or has_id_like(f.type, set()):
            value[fname] = fill(f.type, fname, operation, world, (*path, fname), slots, depth + 1, optional)
    return value


def has_id_like(t: Any, seen: set[str]) -> bool:
    named = get_named_type(t)
    if not isinstance(named, GraphQLInputObjectType) or named.name in seen:
        return False
    seen.add(named.name)
    return any(ID_LIKE.search(n) or has_id_like(f.type, seen) for n, f in named.fields.items())


def selection(t: Any, depth: int = 0) -> str:
    named = get_named_type(t)
    if isinstance(named, (GraphQLScalarType, GraphQLEnumType)):
        return ""
    if isinstance(named, GraphQLUnionType):
        return "{ __typename }"
    if isinstance(named, GraphQLInterfaceType):
        return "{ __typename " + " ".join(n for n, f in named.fields.items()
                                           if not f.args and not selection(f.type, 9)) + " }"
    assert isinstance(named, GraphQLObjectType)
    parts = ["__typename"]
    for fname, f in named.fields.items():
        if any(is_required_argument(a) for a in f.args.values()):
            continue
        inner = selection(f.type, depth + 1)
        if not inner:
            parts.append(fname)
        elif depth < 3 and inner != "{ __typename }":
            parts.append(f"{fname} {inner}")
    return "{ " + " ".join(parts) + " }"


def set_path(value: Any, path: tuple, new: str | None) -> Any:
    if not path:
        return new
    if value is None:
        return None  # an optional place above was left out already
    head, rest = path[0], path[1:]
    copy = list(value) if isinstance(value, list) else dict(value)
    copy[head] = set_path(copy[head], rest, new)  # type: ignore[index]
    return copy


@dataclass
class Operation:
    kind: str
    name: str
    document: str
    variables: list[dict[str, Any]]


def operations(schema: GraphQLSchema, world: World) -> Iterator[Operation]:
    """Every query and mutation with an id- or code-like argument, with one set of variables per owner value."""
    for kind, root in (("query", schema.query_type), ("mutation", schema.mutation_type)):
        for name, f in (root.fields if root else {}).items():
            if not any(ID_LIKE.search(a) or has_id_like(arg.type, set()) for a, arg in f.args.items()):
                continue
            slots: list[Slot] = []
            base: dict[str, Any] = {}
            for aname, arg in f.args.items():
                if is_required_argument(arg) or ID_LIKE.search(aname) or has_id_like(arg.type, set()):
                    base[aname] = fill(arg.type, aname, name, world, (aname,), slots)
            declared = ", ".join(f"${a}: {type_ref(f.args[a].type)}" for a in base)
            call = ", ".join(f"{a}: ${a}" for a in base)
            document = f"{kind}({declared}) {{ {name}({call}) {selection(f.type)} }}"
            # One slot at a time, the others left out where they may be (so a filter is not masked by a bad cursor).
            variants: list[dict[str, Any]] = []
            for slot in slots:
                for value in slot.values:
                    variables = base
                    for other in slots:
                        if other is slot:
                            continue
                        if other.optional is not None and slot.path[: len(other.optional)] != other.optional:
                            variables = set_path(variables, other.optional, None)
                    variables = set_path(variables, slot.path, value)
                    if variables not in variants:
                        variants.append(variables)
            yield Operation(kind, name, document, variants)


# -- the owner's state ---------------------------------------------------------------------------------------------


def references(doc: Any, ids: set[str], owner: str) -> bool:
    """Does a caller's own document point at the owner: an ObjectId of the owner's, or the owner's tenant id?"""
    if isinstance(doc, dict):
        return any(references(value, ids, owner) for value in doc.values())
    if isinstance(doc, list):
        return any(references(value, ids, owner) for value in doc)
    return (isinstance(doc, ObjectId) and str(doc) in ids) or doc == owner


async def owner_state(hub: Hub, world: World) -> dict[str, list[str]]:
    """Every document that mentions the owner (its tenant id or one of its ids), per collection, as canonical JSON.

    A caller's own documents count when they point at the owner's (an ObjectId reference, the owner's tenant id),
    not when they merely hold the text of an id the caller typed (a SKU code of its own that looks like one). The
    callers' audit entries are theirs: they may name what they tried.
    """
    db = hub.state.database.db
    ids = {v for values in world.values.values() for v in values if re.fullmatch(r"[0-9a-f]{24}", v)}
    needles = [f'"{world.owner}"', *(f'"{v}"' for v in sorted(ids))]
    callers = (world.stranger, world.partner)
    state: dict[str, list[str]] = {}
    for collection in sorted(await db.list_collection_names()):
        docs = []
        async for doc in db[collection].find({}):
            if collection == "partnerships" and doc.get("inviter_id") in callers and doc.get("status") == "invited":
                continue  # an invitation is how a partnership starts: it grants nothing until the owner accepts
            if doc.get("tenant_id") in callers:
                if collection == "audit_log" or not references(doc, ids, world.owner):
                    continue
                docs.append(json.dumps(doc, default=str, sort_keys=True))
                continue
            text = json.dumps(doc, default=str, sort_keys=True)
            if any(needle in text for needle in needles):
                docs.append(text)
        if docs:
            state[collection] = sorted(docs)
    return state


def diff(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    changes = []
    for collection in sorted(set(before) | set(after)):
        gone = set(before.get(collection, [])) - set(after.get(collection, []))
        new = set(after.get(collection, [])) - set(before.get(collection, []))
        changes += [f"{collection}: - {doc[:300]}" for doc in gone] + [f"{collection}: + {doc[:300]}" for doc in new]
    return changes


# -- the test ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def probe_hub(key_file, mongo_uri) -> AsyncIterator[Hub]:
    # Deep enough for the standard introspection query (the default limit of 12 refuses its type references).
    # Hundreds of calls by one stranger in a few seconds: the rate limits (tested on their own) must not answer first.
    settings = hub_settings(key_file, mongo_uri, webhook_allow_private=True, webhook_worker=False, max_depth=20,
                            rate_limit_requests_burst=1e9, rate_limit_cost_burst=1e9)
    async for hub in start_hub(settings):
        yield hub


async def test_no_operation_leaks_or_changes_the_owners_data_to_a_stranger_or_an_unentitled_partner(probe_hub):
    hub = probe_hub
    started = time.monotonic()
    world = await build_world(hub)
    introspection = (await hub.ok(get_introspection_query(), tenant=world.stranger))
    schema = build_client_schema(introspection)
    all_operations = len(schema.query_type.fields) + len(schema.mutation_type.fields)  # type: ignore[union-attr]
    callers = {world.stranger: world.private, world.partner: world.private - world.shared_with_partner}
    covered, calls, leaks, changes, outcomes = 0, 0, [], [], {}  # type: ignore[var-annotated]
    checking = 0.0
    before = await owner_state(hub, world)
    built = time.monotonic()
    for operation in operations(schema, world):
        covered += 1
        # All calls of one operation at once (they must all fail or show nothing, in any order), then one check.
        jobs = [(caller, variables) for caller in callers for variables in operation.variables]
        bodies = await asyncio.gather(*(hub.gql(operation.document, v, tenant=c) for c, v in jobs))
        for (caller, variables), body in zip(jobs, bodies):
            calls += 1
            codes = [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
            assert not set(codes) - OK_CODES, (operation.name, caller, body)
            outcome = codes[0] if codes else "data"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            sent, answer = json.dumps(variables), json.dumps(body)
            leaked = sorted(s for s in callers[caller] if s in answer and s not in sent)
            if leaked:
                leaks.append(f"{operation.name} as {caller}: {leaked} in {answer[:300]}")
        mark = time.monotonic()
        after = await owner_state(hub, world)
        changes += [f"{operation.name}: {change}" for change in diff(before, after)]
        before = after
        checking += time.monotonic() - mark
    elapsed = time.monotonic() - started
    print(
        f"\ncross-tenant property: {covered} of {all_operations} operations take an id or code and were covered, "
        f"{calls} calls as a stranger and as an unentitled partner, outcomes {outcomes}, "
        f"{len(leaks)} leaks, {len(changes)} changes; {elapsed:.1f} s in all, "
        f"{built - started:.1f} s building the world, "
        f"{checking:.1f} s comparing the owner's state"
    )
    assert covered >= 40 and calls > covered * 2
    assert leaks == []
    assert changes == []
