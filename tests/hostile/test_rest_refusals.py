"""A path or method the hub does not serve answers a JSON body like every other refusal, never plain text."""

from __future__ import annotations

from tests.conftest import Hub


async def test_unknown_paths_and_methods_answer_json_problems(module_hub: Hub) -> None:
    headers = {"authorization": f"Bearer {module_hub.token('anyone')}"}
    cases = [("GET", "/epcis/capture", 405, "about:blank"), ("POST", "/epcis/events", 405, "about:blank"),
             ("GET", "/epcis/nope", 404, "epcisException:NoSuchResourceException"),
             ("DELETE", "/epcis/capture/x", 405, "about:blank"), ("GET", "/nope", 404, "about:blank"),
             ("PUT", "/oauth/token", 405, "about:blank"), ("GET", "/.well-known/jwks.json/x", 404, "about:blank")]
    for method, path, status, kind in cases:
        response = await module_hub.http.request(method, path, headers=headers)
        assert response.status_code == status, (method, path)
        assert response.headers["content-type"] == "application/problem+json", (method, path, response.text)
        assert response.json() == {"type": kind, "title": response.json()["title"], "status": status}
        if status == 405:
            assert response.headers["allow"], (method, path)
    response = await module_hub.http.put("/graphql", json={"query": "{ __typename }"}, headers=headers)
    assert response.status_code == 405
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["BAD_USER_INPUT"]
