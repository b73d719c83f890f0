"""Pure parts: the retry decision and Standard Webhooks signing, without a network or a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from hub.config import Settings
from webhooks import ordering, retry, signing

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_success_is_any_2xx():
    assert retry.decide(status_code=204, failures_before=3, now=NOW).succeeded


def test_failures_follow_the_schedule_then_give_up():
    waits = [retry.decide(status_code=500, failures_before=n, now=NOW).next_attempt_at - NOW for n in range(7)]
    assert waits == [timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
                     timedelta(hours=5), timedelta(hours=10), timedelta(hours=10)]
    assert retry.decide(status_code=500, failures_before=7, now=NOW).failed


def test_the_retry_schedule_is_a_setting_whose_default_is_the_documented_one():
    assert retry.schedule_of(Settings().webhook_retry_schedule) == retry.SCHEDULE
    settings = Settings.from_env({"LOTPULSE_WEBHOOK_RETRY_SCHEDULE": "1, 60,3600"})
    schedule = retry.schedule_of(settings.webhook_retry_schedule)
    waits = [retry.decide(status_code=500, failures_before=n, now=NOW, schedule=schedule).next_attempt_at - NOW
             for n in range(3)]
    assert waits == [timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1)]
    assert retry.decide(status_code=500, failures_before=3, now=NOW, schedule=schedule).failed
    with pytest.raises(ValueError):
        retry.schedule_of((5, -1))


def test_redirects_and_transport_errors_are_failures():
    assert retry.decide(status_code=301, failures_before=0, now=NOW).next_attempt_at == NOW + timedelta(seconds=5)
    assert retry.decide(status_code=None, failures_before=0, now=NOW).next_attempt_at == NOW + timedelta(seconds=5)


def wait_after(status: int, retry_after: str) -> timedelta:
    decision = retry.decide(status_code=status, failures_before=0, now=NOW, retry_after=retry_after)
    assert decision.next_attempt_at is not None
    return decision.next_attempt_at - NOW


def test_retry_after_counts_on_429_and_503_only_and_is_bounded():
    assert wait_after(503, "90") == timedelta(seconds=90)
    assert wait_after(429, "Mon, 23 Nov 2026 12:10:00 GMT") == timedelta(minutes=10)
    assert wait_after(500, "90") == timedelta(seconds=5)
    assert wait_after(429, "99999999") == retry.MAX_RETRY_AFTER
    assert wait_after(429, "9" * 40) == retry.MAX_RETRY_AFTER  # beyond what a timedelta holds
    assert wait_after(429, "soon") == timedelta(seconds=5)


def test_gone_and_five_days_of_failure_disable():
    assert "410" in (retry.decide(status_code=410, failures_before=0, now=NOW).disable_reason or "")
    old = NOW - timedelta(days=5)
    assert retry.decide(status_code=500, failures_before=0, now=NOW, failing_since=old).disable_reason
    recent = NOW - timedelta(days=4, hours=23)
    assert retry.decide(status_code=500, failures_before=0, now=NOW, failing_since=recent).disable_reason is None


def test_signatures_verify_with_the_official_library_for_every_active_secret():
    old, new = signing.new_secret(), signing.new_secret()
    event = {"_id": ObjectId(), "type": "stock.changed", "tenant_id": "acme", "occurred_at": NOW,
             "subject": "stock:acme", "seq": 7, "payload": {"stockChanged": {"onHand": 12, "note": "crème"}}}
    body = signing.body_for(event)
    now = datetime.now(UTC)
    headers = signing.headers(str(event["_id"]), now, body, [new, old])
    assert headers["webhook-id"] == str(event["_id"])
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers) == {
            "type": "stock.changed",
            "timestamp": "2026-11-23T12:00:00Z",
            "data": {"eventId": str(event["_id"]), "ownerId": "acme", "subject": "stock:acme", "seq": 7,
                     "stockChanged": {"onHand": 12, "note": "crème"}},
        }
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(new).verify(body.replace("12", "13"), headers)


def test_secrets_are_whsec_with_32_random_bytes():
    secret = signing.new_secret()
    assert secret.startswith("whsec_") and len(secret) == len("whsec_") + 44
    assert secret != signing.new_secret()


def _pending(seq: int, subject: str | None, *, due: bool = True, token: str | None = None) -> dict:
    return {"_id": seq, "seq": seq, "subject": subject, "due": due, "lease_token": token}


def test_one_subject_goes_in_order_and_a_retry_holds_up_only_its_own_subject():
    docs = [
        _pending(1, "lot:a", token="lane:1"),  # in flight in this lane: the next of lot a waits for it
        _pending(2, "lot:a"),
        _pending(3, "lot:b", due=False),  # waiting for a retry: lot b's later ones may not go
        _pending(4, "lot:b"),
        _pending(5, "lot:c", token="other:1"),  # claimed by another worker: lot c waits too
        _pending(6, "lot:c"),
        _pending(7, None),  # no subject (made before ordering): not ordered
        _pending(8, "lot:d"),
        _pending(9, "lot:a"),
    ]
    blocked: set[str] = set()
    chosen, after = ordering.in_order(docs, lambda doc: doc["due"] and doc["lease_token"] is None,
                                      {"lane:1"}, blocked)
    assert [doc["seq"] for doc in chosen] == [2, 7, 8, 9]
    assert after == {2: 1, 9: 2}  # each waits for the one before it of its subject
    assert blocked == {"lot:b", "lot:c"}


def test_a_subject_read_over_two_pages_still_waits_for_its_first_page():
    blocked: set[str] = set()
    last: dict = {}
    may_send = lambda doc: doc["due"] and doc["lease_token"] is None  # noqa: E731
    first, _ = ordering.in_order([_pending(1, "lot:a"), _pending(2, "lot:b", due=False)], may_send, (), blocked, last)
    second, after = ordering.in_order([_pending(3, "lot:a"), _pending(4, "lot:b")], may_send, (), blocked, last)
    assert [d["seq"] for d in first + second] == [1, 3] and after == {3: 1} and blocked == {"lot:b"}
