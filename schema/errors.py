"""Shaping errors for clients: every error carries ``extensions.code``; nothing unexpected leaks.

HubErrors keep their message and code; request-level errors (parse, validation, variable coercion) are the
caller's to fix, so they are BAD_USER_INPUT unless they carry a code already; anything else is logged with its
traceback and answered as INTERNAL_SERVER_ERROR.
"""

from __future__ import annotations

import logging

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from hub.errors import HubError

log = logging.getLogger("lotpulse.graphql")


def shape_error(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if isinstance(original, HubError):
        return GraphQLError(
            original.message, nodes=error.nodes, path=error.path, extensions=original.extensions
        )
    if original is None or error.path is None:
        if error.extensions and "code" in error.extensions:
            return error
        return GraphQLError(
            error.message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={**(error.extensions or {}), "code": "BAD_USER_INPUT"},
        )
    log.error("unexpected error at %s", error.path, exc_info=original)
    return GraphQLError(
        "Internal server error",
        nodes=error.nodes,
        path=error.path,
        extensions={"code": "INTERNAL_SERVER_ERROR"},
    )


class ErrorShaper(MaskErrors):
    """strawberry's MaskErrors hook points, with our mapping instead of blanket masking."""

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [shape_error(error) for error in errors]


def error_body(message: str, code: str) -> dict:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}
