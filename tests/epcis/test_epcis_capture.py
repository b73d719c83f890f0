"""EPCIS 2.0 capture and query over HTTP: the official examples, idempotency, refusals, isolation, paging."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import jsonschema

from hub.epcis.hashing import event_hash
from hub.epcis.models import EpcisEvent
from hub.epcis.validation import schema
from tests.epcis.conftest import CONTEXT, OFFICIAL, Chain, document, official
from tests.epcis.test_epcis_hashing import KNOWN

FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    """jsonschema checks ``date-time`` only with an optional extra installed; RFC 3339 needs date, time, offset."""
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


def reference_valid(body: Any) -> bool:
    """The pure-Python reference validator's verdict on the official schema (with format checks)."""
    return not list(jsonschema.Draft7Validator(schema(), format_checker=FORMATS).iter_errors(body))


async def test_official_examples_are_captured_validated_mapped_and_queried_back(chain: Chain) -> None:
    # given: the four example documents of the standard, captured by Acme
    jobs = [await chain.captured(official(name)) for name in OFFICIAL]
    # then: every event is captured, and each job says what its events became
    assert [job["capturedEvents"] for job in jobs] == [2, 1, 1, 1]
    assert all(job["success"] and not job["running"] and job["errors"] == [] for job in jobs)
    aggregation = jobs[1]["outcomes"][0]
    assert aggregation["mapped"][0]["kind"] == "pallet" and aggregation["mapped"][0]["ref"] == "106141412345678908"
    shipping = jobs[0]["outcomes"][0]
    assert shipping["mapped"] == [] and "destination list names no partner" in shipping["note"]
    sensor = jobs[2]["outcomes"][0]
    assert "no sensor of yours has device id 'urn:epc:id:giai:4000001.111'" in sensor["note"]

    # when: queried back with the standard's parameters
    everything = await chain.event_list(eventType="ObjectEvent,AggregationEvent,TransactionEvent")
    captured_ids = [e["eventID"] for name in OFFICIAL for e in official(name)["epcisBody"]["eventList"]]
    assert sorted(e["eventID"] for e in everything) == sorted(captured_ids)
    by_id = {e["eventID"]: e for e in everything}
    original = official(OFFICIAL[0])["epcisBody"]["eventList"][1]
    assert {k: v for k, v in by_id[original["eventID"]].items() if k not in ("@context", "recordTime")} == original

    async def ids(**params: str) -> set[str]:
        return {e["eventID"] for e in await chain.event_list(**params)}

    ship_id, receive_id = (e["eventID"] for e in official(OFFICIAL[0])["epcisBody"]["eventList"])
    aggregation_id = official(OFFICIAL[1])["epcisBody"]["eventList"][0]["eventID"]
    sensor_ids = {official(name)["epcisBody"]["eventList"][0]["eventID"] for name in OFFICIAL[2:]}
    assert await ids(eventType="AggregationEvent") == {aggregation_id}
    assert await ids(EQ_bizStep="shipping") == {ship_id}
    assert await ids(EQ_bizStep="https://ref.gs1.org/cbv/BizStep-receiving") == {receive_id, aggregation_id}
    assert await ids(EQ_disposition="in_transit") == {ship_id}
    assert await ids(MATCH_epc="urn:epc:id:sgtin:0614141.107346.2018") == {ship_id, receive_id, aggregation_id}
    assert await ids(MATCH_epc="https://id.gs1.org/01/10614141073464/21/2018") == {ship_id, receive_id,
                                                                                  aggregation_id}
    assert await ids(MATCH_epc="urn:epc:idpat:sgtin:0614141.107346.*") == {ship_id, receive_id, aggregation_id}
    assert await ids(MATCH_epc="urn:epc:id:sscc:0614141.1234567890") == set()  # a parent is no epcList member
    assert await ids(MATCH_anyEPC="urn:epc:id:sscc:0614141.1234567890") == {aggregation_id}
    # anyEPC also finds the epcList members of events stored without a separate any_epcs (no parent, no inputs)
    assert await ids(MATCH_anyEPC="urn:epc:id:sgtin:0614141.107346.2018") == {ship_id, receive_id, aggregation_id}
    assert await ids(EQ_action="OBSERVE", EQ_bizStep="shipping") == {ship_id}
    assert await ids(EQ_action="DELETE") == set()
    assert await ids(EQ_readPoint="urn:epc:id:sgln:4012345.00005.0") == sensor_ids
    assert await ids(EQ_bizLocation="urn:epc:id:sgln:0012345.11111.0") == {receive_id}
    assert await ids(GE_eventTime="2019-01-01T00:00:00Z", LT_eventTime="2020-01-01T00:00:00+00:00") == {
        official(OFFICIAL[2])["epcisBody"]["eventList"][0]["eventID"]}

    # and: the query document follows the standard's schema (both validators say so)
    response = await chain.events(EQ_bizStep="receiving")
    assert response.headers["gs1-epcis-version"] == "2.0.0"
    assert reference_valid(response.json())
    assert all(reference_valid(official(name)) for name in OFFICIAL)


