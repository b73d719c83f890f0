"""Who besides the owner hears a planning signal: the one place planning asks the sharing rule (tenants/access.py).

A signal about stock (velocity, obsolescence, FEFO) is the holder's; the SKU owner hears it when the holder shares
``alerts`` with it (the rule the event bus re-checks on delivery). A dispatch FEFO slip is the shipper's; the
consignee hears it on the same terms. A transfer recommendation is the holder's; the SKU owner sees it when the
holder shares ``stock`` with it (vendor-managed inventory). A transfer between two holders is proposed to the SKU
owner only while both share ``stock`` with it and the destination shares ``dispatches`` with the source (its consent
to receive the source's dispatches).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from tenants.access import may_reach, reaches, shares_of_many
from tenants.models import Scope

Link = Callable[[str, str, Scope], bool]


async def partner_audience(owner: str, partner: str, scope: Scope = Scope.alerts) -> list[str]:
    if partner == owner:
        return []
    return [partner] if await may_reach(owner, partner, scope) else []


async def links(holders: Iterable[str]) -> Link:
    """``link(holder, partner, scope)``: does ``holder`` share ``scope`` with ``partner`` through an active
    partnership now (read afresh: a recommendation must not outlive a revocation)."""
    shares = await shares_of_many(holders, fresh=True)
    return lambda holder, partner, scope: reaches(shares.get(holder, {}), holder, partner, scope)
