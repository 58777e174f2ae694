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
from pymongo.errors import OperationFailure

from cam_tasks.domain import ConfigurationError
from cam_tasks.repository.driver import unavailable_as_domain_error

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
    """Create every index of :data:`SCHEDULE_INDEXES`; return their names. Idempotent.

    ConfigurationError when an index exists under the same name with another definition (drop it
    to migrate); DatabaseUnavailableError when the database cannot be reached.
    """
    names: list[str] = []
    for model in SCHEDULE_INDEXES:
        # One create_index per model: mongomock's create_indexes drops partialFilterExpression.
        options = dict(model.document)
        keys = list(options.pop("key").items())
        try:
            async with unavailable_as_domain_error():
                names.append(await collection.create_index(keys, **options))
        except OperationFailure as exc:
            reason = (exc.details or {}).get("errmsg", str(exc))
            raise ConfigurationError(
                f"index {options['name']!r} of {collection.name!r} exists with another "
                f"definition (drop it to migrate): {reason}"
            ) from exc
    return names
