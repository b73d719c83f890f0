"""Query cost for rate limiting: each selected field costs 1, times the page size of every list around it.

A page size is the field's ``first`` or ``last`` (literal, variable or the schema's default), capped at the
largest page; fields without one count once. Runs after validation, so fragments are known to be acyclic and the
expanded document is bounded by the query limits.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    NamedTypeNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)
from graphql.language import OperationType as AstOperationType

from schema.limits import CACHEABLE_QUERY_CHARS

PAGE_ARGUMENTS = ("first", "last")
COST_CACHE_SIZE = 1000


def query_cost(schema: GraphQLSchema, document: DocumentNode, operation_name: str | None,
               variables: dict[str, Any] | None, max_page: int) -> int:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    operation = next((o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)),
                     None)
    if operation is None:
        return 1
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    root = {
        AstOperationType.QUERY: schema.query_type,
        AstOperationType.MUTATION: schema.mutation_type,
        AstOperationType.SUBSCRIPTION: schema.subscription_type,
    }[operation.operation]
    variables = variables or {}

    def page(field: FieldNode, definition: Any) -> int:
        for argument in field.arguments or ():
            if argument.name.value in PAGE_ARGUMENTS:
                value = argument.value
                if isinstance(value, IntValueNode):
                    return min(max(int(value.value), 1), max_page)
                if isinstance(value, VariableNode) and isinstance(variables.get(value.name.value), int):
                    return min(max(variables[value.name.value], 1), max_page)
        for name in PAGE_ARGUMENTS:
            default = definition.args.get(name).default_value if definition and name in definition.args else None
            if isinstance(default, int):
                return min(max(default, 1), max_page)
        return 1

    def selections(node: SelectionSetNode, parent: GraphQLNamedType | None) -> Iterator[tuple[FieldNode, Any]]:
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                fields = getattr(parent, "fields", {})
                yield selection, fields.get(selection.name.value)
            else:
                condition: NamedTypeNode | None
                if isinstance(selection, FragmentSpreadNode):
                    fragment = fragments.get(selection.name.value)
                    if fragment is None:
                        continue
                    condition, inner = fragment.type_condition, fragment.selection_set
                else:
                    assert isinstance(selection, InlineFragmentNode)
                    condition, inner = selection.type_condition, selection.selection_set
                narrowed = schema.get_type(condition.name.value) if condition else parent
                yield from selections(inner, narrowed)

    def cost(node: SelectionSetNode, parent: GraphQLNamedType | None, multiplier: int) -> int:
        total = 0
        for field, definition in selections(node, parent):
            if field.name.value.startswith("__"):
                continue
            total += multiplier
            if field.selection_set is not None:
                inner = get_named_type(definition.type) if definition is not None else None
                total += cost(field.selection_set, inner, multiplier * page(field, definition))
        return total

    return max(1, cost(operation.selection_set, root, 1))


class QueryCosts:
    """Operation costs, remembered per query text, operation and variables (most clients repeat them)."""

    def __init__(self, max_page: int) -> None:
        self.max_page = max_page
        self._cache: OrderedDict[tuple[Any, ...], int] = OrderedDict()

    def cost(self, schema: GraphQLSchema, document: DocumentNode, query: str, operation_name: str | None,
             variables: dict[str, Any] | None) -> int:
        key = (query, operation_name, json.dumps(variables, sort_keys=True) if variables else None)
        cost = self._cache.get(key)
        if cost is None:
            cost = query_cost(schema, document, operation_name, variables, self.max_page)
            if len(query) <= CACHEABLE_QUERY_CHARS:
                self._cache[key] = cost
                if len(self._cache) > COST_CACHE_SIZE:
                    self._cache.popitem(last=False)
        return cost
