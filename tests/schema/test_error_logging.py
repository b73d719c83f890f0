"""Expected client errors are logged at INFO in one line (no traceback); the hub's own faults at ERROR, with one.

A client that sends bad queries, bad variables, hostile input or other tenants' ids must not be able to flood the
log with tracebacks; a bug in the hub must still be loud.
"""

from __future__ import annotations

import logging

import pytest

from hub.services import skus as sku_service
from tests.schema.conftest import codes

CLIENT_MISTAKES = [
    ("{ nosuchfield }", {}, "BAD_USER_INPUT"),  # validation
    ("{ skus(first: 5 }", {}, "BAD_USER_INPUT"),  # syntax
    ("query($n: Int) { skus(first: $n) { edges { cursor } } }", {"n": "many"}, "BAD_USER_INPUT"),  # coercion
    ("query($n: Int) { skus(first: $n) { edges { cursor } } }", {"n": 2**40}, "BAD_USER_INPUT"),  # Int overflow
    ("{ skus(first: 99999999999999999999) { edges { cursor } } }", {}, "BAD_USER_INPUT"),  # hostile literal
    ('{ dispatch(id: "000000000000000000000000") { id } }', {}, "NOT_FOUND"),  # HubError
    ('{ sku(id: "not-an-id") { id } }', {}, "NOT_FOUND"),
    ('mutation { setSkuAlias(skuId: "000000000000000000000000") { id } }', {}, "BAD_USER_INPUT"),
    ('mutation { upsertSku(input: {code: "", name: "x"}) { created } }', {}, "BAD_USER_INPUT"),
]


def loud(records: list[logging.LogRecord]) -> list[str]:
    return [f"{r.name}: {r.getMessage()[:80]}" for r in records if r.levelno >= logging.WARNING or r.exc_info]


def client_errors(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [r for r in records if r.getMessage().startswith("client error ")]


async def test_client_mistakes_are_logged_at_info_in_one_line_without_traceback(wire, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    for query, variables, code in CLIENT_MISTAKES:
        caplog.clear()
        response = await wire.query(query, variables)
        assert codes(response) == [code], (query, response.text)
        (line,) = client_errors(caplog.records)
        assert line.levelno == logging.INFO and line.code == code and not line.exc_info, (query, line.getMessage())
        assert loud(caplog.records) == []
    await wire.still_responsive()


async def test_requests_refused_before_execution_are_logged_at_info_too(wire, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    bad_token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJl"
    refused = await wire.hub.http.post("/graphql", json={"query": "{ __typename }"},
                                       headers={"authorization": f"Bearer {bad_token}"})
    assert refused.status_code == 401
    malformed = await wire.raw(b"[1, 2]")
    assert malformed.status_code == 400
    lines = client_errors(caplog.records)
    assert [line.code for line in lines] == ["UNAUTHENTICATED", "BAD_USER_INPUT"]
    assert all(line.levelno == logging.INFO and not line.exc_info for line in lines)
    assert loud(caplog.records) == []


async def test_a_fault_of_the_hub_is_logged_at_error_with_its_traceback(wire, caplog, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("a bug in the hub")

    monkeypatch.setattr(sku_service, "upsert_sku", broken)
    caplog.set_level(logging.DEBUG)
    response = await wire.query('mutation { upsertSku(input: {code: "A", name: "x"}) { created } }')
    assert codes(response) == ["INTERNAL_SERVER_ERROR"]
    assert "a bug in the hub" not in response.text
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info and "a bug in the hub" in str(errors[0].exc_info[1])
