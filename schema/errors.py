"""Shaping errors for clients: every error carries ``extensions.code``; nothing unexpected leaks.

HubErrors keep their message and code; request-level errors (parse, validation, variable coercion) are the
caller's to fix, so they are BAD_USER_INPUT unless they carry a code already (the parser's own size limits are
QUERY_TOO_COMPLEX); a database that did not answer in time is SERVICE_UNAVAILABLE (retryable; logged as a warning,
it is an outage rather than a bug); anything else is answered as INTERNAL_SERVER_ERROR. ``log_errors`` (the schema's
error hook) logs faults with their traceback and client mistakes in one INFO line each.
"""

from __future__ import annotations

import logging

from graphql.error import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import MaskErrors

from hub.db import unavailable
from hub.errors import HubError, ServiceUnavailable

log = logging.getLogger("lotpulse.graphql")
INTERNAL = "INTERNAL_SERVER_ERROR"


def _internal(error: GraphQLError) -> GraphQLError:
    return GraphQLError("Internal server error", nodes=error.nodes, path=error.path, extensions={"code": INTERNAL})


def _escaped_before_execution(error: GraphQLError) -> bool:
    """An exception strawberry wrapped whole (``GraphQLError(str(exc))``) outside any field: a bug, not bad input.

    Variable coercion errors also carry an original error, but they point at the variable definition.
    """
    original = error.original_error
    return (
        original is not None
        and not isinstance(original, GraphQLError)
        and not error.nodes
        and error.message == str(original)
    )


def is_fault(error: GraphQLError) -> bool:
    """The hub's own fault (a bug, an outage), as opposed to a mistake of the client's."""
    if isinstance(error.original_error, HubError) or (error.extensions and "code" in error.extensions):
        return False
    return error.path is not None or _escaped_before_execution(error)


def log_client_error(code: str, where: object, message: str) -> None:
    """One INFO line per client mistake, without a traceback: an operator sees what a partner got wrong (the line
    also carries the request id, tenant and operation name), and a client cannot fill the log with stack traces.
    The message is cut short; tokens and secrets in it are masked like in every line."""
    log.info("client error %s at %s: %.200s", code, where or "request", message, extra={"code": code})


def log_errors(errors: list[GraphQLError]) -> None:
    """Faults at ERROR with their traceback; client mistakes (bad queries, variables, ids, hostile input) at INFO
    in one line each, with the code the client is answered."""
    for error in errors:
        if error.original_error is not None and unavailable(error.original_error):
            log.warning("database unavailable at %s: %s", error.path or "request", error.original_error)
        elif is_fault(error):
            log.error("unexpected error at %s", error.path or "request", exc_info=error.original_error)
        else:
            code = (shape_error(error).extensions or {}).get("code", "BAD_USER_INPUT")
            log_client_error(str(code), error.path, error.message)


def shape_error(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if original is not None and not isinstance(original, HubError) and unavailable(original):
        original = ServiceUnavailable("the database is unavailable; retry shortly")
    if isinstance(original, HubError):
        return GraphQLError(original.message, nodes=error.nodes, path=error.path, extensions=original.extensions)
    if error.extensions and "code" in error.extensions:
        return error
    if is_fault(error):
        return _internal(error)
    # The parser's own limits (token count, nesting) end with this phrase.
    too_big = isinstance(error, GraphQLSyntaxError) and error.message.endswith("Parsing aborted.")
    return GraphQLError(
        error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={**(error.extensions or {}), "code": "QUERY_TOO_COMPLEX" if too_big else "BAD_USER_INPUT"},
    )


class ErrorShaper(MaskErrors):
    """strawberry's MaskErrors hook points, with our mapping instead of blanket masking."""

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [shape_error(error) for error in errors]


def error_body(message: str, code: str) -> dict:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}
