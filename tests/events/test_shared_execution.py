"""One rendering per live event and audience: subscribers of one tenant and roles asking the same thing share it;
another tenant, other roles or another document get their own (nothing rendered for one tenant reaches another)."""

from __future__ import annotations

from schema.subscriptions import LiveSink
from tests.events.conftest import alert

TITLES = "subscription { alerts { cursor alert { title } } }"
KINDS = "subscription { alerts { cursor alert { kind severity } } }"


async def test_an_event_is_rendered_once_per_audience(hub, trio, listen, monkeypatch):
    renders: list[tuple[str, str]] = []
    original = LiveSink.render

    def counted(self, root):
        renders.append((self.audience.parts[0][0], str(root.cursor)))
        return original(self, root)

    monkeypatch.setattr(LiveSink, "render", counted)
    acme = [await listen("acme", TITLES) for _ in range(3)]
    acme_admin = await listen("acme", TITLES, token=hub.token("acme", "admin"))
    shopco = await listen("shopco", TITLES)
    shopco_kinds = await listen("shopco", KINDS)
    await alert(hub, "shopco", ["acme"], "k1")
    messages = [(await listener.next())["alerts"] for listener in (*acme, acme_admin, shopco)]
    assert all(message == messages[0] for message in messages)
    assert messages[0]["alert"] == {"title": "alert k1"}
    assert (await shopco_kinds.next())["alerts"]["alert"] == {"kind": "mismatch", "severity": "warning"}
    # six subscribers, four audiences: acme viewers, acme admin, shopco titles, shopco kinds
    cursor = messages[0]["cursor"]
    assert sorted(tenant for tenant, event in renders if event == cursor) == ["acme", "acme", "shopco", "shopco"]
