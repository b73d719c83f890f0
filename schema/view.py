"""GraphQL over HTTP and WebSocket on ``/graphql``.

HTTP is handled here rather than by strawberry's view: measured on stock strawberry 0.341.2, invalid UTF-8,
non-object JSON bodies, deeply nested JSON and huge integer literals each answered HTTP 500, there was no body-size
limit, and ``application/graphql-response+json`` was not honoured. This handler reads a capped body, answers every
malformed request with a 4xx and a typed error, authenticates, and follows the GraphQL over HTTP spec for status codes
and media types. WebSockets (graphql-transport-ws only) stay with strawberry, authenticated in ``on_ws_connect``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pymongo
from pymongo.errors import PyMongoError
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.graphql import OperationType

from hub import jsontext, logs, metrics, tracing
from hub.config import Settings
from hub.db import unavailable
from hub.errors import HubError, ServiceUnavailable
from hub.services.persisted import HASH, sha256_hex
from hub.state import hub_of
from schema.context import Context
from schema.errors import error_body, log_client_error, shape_error
from schema.reports import asks_report
from schema.ws import HubTransportWSHandler

log = logging.getLogger("lotpulse.http")
# GraphiQL and its assets ship with the hub (hub/static/graphiql), so the IDE works without internet access.
GRAPHIQL_DIR = Path(__file__).resolve().parent.parent / "hub" / "static" / "graphiql"
GRAPHIQL_PAGE = GRAPHIQL_DIR / "index.html"
GRAPHQL_RESPONSE = "application/graphql-response+json"


class RequestError(Exception):
    """A request the GraphQL layer never sees: answered with ``status`` and one typed error."""

    def __init__(self, status: int, message: str, code: str = "BAD_USER_INPUT", headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


def _json_problem(value: Any, max_depth: int, max_string: int) -> str | None:
    """``"depth"`` if a value sits deeper than ``max_depth`` (the top is depth 1), else ``"string"`` if a string
    (key or value) is longer than ``max_string``, else None. One walk that stacks only containers: a 5,000-sample
    ``ingestReadings`` call holds 20,000 values."""
    if isinstance(value, str):
        return "string" if len(value) > max_string else None
    too_long = False
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict):
            too_long = too_long or any(len(key) > max_string for key in current)
            items: Any = current.values()
        else:
            items = current
        if items and depth + 1 > max_depth:
            return "depth"
        for item in items:
            if isinstance(item, str):
                too_long = too_long or len(item) > max_string
            elif isinstance(item, (dict, list)):
                stack.append((item, depth + 1))
    return "string" if too_long else None


def _loads(text: str, what: str) -> Any:
    try:
        return jsontext.loads(text, judged_alone="samples")  # ingestReadings rejects each such sample alone
    except jsontext.Unreadable as exc:
        raise RequestError(400, f"{what} holds {exc}") from None
    except (ValueError, RecursionError):
        # ValueError covers bad JSON and integers beyond Python's digit limit.
        raise RequestError(400, f"{what} is not valid JSON") from None


class HubGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = HubTransportWSHandler  # closes bad frames with 4400, expired tokens with 4403

    def __init__(self, schema: Any, settings: Settings) -> None:
        super().__init__(
            schema,
            graphql_ide=None,  # our own page, with assets served locally (handle_http)
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=10),
            max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
            allowed_origins=settings.allowed_origins,
        )
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            response = await self.handle_http(Request(scope, receive))
            await response(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    # -- WebSocket -------------------------------------------------------------------------------------------------

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket | None = None) -> Context:
        return Context(hub=hub_of(request), request=request, response=response)

    async def on_ws_connect(self, context: Context) -> Any:
        authorization = context.connection_params.get("authorization")
        if not isinstance(authorization, str):
            raise ConnectionRejectionError({"message": "missing authorization"})
        try:
            context.principal = await context.hub.validator.authenticate(authorization)
            logs.tenant.set(context.principal.tenant_id)
        except HubError as exc:
            raise ConnectionRejectionError({"message": exc.message}) from None
        except PyMongoError:
            raise
        except Exception:
            # As on HTTP: a token crafted to trip the JWT library is still just an invalid token (4403, not 1011).
            log.warning("WebSocket token rejected by an unexpected error", exc_info=True)
            raise ConnectionRejectionError({"message": "invalid token"}) from None
        return None

    # -- HTTP ------------------------------------------------------------------------------------------------------

    async def _read_body(self, request: Request) -> bytes:
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise RequestError(413, f"request body exceeds {limit} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limit:
                raise RequestError(413, f"request body exceeds {limit} bytes")
        return bytes(body)

    async def _params(self, request: Request) -> dict[str, Any]:
        if request.method == "GET":
            params: dict[str, Any] = {
                "query": request.query_params.get("query"),
                "operationName": request.query_params.get("operationName"),
            }
            for name in ("variables", "extensions"):
                raw = request.query_params.get(name)
                params[name] = _loads(raw, name) if raw else None
            return params
        if request.method != "POST":
            raise RequestError(405, "use GET or POST", headers={"Allow": "GET, POST"})
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in ("application/json", "application/graphql+json"):
            raise RequestError(415, "send the request as application/json")
        body = await self._read_body(request)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError(400, "request body is not valid UTF-8") from None
        params = _loads(text, "request body")
        if not isinstance(params, dict):
            raise RequestError(400, "request body must be a JSON object")
        return params

    async def _persisted_text(self, request: Request, params: dict[str, Any]) -> str | None:
        """The text behind a bare persisted-query hash, looked up within the request deadline (remembered for the
        lookup that follows); None where there is no such hash or no answer in time (the request then says why)."""
        extensions = params.get("extensions")
        persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
        digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
        if not isinstance(digest, str) or not HASH.fullmatch(digest):
            return None
        hub = hub_of(request)
        try:
            with pymongo.timeout(hub.settings.request_timeout_seconds):
                return await hub.persisted_queries.lookup(digest, None)  # the deadline only: not answered
        except PyMongoError:
            return None

    @staticmethod
    def _persisted_digest(params: dict[str, Any]) -> str | None:
        """Apollo's automatic persisted queries: the hash of ``extensions.persistedQuery``, checked against
        ``params["query"]`` when the text was sent too. A bare hash is looked up once the caller is known
        (``_stored_query``): hashes are each tenant's own."""
        extensions = params.get("extensions")
        if not isinstance(extensions, dict) or "persistedQuery" not in extensions:
            return None
        persisted = extensions["persistedQuery"]
        digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
        if not isinstance(persisted, dict) or persisted.get("version") != 1 or not isinstance(digest, str) \
                or not HASH.fullmatch(digest):
            raise RequestError(400, "extensions.persistedQuery needs version 1 and a sha256Hash (64 lowercase hex)")
        query = params.get("query")
        if isinstance(query, str) and query and sha256_hex(query) != digest:
            raise RequestError(400, "provided sha256Hash does not match the query")
        return digest

    def _validate_params(self, params: dict[str, Any]) -> tuple[str, dict[str, Any] | None, str | None]:
        settings = self.settings
        query, variables, operation_name = params.get("query"), params.get("variables"), params.get("operationName")
        if not isinstance(query, str) or not query.strip():
            raise RequestError(400, "'query' must be a non-empty string")
        if len(query) > settings.max_query_chars:
            raise RequestError(413, f"query exceeds {settings.max_query_chars} characters")
        if variables is not None and not isinstance(variables, dict):
            raise RequestError(400, "'variables' must be an object")
        if operation_name is not None and not isinstance(operation_name, str):
            raise RequestError(400, "'operationName' must be a string")
        extensions = params.get("extensions")
        if extensions is not None and not isinstance(extensions, dict):
            raise RequestError(400, "'extensions' must be an object")
        if variables is not None:
            problem = _json_problem(variables, settings.max_json_depth, settings.max_string_length)
            if problem == "depth":
                raise RequestError(400, "variables are nested too deeply")
            if problem == "string":
                raise RequestError(400, f"a string in variables exceeds {settings.max_string_length} characters")
        return query, variables, operation_name

    def _wants_graphql_response(self, request: Request) -> bool:
        accept = request.headers.get("accept", "")
        return GRAPHQL_RESPONSE in accept or "application/json" not in accept and "*/*" not in accept and bool(accept)

    def _respond(
        self, request: Request, payload: dict[str, Any], status: int, headers: dict | None = None,
        graphql_result: bool = False,
    ) -> Response:
        """``graphql_result``: the request was well-formed GraphQL over HTTP and GraphQL answered it (even with errors).

        Under the legacy ``application/json`` media type such answers are 200 (clients read ``errors``); under
        ``application/graphql-response+json`` an answer without ``data`` keeps its 4xx/5xx status.
        """
        for error in payload.get("errors", ()):
            metrics.child(metrics.GRAPHQL_ERRORS, metrics.error_code(error)).inc()
        media = GRAPHQL_RESPONSE if self._wants_graphql_response(request) else "application/json"
        if media == "application/json" and graphql_result and status < 500:
            status = 200
        return JSONResponse(payload, status_code=status, media_type=media, headers=headers)

    def _refuse(
        self, request: Request, message: str, code: str, status: int, headers: dict | None = None,
        graphql_result: bool = False,
    ) -> Response:
        """A request refused before or instead of execution: the client's mistake, logged in one INFO line."""
        log_client_error(code, None, message)
        return self._respond(request, error_body(message, code), status, headers, graphql_result)

    def _unauthenticated(self, request: Request, message: str) -> Response:
        return self._refuse(request, message, "UNAUTHENTICATED", 401, {"WWW-Authenticate": 'Bearer realm="lotpulse"'})

    def _unavailable(self, request: Request, message: str) -> Response:
        headers = {"Retry-After": str(ServiceUnavailable.retry_after_seconds)}
        return self._respond(request, error_body(message, "SERVICE_UNAVAILABLE"), 503, headers)

    async def handle_http(self, request: Request) -> Response:
        """Any step may need the database (tokens, rate limits, persisted queries, the operation): all of them
        together get ``request_timeout_seconds`` of it (a report query: ``report_timeout_seconds``, see
        schema/reports.py), and a database that did not answer in time is a 503 with Retry-After, never a hang or a
        500."""
        hub = hub_of(request)
        if not await hub.database.reachable():
            log.warning("database unreachable: answering 503")
            return self._unavailable(request, "the database is unavailable; retry shortly")
        try:
            params = await self._params(request)
        except RequestError as exc:
            return self._refuse(request, exc.message, exc.code, exc.status, exc.headers)
        budget = hub.settings.request_timeout_seconds
        if asks_report(params.get("query") or await self._persisted_text(request, params), params.get("operationName"),
                       self.settings.max_tokens):
            budget = max(budget, hub.settings.report_timeout_seconds)
        try:
            with pymongo.timeout(budget):
                return await self._handle_http(request, params)
        except Exception as exc:
            if not unavailable(exc):
                raise
            log.warning("database unavailable: %s", exc)
            return self._unavailable(request, "the database is unavailable; retry shortly")

    async def _handle_http(self, request: Request, params: dict[str, Any]) -> Response:
        if request.method == "GET" and "text/html" in request.headers.get("accept", "") and not request.query_params:
            return HTMLResponse(GRAPHIQL_PAGE.read_text(encoding="utf-8"))
        try:
            sent_query = isinstance(params.get("query"), str) and bool(params["query"])
            digest = self._persisted_digest(params)
            bare_hash = digest is not None and not sent_query
            if not bare_hash:
                query, variables, operation_name = self._validate_params(params)
        except RequestError as exc:
            return self._refuse(request, exc.message, exc.code, exc.status, exc.headers)
        context = await self.get_context(request)
        try:
            context.principal = await context.hub.validator.authenticate(request.headers.get("authorization"))
        except ServiceUnavailable:
            raise
        except HubError as exc:
            return self._unauthenticated(request, exc.message)
        except PyMongoError:
            raise
        except Exception:
            # A token crafted to trip the JWT library (e.g. an EC signature on an RSA key id raises TypeError in
            # pyjwt) is still just an invalid token, never a 500.
            log.warning("token rejected by an unexpected error", exc_info=True)
            return self._unauthenticated(request, "invalid token")
        if digest is not None and bare_hash:  # known only to the tenants that registered it
            stored = await context.hub.persisted_queries.lookup(digest, context.principal.tenant_id)
            if stored is None:
                # Apollo's clients look for this message and code (with HTTP 200), then retry with the query text.
                return self._respond(request, error_body("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND"), 200)
            params["query"] = stored
            try:
                query, variables, operation_name = self._validate_params(params)
            except RequestError as exc:
                return self._refuse(request, exc.message, exc.code, exc.status, exc.headers)
        logs.tenant.set(context.principal.tenant_id)
        logs.operation.set(operation_name)
        tracing.tag(tenant=context.principal.tenant_id, request_id=logs.request_id.get() or "")
        limiter = context.hub.rate_limiter
        if limiter is not None:
            principal = context.principal
            decision = limiter.take_leased("requests", principal, 1) or await limiter.take("requests", principal, 1)
            context.rate_limit = decision
            if not decision.allowed:
                retry = decision.headers()["Retry-After"]
                message = f"too many requests; retry after {retry} s"
                extensions = {"code": "RATE_LIMITED", "retryAfter": int(retry)}
                body = {"errors": [{"message": message, "extensions": extensions}]}
                log_client_error("RATE_LIMITED", None, message)
                return self._respond(request, body, 429, decision.headers())
        if digest is not None and sent_query:
            # Only for authenticated callers, and for the caller's tenant.
            await context.hub.persisted_queries.register(digest, query, context.principal.tenant_id)
        if context.principal.client_id:
            safelisted = await context.hub.safelists.allowed(context.principal.client_id)
            if safelisted is not None and (digest or sha256_hex(query)) not in safelisted:
                message = "this OAuth client may run only its safelisted queries"
                return self._refuse(request, message, "FORBIDDEN", 403)
        allowed = {OperationType.QUERY} if request.method == "GET" else {
            OperationType.QUERY,
            OperationType.MUTATION,
        }
        try:
            result = await self.schema.execute(
                query,
                variable_values=variables,
                context_value=context,
                operation_name=operation_name,
                allowed_operation_types=allowed,
            )
        except InvalidOperationTypeError as exc:
            status = 405 if request.method == "GET" else 400
            message = "mutations need POST" if request.method == "GET" else "subscriptions need a WebSocket"
            if exc.operation_type == OperationType.SUBSCRIPTION:
                message = "subscriptions need a WebSocket"
            return self._refuse(request, message, "BAD_USER_INPUT", status, {"Allow": "POST"})
        except CannotGetOperationTypeError:
            message = "unknown operationName" if operation_name else "operationName is required for several operations"
            return self._refuse(request, message, "BAD_USER_INPUT", 400, graphql_result=True)
        except MissingQueryError:
            return self._refuse(request, "'query' is required", "BAD_USER_INPUT", 400)
        payload: dict[str, Any] = {}
        # Errors raised outside the operation hook (e.g. a failing hook) are not shaped by it.
        errors = [shape_error(error).formatted for error in result.errors or []]
        # Execution started if there is data or an error at a field path; otherwise the request was refused whole.
        ran = result.data is not None or any(error.path for error in result.errors or [])
        if errors:
            payload["errors"] = errors
        if ran:
            payload["data"] = result.data
        status = 200 if ran else 400
        codes = {e.get("extensions", {}).get("code") for e in errors}
        if not ran and "INTERNAL_SERVER_ERROR" in codes:
            status = 500
        limited = context.rate_limit
        if not ran and "RATE_LIMITED" in codes and limited is not None and not limited.allowed:
            headers = limited.headers()  # the operation's cost is over the limit: never run
            for error in errors:
                error["extensions"]["retryAfter"] = int(headers["Retry-After"])
            return self._respond(request, payload, 429, headers)
        if "SERVICE_UNAVAILABLE" in codes:
            # Retryable whatever else happened: HTTP clients and proxies know what a 503 with Retry-After means.
            headers = {**(limited.headers() if limited else {})}
            headers["Retry-After"] = str(ServiceUnavailable.retry_after_seconds)
            return self._respond(request, payload, 503, headers, graphql_result=True)
        response = self._respond(request, payload, status, graphql_result=True)
        if limited is not None:
            response.raw_headers.extend(limited.raw_headers())  # as bytes: no per-response header encoding
        return response
