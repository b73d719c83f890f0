"""Standard Webhooks signing: secrets, bodies and headers (https://www.standardwebhooks.com/)."""

from __future__ import annotations

import base64
import json
import secrets as random
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook

from hub.events import views

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(random.token_bytes(SECRET_BYTES)).decode()


def body_for(event: Mapping[str, Any], viewer: str | None = None) -> str:
    """``{"type", "timestamp", "data"}`` from a raw event document, compact: what is signed is what is sent.

    ``data`` carries the event's ordering key (``subject``) and its place in the log (``seq``) besides the payload,
    as ``viewer`` (the endpoint's tenant) may hear it (``hub/events/views.py``).
    """
    occurred: datetime = event["occurred_at"]
    if occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=UTC)
    document: dict[str, Any] = {
        "type": event["type"],
        "timestamp": occurred.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": {"eventId": str(event["_id"]), "ownerId": event["tenant_id"], "subject": event.get("subject"),
                 "seq": event.get("seq"), **views.payload_for(event["payload"], viewer)},
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=str)


def signature(msg_id: str, timestamp: datetime, body: str, secrets: list[str]) -> str:
    """``v1,<base64>`` per active secret, space separated: during a rotation both secrets sign."""
    return " ".join(Webhook(secret).sign(msg_id, timestamp, body) for secret in secrets)


def headers(msg_id: str, timestamp: datetime, body: str, secrets: list[str]) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature(msg_id, timestamp, body, secrets),
        "content-type": "application/json",
        "user-agent": "Lotpulse-Webhooks/1.0",
    }
