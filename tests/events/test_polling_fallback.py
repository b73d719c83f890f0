"""The fallback for databases without change streams: the bus polls the log by seq, and says so."""

from __future__ import annotations

import logging

import pytest
from pymongo.errors import OperationFailure

from hub.events.bus import EventBus
from tests.events.conftest import alert


@pytest.fixture
def settings(settings):
    return settings.with_(event_bus_mode="polling", event_poll_interval_ms=50)


async def test_without_change_streams_the_bus_polls_the_log_and_still_delivers(hub, trio, listen):
    assert hub.state.bus.mode == "polling"
    acme, rival = await listen("acme"), await listen("rival")
    await alert(hub, "shopco", ["acme"], "k1")
    assert (await acme.next())["alerts"]["alert"]["title"] == "alert k1"
    assert await rival.silent_for(0.3)


async def test_a_database_refusing_change_streams_switches_the_bus_to_polling_with_a_warning(hub, caplog):
    bus = EventBus(hub.state.database, hub.settings.with_(event_bus_mode="auto"))

    async def refuse() -> None:
        raise OperationFailure("The $changeStream stage is only supported on replica sets", 40573)

    bus._watch = refuse  # type: ignore[method-assign]
    polled: list[bool] = []

    async def poll() -> None:
        polled.append(True)

    bus._poll = poll  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="lotpulse.bus"):
        await bus.run()
    assert polled and "falling back to polling" in caplog.text
