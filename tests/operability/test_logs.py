"""Structured logs: JSON lines with the request id echoed in ``X-Request-ID``, the tenant and the operation name;
never a token."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from hub import logs
from hub.config import Settings


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The hub's JSON log lines, as an operator's log shipper receives them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("json"))
    handler.addFilter(logs.ContextFilter())
    hub_logger = logging.getLogger("lotpulse")
    level = hub_logger.level
    hub_logger.addHandler(handler)
    hub_logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        hub_logger.removeHandler(handler)
        hub_logger.setLevel(level)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_a_log_line_carries_the_request_id_echoed_in_the_response(ops_hub, suffix, captured):
    tenant = await ops_hub.tenant(f"logged-{suffix}")
    token = ops_hub.token(tenant)
    response = await ops_hub.http.post(
        "/graphql", json={"query": "query WhoAmI { me { tenant { id } } }"},
        headers={"authorization": f"Bearer {token}", "x-request-id": f"req-{suffix}"},
    )
    assert response.status_code == 200 and response.headers["x-request-id"] == f"req-{suffix}"
    (access,) = [line for line in lines(captured) if line.get("request_id") == f"req-{suffix}"]
    assert access["logger"] == "lotpulse.access" and access["level"] == "INFO"
    assert access["tenant"] == tenant and access["operation"] == "WhoAmI"
    assert access["status"] == 200 and access["duration_ms"] >= 0 and "time" in access
    assert token not in captured.getvalue()


async def test_a_request_without_an_id_gets_one_and_a_bad_one_is_replaced(ops_hub, captured):
    made_up = await ops_hub.http.get("/healthz")
    rid = made_up.headers["x-request-id"]
    assert len(rid) == 32
    hostile = await ops_hub.http.get("/healthz", headers={"x-request-id": "x\" injected=1 " + "y" * 300})
    assert hostile.headers["x-request-id"] != "" and "injected" not in hostile.headers["x-request-id"]
    ids = {line.get("request_id") for line in lines(captured)}
    assert {rid, hostile.headers["x-request-id"]} <= ids


def test_tokens_and_secrets_never_reach_a_line(captured):
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz"
    logging.getLogger("lotpulse.test").warning(
        "rejected %s and Authorization: Bearer %s, secret %s, refresh %s", jwt, "opaque-token-123", "whsec_abcDEF123=",
        "lprt_Zm9vYmFy",
    )
    text = captured.getvalue()
    for secret in (jwt, "opaque-token-123", "whsec_abcDEF123", "lprt_Zm9vYmFy"):
        assert secret not in text
    assert lines(captured)[-1]["message"].count("[redacted]") == 4


def test_plain_text_in_a_terminal_json_otherwise():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        for stream, expect_json in ((Terminal(), False), (io.StringIO(), True)):
            logs.configure(Settings(log_format="auto"), stream)
            logging.getLogger("lotpulse.test").warning("hello")
            out = stream.getvalue().strip()
            assert out.startswith("{") is expect_json, out
            assert "hello" in out
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


async def test_a_client_error_is_one_info_line_with_request_id_tenant_operation_and_code(ops_hub, suffix, captured):
    tenant = await ops_hub.tenant(f"mistaken-{suffix}")
    token = ops_hub.token(tenant)
    response = await ops_hub.http.post(
        "/graphql", json={"query": 'query Lookup { sku(id: "not-an-id") { id } }'},
        headers={"authorization": f"Bearer {token}", "x-request-id": f"oops-{suffix}"},
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    (line,) = [line for line in lines(captured)
               if line.get("request_id") == f"oops-{suffix}" and line["logger"] == "lotpulse.graphql"]
    assert line["level"] == "INFO" and line["code"] == "NOT_FOUND" and "exc_info" not in line
    assert line["tenant"] == tenant and line["operation"] == "Lookup"
    assert token not in captured.getvalue()


async def test_the_direct_access_line_is_the_one_logging_would_write():
    """With the JSON handler alone, the access line skips the LogRecord; it must be the same line, secrets masked."""

    async def app(scope, receive, send):
        logs.tenant.set("acme")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def call(path: str) -> None:
        scope = {"type": "http", "method": "GET", "path": path, "headers": [(b"x-request-id", b"rid-1")]}

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            pass

        await logs.RequestContext(app)(scope, receive, send)

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    direct, through_logging = io.StringIO(), io.StringIO()
    path = "/x/Bearer abc.def"
    try:
        logs.configure(Settings(log_format="json", log_level="INFO"), direct)
        await call(path)
        handler = logs.configure(Settings(log_format="json", log_level="INFO"), through_logging)
        handler.addFilter(lambda record: True)  # anything extra on the way: logging writes the line
        logging.getLogger("lotpulse").addFilter(lambda record: True)
        await call(path)
    finally:
        logging.getLogger("lotpulse").filters.clear()
        root.handlers[:] = handlers
        root.setLevel(level)
    (fast,), (slow,) = lines(direct), lines(through_logging)
    for line in (fast, slow):
        assert line.pop("time") and line.pop("duration_ms") >= 0
    assert fast == slow
    assert fast["message"] == "GET /x/[redacted] 204" and fast["request_id"] == "rid-1" and fast["tenant"] == "acme"
