"""Hostile requests (DESIGN.md §6) are answered cheaply with a 4xx or a typed GraphQL error, and the hub keeps serving.

Each of these gave HTTP 500, ran the wrong operation, or pinned a CPU on stock strawberry.
"""

from __future__ import annotations

import asyncio
import json

from tests.schema.conftest import codes

SKU_COUNT = "{ skus(first: 500) { edges { node { id } } } }"


async def test_invalid_utf8_body_is_rejected(wire):
    response = await wire.raw(b'{"query": "{ __typename \xff\xfe }"}')
    assert response.status_code == 400
    assert codes(response) == ["BAD_USER_INPUT"]
    await wire.still_responsive()


async def test_json_body_that_is_not_an_object_is_rejected(wire):
    for payload in (b"[]", b'[{"query": "{ __typename }"}]', b'"{ __typename }"', b"42", b"null", b"true"):
        response = await wire.raw(payload)
        assert response.status_code == 400, payload
        assert response.json()["errors"][0]["message"] == "request body must be a JSON object"
    await wire.still_responsive()


async def test_malformed_json_is_rejected(wire):
    response = await wire.raw(b'{"query": "{ __typename }"')
    assert response.status_code == 400
    assert codes(response) == ["BAD_USER_INPUT"]


async def test_deeply_nested_json_body_is_rejected(wire):
    depth = 200_000
    response = await wire.raw(b'{"query": "{ __typename }", "extensions": ' + b"[" * depth + b"]" * depth + b"}")
    assert response.status_code == 400
    assert codes(response) == ["BAD_USER_INPUT"]
    await wire.still_responsive()


async def test_deeply_nested_variables_are_rejected(wire):
    nested: dict = {}
    for _ in range(500):
        nested = {"a": nested}
    response = await wire.query("query ($f: SkuFilter) { skus(filter: $f) { edges { cursor } } }", {"f": nested})
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["errors"][0]["message"]
    await wire.still_responsive()


async def test_five_thousand_digit_integer_literal_in_the_query_is_rejected(wire):
    response = await wire.query("{ skus(first: %s) { edges { cursor } } }" % ("9" * 5000))
    assert response.status_code in (200, 400)
    assert codes(response) == ["BAD_USER_INPUT"]
    assert "data" not in response.json()
    await wire.still_responsive()


async def test_five_thousand_digit_float_literal_in_the_query_is_rejected(wire):
    response = await wire.query("{ skus(first: 1.%se999999) { edges { cursor } } }" % ("9" * 5000))
    assert codes(response) == ["BAD_USER_INPUT"]
    await wire.still_responsive()


async def test_five_thousand_digit_integer_in_variables_is_rejected(wire):
    body = '{"query": "query ($n: Int) { skus(first: $n) { edges { cursor } } }", "variables": {"n": %s}}' % (
        "9" * 5000
    )
    response = await wire.raw(body.encode())
    assert response.status_code == 400
    assert codes(response) == ["BAD_USER_INPUT"]
    await wire.still_responsive()


async def test_four_thousand_digit_integer_in_variables_fails_coercion_not_the_server(wire):
    body = '{"query": "query ($n: Int) { skus(first: $n) { edges { cursor } } }", "variables": {"n": %s}}' % (
        "9" * 4000
    )
    response = await wire.raw(body.encode(), accept="application/graphql-response+json")
    assert response.status_code == 400
    assert codes(response) == ["BAD_USER_INPUT"]
    assert "data" not in response.json()
    await wire.still_responsive()


async def test_infinite_float_in_variables_is_rejected(wire):
    body = b'{"query": "query ($t: Float) { __typename }", "variables": {"t": 1e999}}'
    response = await wire.raw(body, accept="application/graphql-response+json")
    assert response.status_code == 400
    assert codes(response) == ["BAD_USER_INPUT"]
    await wire.still_responsive()


async def test_body_over_one_mebibyte_with_content_length_is_refused(wire):
    body = json.dumps({"query": "{ __typename }", "variables": {"pad": "x" * (1024 * 1024)}}).encode()
    response = await wire.raw(body)
    assert response.status_code == 413
    await wire.still_responsive()


