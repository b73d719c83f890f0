"""One execution per live event and document: subscribers asking the same thing share it, others do not."""

from __future__ import annotations

from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.alerts.types import AlertEventType
from tests.events.conftest import alert

TITLES = "subscription { alerts { cursor alert { title } } }"
KINDS = "subscription { alerts { cursor alert { kind severity } } }"


async def test_subscribers_with_the_same_document_share_one_execution_of_each_event(hub, trio, listen, monkeypatch):
    executions: list[str] = []
    original = StrawberryGraphQLCoreExecutionContext.execute_operation

    def counted(self, serially=None):
        if isinstance(self.root_value, AlertEventType):
            executions.append(str(self.root_value.cursor))
        return original(self, serially)

    monkeypatch.setattr(StrawberryGraphQLCoreExecutionContext, "execute_operation", counted)
    same = [await listen(tenant, TITLES) for tenant in ("acme", "acme", "shopco")]
    other = await listen("shopco", KINDS)
    await alert(hub, "shopco", ["acme"], "k1")
    messages = [(await listener.next())["alerts"] for listener in same]
    assert all(message == messages[0] for message in messages)
    assert messages[0]["alert"] == {"title": "alert k1"}
    assert (await other.next())["alerts"]["alert"] == {"kind": "mismatch", "severity": "warning"}
    # four subscribers, two documents: two executions of this event
    assert executions.count(messages[0]["cursor"]) == 2
