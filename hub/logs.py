"""Structured logs: JSON lines (or plain text in a terminal) carrying the request id, tenant and operation name.

The request id comes from the caller's ``X-Request-ID`` (or is made up) and is echoed in the response, so one line
in an operator's log can be matched with one call a partner reports. The context lives in ``contextvars``: set once
per request by ``RequestContext`` and the GraphQL view, it reaches every line logged while serving that request,
including those of libraries. Tokens and secrets never reach a log line: they are masked in every message.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import random
import re
import sys
import time
from collections import deque
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
    """Adds the request context to every record, and masks secrets in its message. The message is formatted here
    once and kept (``args`` cleared), so the formatter does not format it again."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.tenant = tenant.get()
        record.operation = operation.get()
        record.msg, record.args = redact(record.getMessage()), None
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
        return _encode(line)


_encode = json.JSONEncoder(default=_jsonable).encode


class PlainLines(logging.Formatter):
    """Text for a terminal: the request context as ``[request=… tenant=… op=…]`` after the logger name (built here,
    only for this format)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        attributes = record.__dict__
        parts = [f"{name}={value}" for name, value in (
            ("request", attributes.get("request_id")), ("tenant", attributes.get("tenant")),
            ("op", attributes.get("operation")),
        ) if value]
        record.context = f" [{' '.join(parts)}]" if parts else ""
        return super().formatMessage(record)


def formatter(kind: str) -> logging.Formatter:
    return JsonLines() if kind == "json" else PlainLines()


# The handler ``configure`` installed for JSON lines: while it is the only one the access line would reach, the
# access line is written to it directly (see ``_access_line``).
_json_handler: logging.StreamHandler[Any] | None = None
_hub_logger = logging.getLogger("lotpulse")


def configure(settings: Settings, stream: Any = None) -> logging.Handler:
    """One handler on the root logger for the hub, uvicorn and libraries alike (uvicorn runs with log_config=None)."""
    flush_access_lines()  # lines still waiting go to the handler they were meant for
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
    global _json_handler
    _json_handler = handler if kind == "json" else None
    return handler


def _direct_handler() -> logging.StreamHandler[Any] | None:
    """The JSON handler, if an access record would reach it and nothing else (no other handler, no filter on the
    way): then writing the line to it directly is what logging would do, without building a LogRecord."""
    handler = _json_handler
    root = logging.root
    if (handler is None or len(root.handlers) != 1 or root.handlers[0] is not handler or len(handler.filters) != 1
            or access_log.handlers
            or access_log.filters or _hub_logger.handlers or _hub_logger.filters or root.filters
            or not access_log.propagate or not _hub_logger.propagate or access_log.disabled):
        return None
    return handler


_json_string = json.encoder.encode_basestring_ascii  # what json.dumps escapes strings with (ensure_ascii)
MAX_REMEMBERED_PATHS = 256
_redacted_paths: dict[str, str] = {}  # path -> masked path: a few routes, masked once each
_second: tuple[int, str] = (-1, "")  # a UTC second and its ISO text, made once per second

# Direct access lines wait at most this long (or until this many wait) and leave in one write, as nginx's buffered
# access log does: formatting a batch at once and one write call for it cost a fraction of a line per request.
ACCESS_FLUSH_SECONDS = 0.05
ACCESS_BATCH_LINES = 500
# (method, path, status, duration in ms, request id, tenant, operation, time) per line, for ``_waiting_for``: plain
# values only, so the collector soon stops tracking each tuple (held for a while, tracked ones would be promoted to
# the oldest generation and bring its full collections sooner). A deque: appending and popping are atomic, so hubs
# on event loops in several threads may share it.
_waiting: deque[tuple[Any, ...]] = deque()
_waiting_for: logging.StreamHandler[Any] | None = None  # the handler the waiting lines go to
_flush_loop: asyncio.AbstractEventLoop | None = None  # the loop a flush is due on (none, or a closed one: schedule)


def _iso_time(at: float) -> str:
    """``datetime.fromtimestamp(at, UTC).isoformat()`` (with the microseconds always written), the date part made
    once a second."""
    global _second
    whole = int(at)
    if whole != _second[0]:
        _second = (whole, datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{_second[1]}.{int((at - whole) * 1_000_000):06d}+00:00"


def _masked_path(path: str) -> str:
    masked = _redacted_paths.get(path)
    if masked is None:
        masked = redact(path)
        if len(_redacted_paths) < MAX_REMEMBERED_PATHS:
            _redacted_paths[path] = masked
    return masked


def _nullable(value: str | None) -> str:
    return "null" if value is None else _json_string(value)


def _json_line(method: str, path: str, status: int, duration_ms: float, rid: str | None, tenant_id: str | None,
               operation_name: str | None, at: float) -> str:
    """The access line JsonLines would write, as text: the method is an HTTP token (nothing to mask), the status an
    int, only the path can carry a secret."""
    return (
        f'{{"level": "INFO", "logger": "lotpulse.access", '
        f'"message": {_json_string(f"{method} {_masked_path(path)} {status}")}, '
        f'"request_id": {_nullable(rid)}, "tenant": {_nullable(tenant_id)}, "operation": {_nullable(operation_name)}, '
        f'"status": {status:d}, "duration_ms": {duration_ms!r}, "time": "{_iso_time(at)}"}}\n'
    )


def flush_access_lines() -> None:
    """Write the access lines waiting in one write (called on a timer, when enough wait, when logging is
    configured again and when the hub stops)."""
    global _flush_loop
    _flush_loop = None
    handler, text = _waiting_for, []
    while True:
        try:
            text.append(_json_line(*_waiting.popleft()))
        except IndexError:
            break
    if handler is None or not text:
        return
    handler.acquire()
    try:
        handler.stream.write("".join(text))
        handler.stream.flush()
    except Exception:  # as logging does: a broken log stream never fails the hub
        logging.raiseExceptions and sys.stderr.write("lotpulse: access lines could not be written\n")
    finally:
        handler.release()


atexit.register(flush_access_lines)


def _access_line(method: str, path: str, status: int, duration_ms: float) -> None:
    """One access line per HTTP request. Through a std LogRecord (filter, formatter, handler) it cost more than the
    rest of the operability features together on a trivial query; the direct line has the same fields, formatted
    and written in batches (at most ``ACCESS_FLUSH_SECONDS`` later)."""
    global _flush_loop, _waiting_for
    handler = _direct_handler()
    if handler is None:
        # The caller's file and line (a walk up the stack on every request) are in no line format: not via .info().
        access_log.handle(access_log.makeRecord(
            access_log.name, logging.INFO, __file__, 0, "%s %s %s", (method, path, status), None,
            extra={"status": status, "duration_ms": duration_ms},
        ))
        return
    if handler is not _waiting_for:
        flush_access_lines()
        _waiting_for = handler
    _waiting.append((method, path, status, duration_ms, request_id.get(), tenant.get(), operation.get(), time.time()))
    if len(_waiting) >= ACCESS_BATCH_LINES:
        flush_access_lines()
        return
    loop = asyncio.get_running_loop()
    if _flush_loop is not loop:  # also when the loop a flush was due on stopped for good before it ran
        _flush_loop = loop
        loop.call_later(ACCESS_FLUSH_SECONDS, flush_access_lines)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _VALID_REQUEST_ID.fullmatch(text):
                return text
            break
    # 128 random bits like uuid4().hex, at a tenth of its cost: an id need not be unguessable, only unique (the
    # generator is seeded from os.urandom, and again in a forked child)
    return f"{random.getrandbits(128):032x}"


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
                _access_line(scope["method"], scope["path"], status, round((time.perf_counter() - started) * 1000, 2))
            for var, token in zip((request_id, tenant, operation), tokens, strict=True):
                var.reset(token)
