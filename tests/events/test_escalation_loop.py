"""The escalation sweep every hub process runs: an alert nobody acknowledges is escalated, and partners hear it."""

from __future__ import annotations

import pytest

from tests.events.conftest import alert


@pytest.fixture
def settings(settings):
    return settings.with_(alert_escalation_minutes=0, alert_escalation_interval_seconds=0.1)


async def test_the_running_hub_escalates_an_unacknowledged_alert_and_partners_hear_it(hub, trio, listen):
    acme = await listen("acme", variables={"filter": {"types": ["alert.escalated"]}})
    raised = await alert(hub, "shopco", ["acme"], "k1")
    message = (await acme.next(timeout=5))["alerts"]
    assert message["type"] == "alert.escalated" and message["previousSeverity"] == "warning"
    assert message["alert"]["id"] == str(raised.id) and message["alert"]["severity"] == "critical"
    assert await acme.silent_for(0.5)  # once only
