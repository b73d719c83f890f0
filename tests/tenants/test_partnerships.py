"""The partnership lifecycle: invite → accept → revoke, each step by the right tenant's admin only."""

from __future__ import annotations

from tests.catalog.conftest import ACCEPT, INVITE, REVOKE, codes

PARTNERS = """
query ($status: PartnershipStatus) {
  partners(filter: {status: $status}) {
    edges { node { id partnerId partnerName status invitedByUs weShare theyShare acceptedAt revokedAt } }
  }
}
"""
ADD_MEMBER = """
mutation ($input: AddMemberInput!) { addMember(input: $input) { id subject roles } }
"""
MEMBERS = "{ members { edges { node { id subject roles } } } }"
REMOVE_MEMBER = "mutation ($id: ID!) { removeMember(id: $id) }"


async def partners(hub, tenant, status=None) -> list[dict]:
    data = await hub.ok(PARTNERS, {"status": status}, tenant=tenant)
    return [edge["node"] for edge in data["partners"]["edges"]]


async def invite(hub, inviter, invitee, we=("sku_master",), they=("stock",)) -> str:
    data = await hub.ok(INVITE, {"partner": invitee, "we": list(we), "they": list(they)}, tenant=inviter)
    assert data["invitePartner"]["status"] == "invited"
    return data["invitePartner"]["id"]


async def test_invite_accept_revoke(hub, acme, globex):
    # when acme invites globex, both see the invitation, each from its own side
    partnership = await invite(hub, acme, globex)
    [ours] = await partners(hub, acme)
    [theirs] = await partners(hub, globex)
    assert ours["partnerId"] == globex and ours["partnerName"] == "Globex Markets" and ours["invitedByUs"] is True
    assert ours["weShare"] == ["sku_master"] and ours["theyShare"] == ["stock"]
    assert theirs["partnerId"] == acme and theirs["invitedByUs"] is False
    assert theirs["weShare"] == ["stock"] and theirs["theyShare"] == ["sku_master"]
    # when globex accepts
    accepted = await hub.ok(ACCEPT, {"id": partnership}, tenant=globex)
    assert accepted["acceptPartnership"]["status"] == "active"
    assert (await partners(hub, acme, "active"))[0]["acceptedAt"] is not None
    assert await partners(hub, acme, "invited") == []
    # when globex revokes (either party may)
    revoked = await hub.ok(REVOKE, {"id": partnership}, tenant=globex)
    assert revoked["revokePartnership"]["status"] == "revoked"
    assert (await partners(hub, acme))[0]["revokedAt"] is not None


async def test_only_the_invitee_accepts(hub, acme, globex):
    partnership = await invite(hub, acme, globex)
    assert codes(await hub.gql(ACCEPT, {"id": partnership}, tenant=acme)) == ["CONFLICT"]
    assert (await partners(hub, acme))[0]["status"] == "invited"


async def test_only_admins_manage_partnerships(hub, acme, globex):
    body = await hub.gql(INVITE, {"partner": globex, "we": [], "they": []}, tenant=acme, roles=("planner",))
    assert codes(body) == ["FORBIDDEN"]
    partnership = await invite(hub, acme, globex)
    for role in ("planner", "operator", "viewer", "integration"):
        assert codes(await hub.gql(ACCEPT, {"id": partnership}, tenant=globex, roles=(role,))) == ["FORBIDDEN"]
        assert codes(await hub.gql(REVOKE, {"id": partnership}, tenant=acme, roles=(role,))) == ["FORBIDDEN"]
    assert (await partners(hub, globex, None))[0]["status"] == "invited"
    # viewers may still see who their partners are
    assert len((await hub.ok(PARTNERS, {}, tenant=globex, roles=("viewer",)))["partners"]["edges"]) == 1


async def test_illegal_transitions_are_conflicts(hub, acme, globex):
    partnership = await invite(hub, acme, globex)
    assert codes(await hub.gql(INVITE, {"partner": globex, "we": [], "they": []}, tenant=acme)) == ["CONFLICT"]
    assert codes(await hub.gql(INVITE, {"partner": acme, "we": [], "they": []}, tenant=globex)) == ["CONFLICT"]
    await hub.ok(ACCEPT, {"id": partnership}, tenant=globex)
    assert codes(await hub.gql(ACCEPT, {"id": partnership}, tenant=globex)) == ["CONFLICT"]
    assert codes(await hub.gql(INVITE, {"partner": globex, "we": [], "they": []}, tenant=acme)) == ["CONFLICT"]
    await hub.ok(REVOKE, {"id": partnership}, tenant=acme)
    assert codes(await hub.gql(REVOKE, {"id": partnership}, tenant=acme)) == ["CONFLICT"]
    assert codes(await hub.gql(ACCEPT, {"id": partnership}, tenant=globex)) == ["CONFLICT"]


