"""Every optional GraphQL argument has a Python default: omitting it is the client's right, never a server fault."""

from __future__ import annotations

import inspect

from strawberry.types.base import StrawberryOptional

from hub.config import Settings
from schema.pagination import BackwardPaging
from schema.schema import build_schema

PAGING_ARGUMENTS = ("last", "before")


def test_optional_arguments_have_defaults_in_their_resolvers():
    schema = build_schema(Settings())
    checked, missing = 0, []
    for type_ in schema.schema_converter.type_map.values():
        for field in getattr(type_.definition, "fields", None) or []:
            resolver = getattr(field, "base_resolver", None)
            if resolver is None:
                continue
            parameters = inspect.signature(resolver.wrapped_func).parameters
            for argument in field.arguments:
                if argument.python_name in PAGING_ARGUMENTS and any(
                    isinstance(extension, BackwardPaging) for extension in field.extensions
                ):
                    continue  # consumed by the extension before the resolver runs (it defaults them to None)
                if isinstance(argument.type, StrawberryOptional):
                    checked += 1
                    if parameters[argument.python_name].default is inspect.Parameter.empty:
                        missing.append(f"{type_.definition.name}.{field.name}({argument.python_name})")
    assert checked > 20 and missing == []