async def test_capture_is_idempotent_by_event_id_given_or_computed(chain: Chain) -> None:
    events = [
        {"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "inspecting", "eventTime": f"2030-03-16T10:0{n}:00Z",
         "eventTimeZoneOffset": "+00:00", "epcList": [chain.sgtin(f"S{n}"), chain.sgtin(f"T{n}")]}
        for n in range(2)
    ]
    first = await chain.captured(document(*events))
    assert (first["capturedEvents"], first["duplicateEvents"]) == (2, 0)
    again = await chain.captured(document(*events))
    assert (again["capturedEvents"], again["duplicateEvents"]) == (0, 2)
    # the same event spelled differently (other order, Digital Link identifiers, same instant) has the same hash
    respelled = {"@context": CONTEXT, **events[0], "eventTime": "2030-03-16T11:00:00+01:00",
                 "epcList": [f"https://id.gs1.org/01/{chain.gtin}/21/T0", chain.sgtin("S0")]}
    assert (await chain.captured(respelled))["duplicateEvents"] == 1
    stored = await chain.event_list(EQ_bizStep="inspecting")
    assert len(stored) == 2
    for event in stored:
        assert event["eventID"] == event_hash({k: v for k, v in event.items() if k != "eventID"})


async def test_another_tenant_cannot_query_the_events_or_poll_the_job(chain: Chain) -> None:
    response = await chain.capture(official(OFFICIAL[1]))
    assert response.status_code == 202
    assert len(await chain.event_list(eventType="AggregationEvent")) == 1
    assert await chain.event_list(chain.rival, eventType="AggregationEvent") == []
    assert await chain.event_list(chain.shopco, eventType="AggregationEvent") == []  # a partner sees no more
    job = await chain.hub.http.get(response.headers["location"], headers=chain.headers(chain.rival))
    assert job.status_code == 404 and job.headers["content-type"] == "application/problem+json"
    assert job.json()["type"] == "epcisException:NoSuchResourceException"


async def test_invalid_documents_are_refused_as_problems_and_nothing_is_stored(chain: Chain) -> None:
    good = {"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "inspecting", "eventTime": "2030-03-16T10:00:00Z",
            "eventTimeZoneOffset": "+00:00", "epcList": [chain.sgtin("V1")]}
    cases = [
        (document(good, {**good, "action": "LOOK"}), "/epcisBody/eventList/1/action"),
        (document({**good, "bizStep": "https://ref.gs1.org/cbv/BizStep-flying"}), "/epcisBody/eventList/0/bizStep"),
        (document({**good, "eventTime": "yesterday"}), "/epcisBody/eventList/0/eventTime"),
        (document({k: v for k, v in good.items() if k != "action"}), "/epcisBody/eventList/0"),
    ]
    deep: dict[str, Any] = {"ex:leaf": "1"}
    for _ in range(900):  # deeper than any recursion may walk: refused, never a 500
        deep = {"ex:x": deep}
    cases.append((document({**good, "ex:deep": deep}), "/epcisBody/eventList/0"))
    for body, pointer in cases:
        response = await chain.capture(body)
        assert response.status_code == 400, body
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"] == "epcisException:ValidationException"
        assert pointer in [error["pointer"] for error in problem["errors"]], problem
        # the CBV and depth checks are the hub's own
        assert not reference_valid(body) or pointer.endswith("bizStep") or "ex:deep" in body["epcisBody"][
            "eventList"][0]
    for body in ("not json", {"type": "EPCISQueryDocument"}, [good]):
        raw = body if isinstance(body, str) else None
        response = await chain.hub.http.post("/epcis/capture", content=raw, json=None if raw else body,
                                             headers=chain.headers(chain.acme))
        assert response.status_code == 400 and response.json()["type"] == "epcisException:ValidationException"
    assert await chain.event_list(EQ_bizStep="inspecting") == []
    # with the proceed behaviour, the valid events are captured and the others listed
    response = await chain.capture(document(good, {**good, "action": "LOOK"}),
                                   **{"GS1-Capture-Error-Behaviour": "proceed"})
    assert response.status_code == 202
    job = response.json()
    assert (job["success"], job["capturedEvents"]) == (False, 1)
    assert "/epcisBody/eventList/1/action" in [error["instance"] for error in job["errors"]]
    assert all(error["instance"].startswith("/epcisBody/eventList/1") for error in job["errors"]), job["errors"]
    assert len(await chain.event_list(EQ_bizStep="inspecting")) == 1


