"""Per-subject order of deliveries: what of an endpoint's pending deliveries may be sent now.

Every delivery carries its event's ordering key (``subject``, e.g. ``lot:<id>``) and place in the log (``seq``).
Deliveries to one endpoint about one subject are sent in ``seq`` order, each once the one before it succeeded or was
given up; a subject waiting for a retry holds up only itself. Pure, so the rule is tested without a database.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

from bson import ObjectId


def in_order(
    docs: Iterable[dict[str, Any]],
    may_send: Callable[[dict[str, Any]], bool],
    in_flight: Collection[str],
    blocked: set[str],
    last: dict[str, ObjectId] | None = None,
) -> tuple[list[dict[str, Any]], dict[ObjectId, ObjectId]]:
    """From pending deliveries in ``seq`` order (read from the first pending one of each subject), those that may go
    now, and for each of them the delivery it must wait for (sent just before it, or in flight in this lane).

    A subject is ``blocked`` (the set is updated) at its first delivery that may not go and is not in flight under
    one of the lane's claim tokens (``in_flight``): it waits for a retry, is claimed elsewhere, or was not read.
    Deliveries without a subject (made before ordering existed) are not ordered. ``last`` (updated) carries each
    subject's latest delivery from one page of the reading to the next.
    """
    chosen: list[dict[str, Any]] = []
    after: dict[ObjectId, ObjectId] = {}
    last = {} if last is None else last
    for doc in docs:
        subject = doc.get("subject")
        if subject is None:
            if may_send(doc):
                chosen.append(doc)
            continue
        if subject in blocked:
            continue
        if may_send(doc):
            chosen.append(doc)
            if subject in last:
                after[doc["_id"]] = last[subject]
            last[subject] = doc["_id"]
        elif doc.get("lease_token") in in_flight:
            last[subject] = doc["_id"]
        else:
            blocked.add(subject)
    return chosen, after
