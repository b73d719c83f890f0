"""Query limits checked before graphql-core's own validation ever runs.

Measured on stock strawberry: its depth limiter skips every ``__`` field, and a fragment cycle or an exponential
fragment expansion pins a CPU forever (some standard rules expand fragments without bound). So this guard runs
first, in time linear in the document: it rejects fragment cycles, and measures each operation's *expanded* field
count, depth (introspection included) and aliases with one memoised pass over fragments in dependency order.
Only a document that passes reaches the standard rules, whose result is cached per query text.

graphql-core's overlapping-fields rule is quadratic in repeated fields and stops only after a budget of 500,000
comparisons (about two seconds of one CPU here); a tenth of that is far more than any real query needs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FloatValueNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    Visitor,
    parse,
    visit,
)
from graphql.validation.rules import overlapping_fields_can_be_merged
from graphql.validation.validate import ValidationAbortedError
from strawberry.schema.schema import validate_document

MAX_NUMBER_LITERAL = 40  # characters; far beyond any real int/float, far below Python's int-parsing limits
# Only documents up to this size are cached: a parsed 5,000-token document holds ~2 MB (tokens stay linked from the
# AST, and cached validation errors point into it), so caching large ones would let distinct big queries fill memory.
CACHEABLE_QUERY_CHARS = 4096
VALIDATION_BUDGET = 50_000  # field comparisons of the overlapping-fields rule (graphql-core's default: 500,000)
overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET = VALIDATION_BUDGET


@dataclass(frozen=True)
class Limits:
    max_depth: int = 12
    max_aliases: int = 30
    max_fields: int = 2000
    max_string_length: int = 10_000


@dataclass(frozen=True)
class Cost:
    fields: int = 0
    depth: int = 0
    aliases: int = 0

    def plus(self, other: Cost, cap: int) -> Cost:
        return Cost(
            min(self.fields + other.fields, cap),
            max(self.depth, other.depth),
            min(self.aliases + other.aliases, cap),
        )


def _too_complex(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "QUERY_TOO_COMPLEX"})


def _invalid(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "BAD_USER_INPUT"})


def _spreads(selection_set: SelectionSetNode | None) -> Iterator[str]:
    stack = [selection_set] if selection_set else []
    while stack:
        current = stack.pop()
        for selection in current.selections:
            if isinstance(selection, FragmentSpreadNode):
                yield selection.name.value
            elif isinstance(selection, (FieldNode, InlineFragmentNode)) and selection.selection_set is not None:
                stack.append(selection.selection_set)


def _fragment_order(fragments: dict[str, FragmentDefinitionNode]) -> list[str] | str:
    """Fragments so that each comes after those it spreads; or the name of one on a cycle."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    for root in fragments:
        if state.get(root):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, _spreads(fragments[root].selection_set))]
        state[root] = 1
        while stack:
            name, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                state[name] = 2
                order.append(name)
            elif child in fragments:
                if state.get(child) == 1:
                    return child
                if not state.get(child):
                    state[child] = 1
                    stack.append((child, _spreads(fragments[child].selection_set)))
    return order


class _Measure:
    def __init__(self, limits: Limits, fragments: dict[str, Cost]) -> None:
        self.limits = limits
        self.cap = limits.max_fields + 1
        self.fragments = fragments

    def selection_set(self, node: SelectionSetNode | None, depth: int, nesting: int = 0) -> Cost:
        total = Cost(depth=depth)
        if node is None:
            return total
        if nesting > self.limits.max_depth * 2:
            # Inline fragments nest without adding depth; bound them too, so this recursion stays shallow.
            return Cost(depth=self.limits.max_depth + 1)
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                alias = 1 if selection.alias is not None else 0
                # Stop descending once too deep: the answer is already "too deep", and recursion stays bounded.
                inner = (
                    self.selection_set(selection.selection_set, depth + 1, nesting + 1)
                    if selection.selection_set is not None and depth < self.limits.max_depth
                    else Cost(depth=depth + (1 if selection.selection_set is not None else 0))
                )
                total = total.plus(Cost(1 + inner.fields, inner.depth, alias + inner.aliases), self.cap)
            elif isinstance(selection, InlineFragmentNode):
                total = total.plus(self.selection_set(selection.selection_set, depth, nesting + 1), self.cap)
            elif isinstance(selection, FragmentSpreadNode):
                spread = self.fragments.get(selection.name.value)
                if spread is not None:
                    total = total.plus(Cost(spread.fields, spread.depth + depth, spread.aliases), self.cap)
        return total


