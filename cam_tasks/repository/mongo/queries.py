"""The fixed MongoDB query and update shapes built from domain values.

Every value a request can influence arrives here as a plain string, set of strings or datetime
and is placed under a fixed field name, so nothing from a request becomes an operator.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from cam_tasks.domain import DEFAULT_QUEUE, TRANSITIONS, Action, TaskFilter, TaskStatus, to_millis
from cam_tasks.domain.changes import Change
from cam_tasks.repository.documents import ACTIVE_KEY, encode_value

__all__ = ["encode_change", "filter_to_query", "one_of", "sources_of"]


def encode_change(change: Change) -> dict[str, Any]:
    """The update document that applies ``change`` in one atomic write."""
    update: dict[str, Any] = {"$set": {name: encode_value(v) for name, v in change.fields.items()}}
    if change.attempts_delta:
        update["$inc"] = {"attempts": change.attempts_delta}
    if change.record is not None:
        update["$push"] = {"history": encode_value(change.record)}
    unset: dict[str, str] = {}
    status = change.fields.get("status")
    if status is not None and TaskStatus(status).is_terminal:
        unset[ACTIVE_KEY] = ""  # an ended task no longer holds its unique key
    if change.touches_expiry:
        if change.expire_at is None:
            unset["expire_at"] = ""
        else:
            update["$set"]["expire_at"] = to_millis(change.expire_at)
    if unset:
        update["$unset"] = unset
    return update


def one_of(values: Iterable[str]) -> Any:
    """An equality for one value, ``$in`` for several (sorted: stable query shapes).

    TypeError for a bare string, which would otherwise read as a set of its characters.
    """
    if isinstance(values, str):
        raise TypeError(f"expected a collection of strings, got the string {values!r}")
    ordered = sorted(values)
    return ordered[0] if len(ordered) == 1 else {"$in": ordered}


def _statuses(statuses: Collection[TaskStatus]) -> Any:
    return one_of(status.value for status in statuses)


def sources_of(action: Action) -> Any:
    """The ``status`` condition of a write applying ``action``: its legal source statuses."""
    return _statuses(TRANSITIONS[action].sources)


def filter_to_query(query: TaskFilter | None) -> dict[str, Any]:
    """The query document for ``query``: every field maps to a fixed shape, and every value is
    a plain string, set of strings or datetime, so nothing from a request becomes an operator.
    An empty set matches nothing (``$in: []``)."""
    document: dict[str, Any] = {}
    if query is None:
        return document
    if query.types is not None:
        document["type"] = one_of(query.types) if query.types else {"$in": []}
    if query.statuses is not None:
        document["status"] = _statuses(query.statuses) if query.statuses else {"$in": []}
    if query.created_by is not None:
        document["created_by"] = {"$eq": query.created_by}
    if query.project_ids is not None:
        document["project_id"] = {"$in": sorted(query.project_ids)}
    if query.updated_since is not None:
        document["updated_at"] = {"$gte": to_millis(query.updated_since)}
    if query.queues is not None:
        document["queue"] = _queues(query.queues)
    if query.error_types is not None:
        document["error.type"] = {"$in": sorted(query.error_types)}
    finished: dict[str, Any] = {}
    if query.finished_after is not None:
        finished["$gte"] = to_millis(query.finished_after)
    if query.finished_before is not None:
        finished["$lt"] = to_millis(query.finished_before)
    if finished:
        document["completed_at"] = finished
    created: dict[str, Any] = {}
    if query.created_after is not None:
        created["$gte"] = to_millis(query.created_after)
    if query.created_before is not None:
        created["$lt"] = to_millis(query.created_before)
    if created:
        document["created_at"] = created
    return document


def _queues(queues: Collection[str]) -> Any:
    # Tasks stored before Task.queue existed have no field and read back in the default queue:
    # match them too (`null` matches a missing field, and the index holds it as null).
    values: list[str | None] = [*sorted(queues)]
    if DEFAULT_QUEUE in queues:
        values.append(None)
    return {"$in": values}
