"""Which GraphQL requests are reports, so that they get ``report_timeout_seconds`` of database time.

A report (``inventoryHealth``, ``alertPerformance``) reads every position, demand series, lot cost or alert the caller
may see. The request deadline (``request_timeout_seconds``) suits requests that read a page; on a store that serves a
few thousand documents a second (SecantusDB) a report over a large tenant needs longer, and one request deadline for
both would either cut reports off or let every page read hang that long. Deciding needs the query text before the
deadline starts, and nested deadlines can only shorten, so the decision is taken here, ahead of execution.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    parse,
)

REPORTS = frozenset({"inventoryHealth", "alertPerformance"})


def asks_report(query: Any, operation_name: Any, max_tokens: int) -> bool:
    """Does the operation that will run select a report at its root? Only texts naming a report are parsed."""
    if not isinstance(query, str) or not any(name in query for name in REPORTS):
        return False
    try:
        document = parse(query, no_location=True, max_tokens=max_tokens)
    except GraphQLError:
        return False  # execution answers the syntax error
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name is not None and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation is not OperationType.QUERY:
        return False
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    return not REPORTS.isdisjoint(_root_fields(operations[0].selection_set, fragments, set()))


def _root_fields(selections: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode],
                 seen: set[str]) -> set[str]:
    names: set[str] = set()
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            names.add(selection.name.value)
        elif isinstance(selection, InlineFragmentNode):
            names |= _root_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            seen.add(selection.name.value)  # a fragment cycle is the validator's to refuse
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                names |= _root_fields(fragment.selection_set, fragments, seen)
    return names
