"""Hostile EPCIS input from outside: what the JSON grammar or the schema admits but the hub cannot store or answer
(NaN, integers beyond 64 bits, lone surrogates, instants outside any calendar the hub computes with) is refused as a
problem, nothing is stored, and no stored event can break a later query."""

from __future__ import annotations

import json
from typing import Any

from tests.epcis.conftest import Chain, document
from tests.epcis.test_epcis_mapping import commissioning, shipping

LOTS = "query { lots(first: 20) { nodes { lotCode producedOn expiresOn } } }"
DISPATCHES = "query { dispatches(first: 20) { nodes { ref lines { quantity } } } }"


def observed(chain: Chain, serial: str, **extra: Any) -> dict[str, Any]:
    return {"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "inspecting",
            "eventTime": "2030-03-16T10:00:00Z", "eventTimeZoneOffset": "+00:00",
            "epcList": [chain.sgtin(serial)], **extra}


async def capture_text(chain: Chain, text: str) -> Any:
    return await chain.hub.http.post("/epcis/capture", content=text.encode(),
                                     headers={**chain.headers(chain.acme), "content-type": "application/json"})


def refused(response: Any, status: int = 400, kind: str = "ValidationException") -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["type"] == f"epcisException:{kind}", problem
    assert "Traceback" not in response.text
    return problem


async def test_json_that_the_hub_cannot_store_or_answer_is_refused_and_nothing_is_stored(chain: Chain) -> None:
    # Python's JSON reader takes each of these; none is JSON a partner's system may rely on the hub keeping.
    good = json.dumps(document(observed(chain, "V1")))
    texts = {
        "NaN": good.replace('"epcList"', '"ex:v": NaN, "epcList"'),
        "Infinity": good.replace('"epcList"', '"ex:v": -Infinity, "epcList"'),
        "integer beyond 64 bits": good.replace('"epcList"', '"ex:v": 123456789012345678901234567890, "epcList"'),
        "lone surrogate": good.replace('"epcList"', '"ex:v": "\\ud800", "epcList"'),
        "lone surrogate in an EPC": good.replace(chain.sgtin("V1"), chain.sgtin("V1") + "\\udfff"),
    }
    for label, text in texts.items():
        problem = refused(await capture_text(chain, text))
        assert problem["title"], label
    assert await chain.event_list(EQ_bizStep="inspecting") == []
    # the same document without the hostile value is captured
    assert (await capture_text(chain, good)).status_code == 202


async def test_a_stored_event_never_breaks_the_query_that_answers_it(chain: Chain) -> None:
    # Extreme but representable values stay answerable: the largest 64-bit integer and the smallest float.
    event = observed(chain, "X1", **{"ex:big": 2**63 - 1, "ex:tiny": 5e-324, "ex:neg": -(2**63)})
    await chain.captured(document(event))
    [found] = await chain.event_list(EQ_bizStep="inspecting")
    assert (found["ex:big"], found["ex:tiny"], found["ex:neg"]) == (2**63 - 1, 5e-324, -(2**63))


async def test_event_times_outside_the_calendar_the_hub_computes_with_are_refused(chain: Chain) -> None:
    for at, offset in (("9999-12-31T23:00:00-05:00", "-05:00"), ("0001-01-01T00:00:00+05:00", "+05:00"),
                       ("1066-10-14T09:00:00Z", "+00:00"), ("3000-01-01T00:00:00Z", "+00:00")):
        problem = refused(await chain.capture(document(observed(chain, "T1", eventTime=at,
                                                                eventTimeZoneOffset=offset))))
        assert "/epcisBody/eventList/0/eventTime" in [e["pointer"] for e in problem["errors"]], problem
    assert await chain.event_list(EQ_bizStep="inspecting") == []


async def test_ilmd_dates_outside_the_calendar_are_refused_and_no_lot_is_made(chain: Chain) -> None:
    for field, day in (("cbvmda:itemExpirationDate", "9999-12-31"), ("cbvmda:productionDate", "0001-01-01")):
        event = commissioning(chain, "B1", 10)
        event["ilmd"][field] = day
        problem = refused(await chain.capture(document(event)))
        assert any(e["pointer"].startswith("/epcisBody/eventList/0/ilmd") for e in problem["errors"]), problem
    assert (await chain.hub.ok(LOTS, tenant=chain.acme))["lots"]["nodes"] == []


async def test_quantities_beyond_what_the_api_can_answer_are_refused(chain: Chain) -> None:
    for quantity in (2**31, 1e15, 1e300):
        problem = refused(await chain.capture(document(shipping(chain, "B2", quantity))))  # type: ignore[arg-type]
        assert any("quantity" in e["pointer"] for e in problem["errors"]), problem
    assert (await chain.hub.ok(DISPATCHES, tenant=chain.acme))["dispatches"]["nodes"] == []


async def test_malformed_query_parameters_are_query_parameter_problems(chain: Chain) -> None:
    for params in ({"GE_eventTime": "9999-12-31T23:00:00-05:00"}, {"LT_eventTime": "0001-01-01T00:00:00+05:00"},
                   {"GE_recordTime": "2026-02-30T00:00:00Z"}, {"LT_recordTime": "2030-01-01T00:00:00"},
                   {"perPage": "\u00b2"}, {"perPage": "\u0663"}, {"perPage": "9" * 5000}, {"perPage": "-1"},
                   {"nextPageToken": "%FF"}, {"nextPageToken": "W10"}):
        response = await chain.hub.http.get("/epcis/events", params=params, headers=chain.headers(chain.acme))
        refused(response, 400, "QueryParameterException")


async def test_rfc3339_lower_case_date_times_are_read_like_upper_case_ones(chain: Chain) -> None:
    # RFC 3339 allows "t" and "z"; the schema admits them, and a sensor report's time failed the mapping with a 500
    event = observed(chain, "S1", bizStep="sensor_reporting", eventTime="2030-03-16t10:00:00z",
                     sensorElementList=[{"sensorMetadata": {"time": "2030-03-16t09:59:00z",
                                                            "deviceID": f"urn:epc:id:giai:{chain.prefix}.T9"},
                                         "sensorReport": [{"type": "Temperature", "value": 4.0, "uom": "CEL"}]}])
    job = await chain.captured(document(event))
    assert job["capturedEvents"] == 1, job
    [found] = await chain.event_list(EQ_bizStep="sensor_reporting", GE_eventTime="2030-03-16T09:00:00Z")
    assert found["eventTime"] == "2030-03-16t10:00:00z"