class _Literals(Visitor):
    def __init__(self, limits: Limits) -> None:
        super().__init__()
        self.limits = limits
        self.errors: list[GraphQLError] = []

    def enter_int_value(self, node: IntValueNode, *_: object) -> None:
        if len(node.value) > MAX_NUMBER_LITERAL:
            self.errors.append(_invalid("number literal is too long"))

    def enter_float_value(self, node: FloatValueNode, *_: object) -> None:
        if len(node.value) > MAX_NUMBER_LITERAL:
            self.errors.append(_invalid("number literal is too long"))

    def enter_string_value(self, node: StringValueNode, *_: object) -> None:
        if len(node.value) > self.limits.max_string_length:
            self.errors.append(_invalid("string literal is too long"))


def check_document(document: DocumentNode, operation_name: str | None, limits: Limits) -> list[GraphQLError]:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    if len(operations) > 1 and not operation_name:
        return [_invalid("operationName is required when a document holds several operations")]
    order = _fragment_order(fragments)
    if isinstance(order, str):
        return [_invalid(f"fragment {order!r} spreads itself (fragment cycle)")]
    literals = _Literals(limits)
    visit(document, literals)
    if literals.errors:
        return literals.errors[:1]
    costs: dict[str, Cost] = {}
    measure = _Measure(limits, costs)
    for name in order:
        costs[name] = measure.selection_set(fragments[name].selection_set, 0)
    for operation in operations:
        if operation_name and (operation.name is None or operation.name.value != operation_name):
            continue
        cost = measure.selection_set(operation.selection_set, 0)
        if cost.depth > limits.max_depth:
            return [_too_complex(f"query is deeper than {limits.max_depth} levels")]
        if cost.aliases > limits.max_aliases:
            return [_too_complex(f"query uses more than {limits.max_aliases} aliases")]
        if cost.fields > limits.max_fields:
            return [_too_complex(f"query selects more than {limits.max_fields} fields once fragments are expanded")]
    return []


class ParsedQueries:
    """strawberry's ParserCache, for small documents only (see ``CACHEABLE_QUERY_CHARS``); shared by every
    operation of a schema."""

    def __init__(self, maxsize: int = 512) -> None:
        self.cached = lru_cache(maxsize=maxsize)(parse)

    def parse(self, query: str, **options: Any) -> DocumentNode:
        return (self.cached if len(query) <= CACHEABLE_QUERY_CHARS else parse)(query, **options)


class CheckedQueries:
    """``check_document``, then the standard validation rules, with the result cached per query text and operation
    name (what the client sent: ``operation_name`` falls back to the first operation's name)."""

    def __init__(self, limits: Limits, cache_size: int = 1000) -> None:
        self.limits = limits
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str | None], list[GraphQLError]] = OrderedDict()

    def errors(self, schema: GraphQLSchema, document: DocumentNode, query: str, operation_name: str | None,
               rules: Any) -> list[GraphQLError]:
        key = (query, operation_name)
        errors = self._cache.get(key)
        if errors is not None:
            self._cache.move_to_end(key)
            return errors
        errors = check_document(document, operation_name, self.limits)
        if not errors:
            errors = validate_document(schema, document, rules)
            if any(isinstance(e, ValidationAbortedError) and e.message == "Validation aborted." for e in errors):
                errors = [_too_complex("query is too complex to validate")]
        if len(query) <= CACHEABLE_QUERY_CHARS:
            self._cache[key] = errors
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return errors
