"""Typed errors every layer raises; the GraphQL layer turns them into ``extensions.code``."""

from __future__ import annotations

from typing import Any

CODES = (
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "BAD_USER_INPUT",
    "CONFLICT",
    "QUERY_TOO_COMPLEX",
    "RATE_LIMITED",
    "SERVICE_UNAVAILABLE",
    "CURSOR_EXPIRED",
)


class HubError(Exception):
    """An expected failure that is safe to show to the caller as it is."""

    code = "BAD_USER_INPUT"

    def __init__(self, message: str, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            assert code in CODES, code
            self.code = code
        self.details = details

    @property
    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, **self.details}


class Unauthenticated(HubError):
    code = "UNAUTHENTICATED"


class Forbidden(HubError):
    code = "FORBIDDEN"


class NotFound(HubError):
    code = "NOT_FOUND"


class BadInput(HubError):
    code = "BAD_USER_INPUT"


class Conflict(HubError):
    code = "CONFLICT"


class TooComplex(HubError):
    code = "QUERY_TOO_COMPLEX"


class RateLimited(HubError):
    code = "RATE_LIMITED"


class ServiceUnavailable(HubError):
    """The database did not answer in time; send the same request again shortly.

    Usually nothing was changed; a commit whose answer was lost may have been applied, which is why the writes that
    matter carry idempotency keys (movements, readings): a retry of them changes nothing twice.
    """

    code = "SERVICE_UNAVAILABLE"
    retry_after_seconds = 2
