"""What this process last committed to each stock position: lets a batch skip reading its positions.

A hint, never the truth: every write based on it is guarded on the on-hand it assumed (``{_id, on_hand}``), so a
position another writer (or process) changed meanwhile matches nothing, the transaction starts over, and the retry
reads the positions from the database. Entries are written only after a commit and dropped as soon as a write based on
them fails. Between the writers of one store, which usually post to one process, the hint is right and a batch writes
its positions without reading them first.
"""

from __future__ import annotations

from bson import ObjectId

from hub.services.hints import Hints

# (database, tenant, location, SKU, lot)
Key = tuple[str, str, ObjectId, ObjectId, ObjectId | None]
KnownPositions = Hints[Key, tuple[ObjectId, int]]  # (position id, on-hand) by key

known = KnownPositions()