async def test_chunked_body_over_one_mebibyte_is_refused_while_streaming(wire):
    async def chunks():
        yield b'{"query": "{ __typename }", "variables": {"pad": "'
        for _ in range(64):  # 4 MiB offered, no Content-Length: the hub must count as it reads
            yield b"x" * 65536
        yield b'"}}'

    response = await wire.raw(chunks())
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    await wire.still_responsive()


async def test_unparseable_content_length_is_refused(wire):
    port = wire.hub.settings.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = b'{"query": "{ __typename }"}'
    writer.write(
        b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + wire.token.encode() + b"\r\nContent-Length: 12abc\r\n\r\n" + body
    )
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert status_line.split()[1] in (b"400", b"413")
    await wire.still_responsive()


async def test_several_operations_without_operation_name_run_none_of_them(wire):
    document = """
        mutation Create { upsertSku(input: {code: "A1", name: "Apple"}) { created } }
        query Count { skus { edges { cursor } } }
    """
    response = await wire.query(document, accept="application/graphql-response+json")
    assert response.status_code == 400
    assert codes(response) == ["BAD_USER_INPUT"]
    assert "data" not in response.json()
    listed = (await wire.query(SKU_COUNT)).json()
    assert listed == {"data": {"skus": {"edges": []}}}


async def test_operation_name_selects_one_of_several_operations(wire):
    document = "query A { __typename } query B { me { tenant { id } } }"
    response = await wire.post({"query": document, "operationName": "B"})
    assert response.json() == {"data": {"me": {"tenant": {"id": "acme"}}}}


async def test_unknown_operation_name_is_rejected(wire):
    response = await wire.post({"query": "query A { __typename }", "operationName": "Nope"},
                               accept="application/graphql-response+json")
    assert response.status_code == 400
    assert codes(response) == ["BAD_USER_INPUT"]


async def test_introspection_depth_bomb_is_too_complex(wire):
    bomb = "{ __schema { types { fields { type { " + "ofType { " * 40 + "name" + " }" * 40 + " } } } } }"
    response = await wire.query(bomb)
    assert codes(response) == ["QUERY_TOO_COMPLEX"]
    await wire.still_responsive()


async def test_introspection_within_the_depth_limit_still_works(wire):
    response = await wire.query("{ __schema { queryType { name } } }")
    assert response.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


async def test_deep_selection_nesting_is_too_complex_or_rejected_without_crashing(wire):
    deep = "{ me " + "{ tenant " * 2000 + "{ id }" + " }" * 2000 + " }"
    response = await wire.query(deep)
    assert response.status_code in (200, 400)
    assert codes(response)[0] in ("QUERY_TOO_COMPLEX", "BAD_USER_INPUT")
    await wire.still_responsive()


async def test_fragment_cycle_is_rejected(wire):
    cycle = """
        query { ...A }
        fragment A on Query { ...B }
        fragment B on Query { ...A }
    """
    response = await wire.query(cycle)
    assert codes(response) == ["BAD_USER_INPUT"]
    assert "fragment cycle" in response.json()["errors"][0]["message"]
    await wire.still_responsive()


async def test_self_spreading_fragment_inside_a_field_is_rejected(wire):
    cycle = "query { me { ...M } } fragment M on Me { tenant { id } ...M }"
    response = await wire.query(cycle)
    assert codes(response) == ["BAD_USER_INPUT"]
    await wire.still_responsive()


async def test_exponential_fragment_expansion_is_too_complex(wire):
    # Each level spreads the previous one ten times: 10**12 fields once expanded.
    levels = ["fragment L0 on Query { __typename }"]
    for level in range(1, 13):
        levels.append(f"fragment L{level} on Query {{ " + f"...L{level - 1} " * 10 + "}")
    bomb = "query { ...L12 } " + " ".join(levels)
    response = await wire.query(bomb)
    assert codes(response) == ["QUERY_TOO_COMPLEX"]
    await wire.still_responsive()


async def test_exponential_expansion_through_nested_fields_is_too_complex(wire):
    levels = ["fragment F0 on Tenant { id name kind }", "fragment T on Me { tenant { ...F6 } }"]
    for level in range(1, 7):
        levels.append(f"fragment F{level} on Tenant {{ " + f"...F{level - 1} " * 8 + "}")
    bomb = "query { me { ...T } } " + " ".join(levels)
    response = await wire.query(bomb)
    assert codes(response) == ["QUERY_TOO_COMPLEX"]
    await wire.still_responsive()


