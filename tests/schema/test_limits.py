"""The query guard on its own, through ``schema.execute``: what it measures and what it keeps in memory."""

from __future__ import annotations

from graphql import parse

from hub.config import Settings
from schema.limits import CACHEABLE_QUERY_CHARS, Limits, check_document
from schema.schema import build_schema

LIMITS = Limits(max_depth=4, max_aliases=2, max_fields=10)


def messages(document: str, operation_name: str | None = None) -> list[str]:
    return [error.message for error in check_document(parse(document), operation_name, LIMITS)]


def test_depth_counts_introspection_fields():
    # Depth counts nested selection sets: root fields are at depth 0.
    assert messages("{ __schema { types { fields { type { name } } } } }") == []
    assert messages("{ __schema { types { fields { type { ofType { name } } } } } }") == [
        "query is deeper than 4 levels"
    ]


def test_depth_counts_through_fragments():
    document = "{ __schema { ...T } } fragment T on __Schema { types { fields { type { ofType { name } } } } }"
    assert messages(document) == ["query is deeper than 4 levels"]


def test_fields_are_counted_once_fragments_are_expanded():
    document = "{ ...A ...A ...A } fragment A on Query { __typename __typename __typename __typename }"
    assert messages(document) == ["query selects more than 10 fields once fragments are expanded"]


def test_aliases_are_counted_through_fragments():
    assert messages("{ ...A ...A } fragment A on Query { a: __typename b: __typename }") == [
        "query uses more than 2 aliases"
    ]


def test_unused_operations_are_not_measured_when_one_is_named():
    heavy = "query Heavy { " + "__typename " * 20 + "}"
    assert messages(f"query Light {{ __typename }} {heavy}", "Light") == []
    assert messages(f"query Light {{ __typename }} {heavy}", "Heavy") != []
    assert messages(f"query Light {{ __typename }} {heavy}") == [
        "operationName is required when a document holds several operations"
    ]


def test_fragment_cycles_through_several_fragments_are_found():
    assert messages("{ ...A } fragment A on Query { ...B } fragment B on Query { ...C } fragment C on Query { ...A }")


async def test_only_small_documents_are_cached():
    schema = build_schema(Settings())
    parse_cache = next(
        ext for ext in (factory() for factory in schema.extensions) if type(ext).__name__ == "HubOperation"
    ).parsed.cached
    small = "{ __typename }"
    big = "{ __typename }" + " " * CACHEABLE_QUERY_CHARS
    before = parse_cache.cache_info().currsize
    assert (await schema.execute(small)).data == {"__typename": "Query"}
    assert (await schema.execute(big)).data == {"__typename": "Query"}
    assert parse_cache.cache_info().currsize == before + 1
