"""Structured logs: JSON lines (or plain text in a terminal) carrying the request id, tenant and operation name.

The request id comes from the caller's ``X-Request-ID`` (or is made up) and is echoed in the response, so one line
in an operator's log can be matched with one call a partner reports. The context lives in ``contextvars``: set once
per request by ``RequestContext`` and the GraphQL view, it reaches every line logged while serving that request,
including those of libraries. Tokens and secrets never reach a log line: they are masked in every message.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, date, datetime
from datetime import time as clock_time
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.config import Settings

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
tenant: ContextVar[str | None] = ContextVar("tenant", default=None)
operation: ContextVar[str | None] = ContextVar("operation", default=None)

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
# JWTs (base64url parts starting with a JSON header), bearer credentials, and the hub's own secret formats
# (webhook signing secrets, OAuth client secrets, refresh tokens).
_SECRETS = re.compile(r"eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*|(?i:bearer)\s+[\w.~+/=-]+|\b(?:whsec|lpcs|lprt)_[\w+/=-]+")
access_log = logging.getLogger("lotpulse.access")


def redact(text: str) -> str:
    return _SECRETS.sub("[redacted]", text)


class ContextFilter(logging.Filter):
    """Adds the request context to every record, and masks secrets in its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request = request_id.get()
        record.tenant = caller = tenant.get()
        record.operation = op = operation.get()
        parts = [f"{name}={value}" for name, value in (("request", request), ("tenant", caller), ("op", op)) if value]
        record.context = f" [{' '.join(parts)}]" if parts else ""
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


# A record's own attributes: everything else on it came from ``extra=`` and goes into the line as a field.
_NOT_EXTRA = frozenset((*RESERVED_ATTRS, "context", "color_message", "request_id", "tenant", "operation"))


def _jsonable(value: object) -> object:
    if isinstance(value, date | clock_time):  # datetime is a date
        return value.isoformat()
    return str(value)


class JsonLines(logging.Formatter):
    """One JSON object per line: level, logger, message, request_id, tenant, operation, any ``extra=`` fields, the
    traceback (``exc_info``) or stack if any, and the UTC time. One ``json.dumps`` of a small dict: python-json-logger's
    generic formatter cost about as much as the rest of the access line, which is written for every request."""

    def format(self, record: logging.LogRecord) -> str:
        attributes = record.__dict__
        line: dict[str, Any] = {
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
            "request_id": attributes.get("request_id"), "tenant": attributes.get("tenant"),
            "operation": attributes.get("operation"),
        }
        for key, value in attributes.items():
            if key not in _NOT_EXTRA:
                line[key] = value
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        line["time"] = datetime.fromtimestamp(record.created, UTC).isoformat()
        return json.dumps(line, default=_jsonable)


def formatter(kind: str) -> logging.Formatter:
    if kind == "json":
        return JsonLines()
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s")


def configure(settings: Settings, stream: Any = None) -> logging.Handler:
    """One handler on the root logger for the hub, uvicorn and libraries alike (uvicorn runs with log_config=None)."""
    stream = stream or sys.stderr
    kind = settings.log_format
    if kind == "auto":
        kind = "plain" if getattr(stream, "isatty", lambda: False)() else "json"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(kind))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    return handler


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _VALID_REQUEST_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


class RequestContext:
    """ASGI middleware: a request id per HTTP request or WebSocket, echoed in ``X-Request-ID``, and one access line
    per HTTP request (method, path, status, duration, and the tenant and operation the view bound)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = _request_id(scope)
        tokens = (request_id.set(rid), tenant.set(None), operation.set(None))
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append("X-Request-ID", rid)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if scope["type"] == "http" and access_log.isEnabledFor(logging.INFO):
                # Built directly rather than through .info(): the caller's file and line (a walk up the stack on every
                # request) are in no line format.
                access_log.handle(access_log.makeRecord(
                    access_log.name, logging.INFO, __file__, 0, "%s %s %s", (scope["method"], scope["path"], status),
                    None, extra={"status": status, "duration_ms": round((time.perf_counter() - started) * 1000, 2)},
                ))
            for var, token in zip((request_id, tenant, operation), tokens, strict=True):
                var.reset(token)