async def test_queries_page_with_next_page_tokens_and_refuse_unknown_parameters(chain: Chain) -> None:
    events = [{"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "storing",
               "eventTime": f"2030-03-16T10:{n:02}:00Z", "eventTimeZoneOffset": "+00:00",
               "epcList": [chain.sgtin(f"P{n}")]} for n in range(7)]
    await chain.captured(document(*events))
    seen: list[str] = []
    url: str | None = "/epcis/events?EQ_bizStep=storing&perPage=3"
    pages = 0
    while url:
        response = await chain.hub.http.get(url, headers=chain.headers(chain.acme))
        assert response.status_code == 200, response.text
        page = response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        seen += [e["eventID"] for e in page]
        pages += 1
        link = response.headers.get("link")
        url = link[1:link.index(">")] if link else None
    assert pages == 3 and len(seen) == len(set(seen)) == 7
    refused = await chain.events(EQ_colour="red")
    assert refused.status_code == 400 and refused.json()["type"] == "epcisException:QueryParameterException"
    assert (await chain.events(nextPageToken="forged")).status_code == 400
    assert (await chain.events(perPage="0")).status_code == 400


async def test_capture_needs_a_token_that_may_write(chain: Chain) -> None:
    body = document({"type": "ObjectEvent", "action": "OBSERVE", "eventTime": "2030-03-16T10:00:00Z",
                     "eventTimeZoneOffset": "+00:00", "epcList": [chain.sgtin("A1")]})
    anonymous = await chain.hub.http.post("/epcis/capture", json=body)
    assert anonymous.status_code == 401 and anonymous.json()["type"] == "epcisException:SecurityException"
    viewer = await chain.capture(body, **chain.headers(chain.acme, "viewer"))
    assert viewer.status_code == 403
    assert (await chain.hub.http.get("/epcis/events")).status_code == 401
    assert (await chain.events(chain.acme)).status_code == 200


async def test_every_event_type_is_captured_with_the_standard_hash_and_queryable(chain: Chain) -> None:
    vectors = official("hash-vectors.jsonld")  # our own document: no eventIDs, so the hub computes them
    transformation = vectors["epcisBody"]["eventList"][3]
    assert transformation["bizStep"] == "urn:epcglobal:cbv:bizstep:repackaging"  # an old URN, refused by the schema
    transformation["bizStep"] = "repackaging"  # the bare word: the same CBV term, so the same hash
    association = {"type": "AssociationEvent", "action": "ADD", "bizStep": "assembling",
                   "eventTime": "2030-03-16T09:00:00Z", "eventTimeZoneOffset": "+00:00",
                   "parentID": "urn:epc:id:grai:4012345.55555.987", "childEPCs": [chain.sgtin("SENSOR-1")]}
    vectors["epcisBody"]["eventList"].append(association)
    job = await chain.captured(vectors)
    assert (job["success"], job["capturedEvents"]) == (True, 7)
    expected = [f"ni:///sha-256;{h}?ver=CBV2.0" for h in KNOWN["hash-vectors.jsonld"]]
    for event_type in ("ObjectEvent", "AggregationEvent", "TransformationEvent", "TransactionEvent",
                       "AssociationEvent"):
        found = await chain.event_list(eventType=event_type)
        assert found and all(e["type"] == event_type for e in found)
        assert all(e["eventID"] in expected for e in found if e["type"] != "AssociationEvent")
    assert {e["eventID"] for e in await chain.event_list(
        eventType="ObjectEvent,AggregationEvent,TransformationEvent,TransactionEvent")} == set(expected)
    assert len(await chain.event_list(MATCH_anyEPC="urn:epc:id:sgtin:4006381.033393.8000")) == 1  # an output EPC


async def test_a_stored_event_keeps_its_id_in_the_key_and_the_standard_context_implied(chain: Chain) -> None:
    plain = {"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "inspecting", "eventTime": "2030-03-17T10:00:00Z",
             "eventTimeZoneOffset": "+00:00", "epcList": [chain.sgtin("K1")], "eventID": "urn:uuid:" + chain.acme}
    own_words = {"@context": [*CONTEXT, {"ex": "https://ns.example.org/"}],
                 **{k: v for k, v in plain.items() if k != "eventID"},
                 "epcList": [chain.sgtin("K2")], "ex:shelf": "A-7"}
    assert (await chain.captured(document(plain)))["capturedEvents"] == 1
    assert (await chain.captured(own_words))["capturedEvents"] == 1
    stored = {doc["body"]["epcList"][0]: doc for doc in await EpcisEvent.get_pymongo_collection().find(
        {"_id": {"$gt": f"{chain.acme}|", "$lt": f"{chain.acme}}}"}}).to_list()}
    # what the key and the standard context say is not stored twice; a context of the document's own is kept
    assert "eventID" not in stored[chain.sgtin("K1")]["body"] and "@context" not in stored[chain.sgtin("K1")]["body"]
    assert stored[chain.sgtin("K2")]["body"]["@context"] == own_words["@context"]
    # queries answer each event as captured
    [first] = await chain.event_list(MATCH_epc=chain.sgtin("K1"))
    assert (first["eventID"], first["@context"]) == (plain["eventID"], CONTEXT)
    [second] = await chain.event_list(MATCH_epc=chain.sgtin("K2"))
    assert second["@context"] == own_words["@context"] and second["ex:shelf"] == "A-7"
    assert second["eventID"] == event_hash(own_words)
    # another tenant finds neither
    assert await chain.event_list(chain.rival, MATCH_epc=chain.sgtin("K1")) == []
