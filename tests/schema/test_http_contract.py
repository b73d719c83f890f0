"""GraphQL over HTTP as the spec says: media types, status codes, methods; unexpected errors never leak."""

from __future__ import annotations

import logging

from tests.schema.conftest import codes

GRAPHQL_RESPONSE = "application/graphql-response+json"
UPSERT_SKU = 'mutation { upsertSku(input: {code: "A1", name: "Apple"}) { created } }'
SKU = "query ($id: ID!) { sku(id: $id) { code } }"


async def test_get_runs_a_query(wire):
    response = await wire.hub.http.get("/graphql", params={"query": "{ __typename }"}, headers=wire.headers())
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_get_passes_variables_as_json(wire):
    response = await wire.hub.http.get(
        "/graphql",
        params={"query": "query ($f: Int) { skus(first: $f) { edges { cursor } } }", "variables": '{"f": 5}'},
        headers=wire.headers(),
    )
    assert response.json() == {"data": {"skus": {"edges": []}}}


async def test_mutation_over_get_is_method_not_allowed_and_stores_nothing(wire):
    response = await wire.hub.http.get("/graphql", params={"query": UPSERT_SKU}, headers=wire.headers())
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert codes(response) == ["BAD_USER_INPUT"]
    listed = await wire.query("{ skus { edges { cursor } } }")
    assert listed.json() == {"data": {"skus": {"edges": []}}}


async def test_get_selecting_a_mutation_by_operation_name_is_method_not_allowed(wire):
    document = "query Q { __typename } " + UPSERT_SKU.replace("mutation", "mutation M")
    response = await wire.hub.http.get(
        "/graphql", params={"query": document, "operationName": "M"}, headers=wire.headers()
    )
    assert response.status_code == 405


async def test_put_is_method_not_allowed(wire):
    response = await wire.hub.http.put("/graphql", json={"query": "{ __typename }"}, headers=wire.headers())
    assert response.status_code == 405


async def test_unsupported_content_type_is_refused(wire):
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        response = await wire.raw(b'{"query": "{ __typename }"}', content_type=content_type)
        assert response.status_code == 415, content_type
        assert codes(response) == ["BAD_USER_INPUT"]


async def test_json_with_charset_is_accepted(wire):
    response = await wire.raw(b'{"query": "{ __typename }"}', content_type="application/json; charset=utf-8")
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_graphql_response_media_type_answers_400_without_data_for_a_parse_error(wire):
    response = await wire.query("{ __typename", accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert "data" not in response.json()
    assert codes(response) == ["BAD_USER_INPUT"]


async def test_graphql_response_media_type_answers_400_for_a_validation_error(wire):
    response = await wire.query("{ noSuchField }", accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    assert "data" not in response.json()
    assert codes(response) == ["BAD_USER_INPUT"]


async def test_graphql_response_media_type_answers_400_for_a_variable_error(wire):
    response = await wire.query(SKU, {"id": 42.5}, accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    assert "data" not in response.json()
    missing = await wire.query(SKU, {}, accept=GRAPHQL_RESPONSE)
    assert missing.status_code == 400
    assert codes(missing) == ["BAD_USER_INPUT"]


async def test_legacy_json_media_type_answers_200_for_graphql_errors(wire):
    for document in ("{ __typename", "{ noSuchField }"):
        response = await wire.query(document)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        assert "data" not in response.json()
        assert codes(response) == ["BAD_USER_INPUT"]


async def test_without_accept_header_the_answer_is_json(wire):
    response = await wire.hub.http.post(
        "/graphql", json={"query": "{ __typename }"}, headers={**wire.headers(), "accept": ""}
    )
    assert response.headers["content-type"].startswith("application/json")


async def test_field_error_keeps_data_and_answers_200_in_both_media_types(wire):
    for accept in ("application/json", GRAPHQL_RESPONSE):
        response = await wire.query(SKU, {"id": "000000000000000000000000"}, accept=accept)
        assert response.status_code == 200
        body = response.json()
        assert body["data"] is None
        assert codes(response) == ["NOT_FOUND"]
        assert body["errors"][0]["path"] == ["sku"]


async def test_subscription_over_http_is_refused(wire):
    response = await wire.query("subscription { alerts { id } }", accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    assert codes(response) == ["BAD_USER_INPUT"]


async def test_missing_or_malformed_parameters_are_bad_input(wire):
    for body in ({}, {"query": ""}, {"query": 7}, {"query": "{ __typename }", "variables": [1]},
                 {"query": "{ __typename }", "operationName": 3}, {"query": "{ __typename }", "extensions": "x"}):
        response = await wire.post(body)
        assert response.status_code == 400, body
        assert codes(response) == ["BAD_USER_INPUT"]


async def test_graphiql_is_served_to_a_browser(wire):
    response = await wire.hub.http.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_unexpected_errors_are_masked_and_logged(wire, monkeypatch, caplog):
    from hub.services import skus as sku_service

    async def broken(*args, **kwargs):
        raise RuntimeError("secret connection string mongodb://admin:hunter2@db")

    monkeypatch.setattr(sku_service, "upsert_sku", broken)
    with caplog.at_level(logging.ERROR, logger="lotpulse.graphql"):
        response = await wire.query(UPSERT_SKU)
    assert response.status_code == 200
    body = response.text
    assert "hunter2" not in body and "Traceback" not in body and "RuntimeError" not in body
    assert response.json()["errors"][0]["message"] == "Internal server error"
    assert codes(response) == ["INTERNAL_SERVER_ERROR"]
    assert any(record.exc_info and "hunter2" in str(record.exc_info[1]) for record in caplog.records)


async def test_error_messages_never_carry_stack_traces(wire):
    for document in ("{ __typename", "{ noSuchField }", "{ sku(id: 1) { code } }"):
        response = await wire.query(document)
        assert "Traceback" not in response.text
        assert 'File "' not in response.text
