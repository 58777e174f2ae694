"""Every index of the ``schedules`` collection, declared in one place, and their creation.

- ``name``: unique; the identity of a schedule (every read and write by name) and the order of
  the list.
- ``due``: ``active`` =, then ``next_run_at`` (range and sort): the scheduler's "due now" query
  and its "earliest next fire time" lookup (limit 1).
- ``firing``: PARTIAL on documents whose ``firing_at`` is a date: the fires claimed but not yet
  recorded (normally none, so the index stays empty).
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel

from cam_tasks.repository.indexes import create_indexes

__all__ = ["SCHEDULE_INDEXES", "create_schedule_indexes"]

SCHEDULE_INDEXES: tuple[IndexModel, ...] = (
    IndexModel([("name", ASCENDING)], name="name", unique=True),
    IndexModel([("active", ASCENDING), ("next_run_at", ASCENDING)], name="due"),
    IndexModel(
        [("firing_at", ASCENDING)],
        name="firing",
        partialFilterExpression={"firing_at": {"$type": "date"}},
    ),
)


async def create_schedule_indexes(collection: Any) -> list[str]:
    """Create :data:`SCHEDULE_INDEXES` (see :func:`create_indexes`). Idempotent."""
    return await create_indexes(collection, SCHEDULE_INDEXES)
