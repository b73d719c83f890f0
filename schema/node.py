"""Relay's ``Node`` interface: objects that ``node(id:)`` and ``nodes(ids:)`` find by id alone (schema/relay)."""

from __future__ import annotations

import strawberry


@strawberry.interface(description="An object node(id:) can fetch again by its id")
class Node:
    id: strawberry.ID