async def test_a_revoked_partnership_can_be_reopened_by_either_side(hub, acme, globex):
    partnership = await invite(hub, acme, globex)
    await hub.ok(REVOKE, {"id": partnership}, tenant=acme)
    reopened = await invite(hub, inviter=globex, invitee=acme, we=("alerts",), they=())
    assert reopened == partnership  # one partnership per pair
    [view] = await partners(hub, acme)
    assert view["status"] == "invited" and view["invitedByUs"] is False
    assert view["theyShare"] == ["alerts"] and view["weShare"] == [] and view["revokedAt"] is None
    assert codes(await hub.gql(ACCEPT, {"id": partnership}, tenant=globex)) == ["CONFLICT"]
    assert (await hub.ok(ACCEPT, {"id": partnership}, tenant=acme))["acceptPartnership"]["status"] == "active"


async def test_outsiders_cannot_see_accept_or_revoke_a_partnership(hub, acme, globex, initech):
    partnership = await invite(hub, acme, globex)
    assert await partners(hub, initech) == []
    assert codes(await hub.gql(ACCEPT, {"id": partnership}, tenant=initech)) == ["NOT_FOUND"]
    assert codes(await hub.gql(REVOKE, {"id": partnership}, tenant=initech)) == ["NOT_FOUND"]
    assert codes(await hub.gql(REVOKE, {"id": "nonsense"}, tenant=initech)) == ["NOT_FOUND"]
    assert (await partners(hub, acme))[0]["status"] == "invited"


async def test_inviting_yourself_or_a_stranger_that_does_not_exist_is_refused(hub, acme, globex):
    assert codes(await hub.gql(INVITE, {"partner": acme, "we": [], "they": []}, tenant=acme)) == ["BAD_USER_INPUT"]
    assert codes(await hub.gql(INVITE, {"partner": "nobody", "we": [], "they": []}, tenant=acme)) == ["NOT_FOUND"]
    body = await hub.gql(INVITE, {"partner": globex, "we": ["everything"], "they": []}, tenant=acme)
    assert codes(body) == ["BAD_USER_INPUT"]


async def test_admins_manage_their_own_members_only(hub, acme, globex):
    member = {
        "issuer": "https://idp.example",
        "subject": f"alice@{acme}",
        "roles": ["planner"],
        "email": "alice@acme.example",
    }
    added = (await hub.ok(ADD_MEMBER, {"input": member}, tenant=acme))["addMember"]
    assert added["roles"] == ["planner"]
    assert [m["node"]["subject"] for m in (await hub.ok(MEMBERS, tenant=acme))["members"]["edges"]] == [f"alice@{acme}"]
    assert (await hub.ok(MEMBERS, tenant=globex))["members"]["edges"] == []
    assert codes(await hub.gql(REMOVE_MEMBER, {"id": added["id"]}, tenant=globex)) == ["NOT_FOUND"]
    assert codes(await hub.gql(ADD_MEMBER, {"input": member}, tenant=globex)) == ["CONFLICT"]
    assert codes(
        await hub.gql(ADD_MEMBER, {"input": {**member, "subject": f"bob@{acme}"}}, tenant=acme, roles=("planner",))
    ) == ["FORBIDDEN"]
    assert codes(await hub.gql(MEMBERS, tenant=acme, roles=("viewer",))) == ["FORBIDDEN"]
    await hub.ok(REMOVE_MEMBER, {"id": added["id"]}, tenant=acme)
    assert (await hub.ok(MEMBERS, tenant=acme))["members"]["edges"] == []


async def test_bad_member_input_is_refused(hub, acme):
    base = {"issuer": "https://idp.example", "subject": "alice", "roles": ["planner"]}
    for change in ({"subject": ""}, {"subject": "s" * 600}, {"roles": []}, {"roles": ["root"]}, {"email": "e" * 300}):
        assert codes(await hub.gql(ADD_MEMBER, {"input": {**base, **change}}, tenant=acme)) == ["BAD_USER_INPUT"], (
            change
        )
    assert (await hub.ok(MEMBERS, tenant=acme))["members"]["edges"] == []