async def test_alias_bomb_is_too_complex(wire):
    bomb = "{ " + " ".join(f"a{i}: __typename" for i in range(1000)) + " }"
    response = await wire.query(bomb)
    assert codes(response) == ["QUERY_TOO_COMPLEX"]
    await wire.still_responsive()


async def test_repeated_field_bomb_is_too_complex(wire):
    # No aliases, so the alias limit does not see it; the expanded field count does (and it spares
    # graphql-core's quadratic overlapping-fields rule).
    bomb = "{ " + "__typename " * 2500 + "}"
    response = await wire.query(bomb)
    assert codes(response) == ["QUERY_TOO_COMPLEX"]
    await wire.still_responsive()


async def test_token_bomb_is_too_complex(wire):
    bomb = "{ __typename " + "@include(if: true) " * 2000 + "}"
    response = await wire.query(bomb)
    assert codes(response) == ["QUERY_TOO_COMPLEX"]
    assert "tokens" in response.json()["errors"][0]["message"]
    await wire.still_responsive()


async def test_deep_list_literal_is_rejected_without_crashing(wire):
    bomb = '{ skus(filter: {code: ' + "[" * 2400 + '"x"' + "]" * 2400 + "}) { edges { cursor } } }"
    response = await wire.query(bomb)
    assert codes(response)[0] in ("QUERY_TOO_COMPLEX", "BAD_USER_INPUT")
    await wire.still_responsive()


async def test_deep_input_object_literal_is_rejected_without_crashing(wire):
    bomb = "{ skus(filter: " + "{code: " * 1600 + '"x"' + "}" * 1600 + ") { edges { cursor } } }"
    response = await wire.query(bomb)
    assert codes(response)[0] in ("QUERY_TOO_COMPLEX", "BAD_USER_INPUT")
    await wire.still_responsive()


async def test_huge_string_literal_is_rejected(wire):
    response = await wire.query('{ skus(filter: {code: "%s"}) { edges { cursor } } }' % ("x" * 20_000))
    assert codes(response) == ["BAD_USER_INPUT"]
    await wire.still_responsive()


async def test_huge_string_variable_is_rejected(wire):
    response = await wire.query(
        "query ($c: String) { skus(filter: {code: $c}) { edges { cursor } } }", {"c": "x" * 20_000}
    )
    assert response.status_code == 400
    assert codes(response) == ["BAD_USER_INPUT"]


async def test_deeply_nested_inline_fragments_are_too_complex(wire):
    bomb = "{ " + "... on Query { " * 150 + "__typename" + " }" * 150 + " }"
    response = await wire.query(bomb)
    assert codes(response)[0] in ("QUERY_TOO_COMPLEX", "BAD_USER_INPUT")
    await wire.still_responsive()


async def test_overlapping_field_bomb_stops_within_the_validation_budget(wire):
    # Few enough fields to pass the field count, but graphql-core compares every pair of the 600 `me` fields.
    bomb = "{ " + "me { tenant { id } } " * 600 + "}"
    response = await wire.query(bomb)
    assert codes(response) == ["QUERY_TOO_COMPLEX"]
    await wire.still_responsive()


async def test_many_validation_errors_are_capped(wire):
    response = await wire.query("{ " + " ".join(f"nope{i}" for i in range(1500)) + " }")
    assert 1 <= len(response.json()["errors"]) <= 101
    assert set(codes(response)) == {"BAD_USER_INPUT"}


async def test_query_text_beyond_the_query_limit_is_refused_before_parsing(wire):
    for padding in (" " * 60_000, "#" + "x" * 60_000 + "\n"):
        response = await wire.query("{ __typename }" + padding)
        assert response.status_code == 413
        assert codes(response) == ["BAD_USER_INPUT"]
    await wire.still_responsive()


async def test_oversized_get_request_is_refused(wire):
    # httpx refuses to send such a URL, so it goes over a plain socket.
    reader, writer = await asyncio.open_connection("127.0.0.1", wire.hub.settings.port)
    target = b"/graphql?query=%7B__typename%7D&variables=" + b"x" * 2_000_000
    writer.write(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                 + wire.token.encode() + b"\r\n\r\n")
    try:
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 20)
    except ConnectionError:
        status_line = b""  # the server hung up on it: also a refusal
    writer.close()
    assert status_line == b"" or status_line.split()[1].startswith(b"4")
    await wire.still_responsive()
