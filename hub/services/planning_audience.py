"""Who besides the owner hears a planning signal: the one place planning asks the sharing rule (tenants/access.py).

A signal about stock (velocity, obsolescence, FEFO) is the holder's; the SKU owner hears it when the holder shares
``alerts`` with it (the rule the event bus re-checks on delivery). A dispatch FEFO slip is the shipper's; the
consignee hears it on the same terms. A transfer recommendation is the holder's; the SKU owner sees it when the
holder shares ``stock`` with it (vendor-managed inventory).
"""

from __future__ import annotations

from tenants.access import may_reach
from tenants.models import Scope


async def partner_audience(owner: str, partner: str, scope: Scope = Scope.alerts) -> list[str]:
    if partner == owner:
        return []
    return [partner] if await may_reach(owner, partner, scope) else []
