"""Task <-> MongoDB document mapping, and the fixed query shapes built from domain values.

Document shape: ``_id`` is the task id; every other :class:`Task` field keeps its name. Times are
BSON dates (millisecond precision, read back as tz-aware UTC whatever the client's ``tz_aware``),
enums are stored as their string values, ``error`` as ``{type, message}`` and ``history`` as a
list of attempt dicts. ``expire_at`` exists only on finished tasks when retention is configured;
it belongs to the storage (TTL index), not to the domain, so it is not mapped back.

Reading is a hot path (every claim, list and finishing write decodes documents), so documents
are turned back into tasks with ``model_construct`` instead of full validation. That is safe
because only this module writes them: the decoder still normalises everything a driver may hand
back differently (naive datetimes, lists for tuples, ints for floats, strings for enums).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel

from cam_tasks.domain import (
    DEFAULT_MAX_RETRIES,
    MAX_PAGE_SIZE,
    AttemptRecord,
    Priority,
    Task,
    TaskError,
    TaskFilter,
    TaskStatus,
    utc,
)
from cam_tasks.repository.changes import Change, to_millis

__all__ = [
    "build_task",
    "check_page",
    "encode_change",
    "filter_to_query",
    "one_of",
    "task_from_document",
    "task_to_document",
]


def _time(value: datetime | None) -> datetime | None:
    return None if value is None else to_millis(value)


def _error_document(error: TaskError | None) -> dict[str, Any] | None:
    return None if error is None else {"type": error.type, "message": error.message}


def _record_document(record: AttemptRecord) -> dict[str, Any]:
    return {
        "attempt": record.attempt,
        "owner": record.owner,
        "started_at": to_millis(record.started_at),
        "ended_at": to_millis(record.ended_at),
        "outcome": record.outcome,
        "error": _error_document(record.error),
    }


def task_to_document(task: Task) -> dict[str, Any]:
    """The document that stores ``task`` (no ``expire_at``: a new task never expires)."""
    return {
        "_id": task.id,
        "type": task.type,
        "status": task.status.value,
        "params": task.params,
        "result": task.result,
        "error": _error_document(task.error),
        "progress": float(task.progress),
        "message": task.message,
        "step": task.step,
        "total_steps": task.total_steps,
        "attempts": task.attempts,
        "max_retries": task.max_retries,
        "priority": int(task.priority),
        "run_at": to_millis(task.run_at),
        "timeout_s": task.timeout_s,
        "created_by": task.created_by,
        "project_id": task.project_id,
        "idempotency_key": task.idempotency_key,
        "created_at": to_millis(task.created_at),
        "updated_at": to_millis(task.updated_at),
        "started_at": _time(task.started_at),
        "completed_at": _time(task.completed_at),
        "owner": task.owner,
        "lease_until": _time(task.lease_until),
        "cancel_requested": task.cancel_requested,
        "history": [_record_document(record) for record in task.history],
    }


def _read_time(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def _read_error(value: Mapping[str, Any] | None) -> TaskError | None:
    if value is None:
        return None
    return TaskError.model_construct(type=value["type"], message=value.get("message", ""))


def _read_record(value: Mapping[str, Any]) -> AttemptRecord:
    return AttemptRecord.model_construct(
        attempt=int(value["attempt"]),
        owner=value["owner"],
        started_at=utc(value["started_at"]),
        ended_at=utc(value["ended_at"]),
        outcome=value["outcome"],
        error=_read_error(value.get("error")),
    )


#: Every field of a Task. Tasks built by :func:`build_task` all share this one set as their
#: ``model_fields_set`` (they set every field) instead of carrying one each (about 1 KB a task
#: in a memory store). Pydantic copies it before any change (``model_copy``), never mutates it.
_TASK_FIELDS: set[str] = set(Task.model_fields)
_set_attribute = object.__setattr__


def build_task(values: dict[str, Any]) -> Task:
    """A Task holding ``values`` (every field, already normalised), without validation.

    What ``Task.model_construct(**values)`` makes of a complete dict, minus its per-field
    bookkeeping: decoding is on every hot path (claims, finishes, memory-store writes). ``values``
    becomes the task's own ``__dict__``: the caller must not keep it. A dict missing a field
    (a model that grew one) goes through ``model_construct``, which fills in the default.
    """
    if len(values) != len(_TASK_FIELDS):
        return Task.model_construct(**values)
    task = Task.__new__(Task)
    _set_attribute(task, "__dict__", values)
    _set_attribute(task, "__pydantic_fields_set__", _TASK_FIELDS)
    _set_attribute(task, "__pydantic_extra__", None)
    _set_attribute(task, "__pydantic_private__", None)
    return task


def task_from_document(document: Mapping[str, Any]) -> Task:
    """The task a document stores. Fields missing from older documents take their defaults."""
    get = document.get
    timeout_s = get("timeout_s")
    step = get("step")
    total_steps = get("total_steps")
    return build_task(
        {
            "id": document["_id"],
            "type": document["type"],
            "status": TaskStatus(document["status"]),
            "params": get("params") or {},
            "result": get("result"),
            "error": _read_error(get("error")),
            "progress": float(get("progress", 0.0)),
            "message": get("message", ""),
            "step": None if step is None else int(step),
            "total_steps": None if total_steps is None else int(total_steps),
            "attempts": int(get("attempts", 0)),
            "max_retries": int(get("max_retries", DEFAULT_MAX_RETRIES)),
            "priority": int(get("priority", Priority.NORMAL)),
            "run_at": utc(document["run_at"]),
            "timeout_s": None if timeout_s is None else float(timeout_s),
            "created_by": get("created_by", "system"),
            "project_id": get("project_id"),
            "idempotency_key": get("idempotency_key"),
            "created_at": utc(document["created_at"]),
            "updated_at": utc(document["updated_at"]),
            "started_at": _read_time(get("started_at")),
            "completed_at": _read_time(get("completed_at")),
            "owner": get("owner"),
            "lease_until": _read_time(get("lease_until")),
            "cancel_requested": bool(get("cancel_requested", False)),
            "history": tuple(_read_record(record) for record in get("history") or ()),
        }
    )


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_millis(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, TaskError):
        return _error_document(value)
    if isinstance(value, BaseModel):  # pragma: no cover - no other model is ever a field value
        return value.model_dump(mode="json")
    return value


def encode_change(change: Change) -> dict[str, Any]:
    """The update document that applies ``change`` in one atomic write."""
    update: dict[str, Any] = {"$set": {name: _encode(v) for name, v in change.fields.items()}}
    if change.attempts_delta:
        update["$inc"] = {"attempts": change.attempts_delta}
    if change.record is not None:
        update["$push"] = {"history": _record_document(change.record)}
    if change.touches_expiry:
        if change.expire_at is None:
            update["$unset"] = {"expire_at": ""}
        else:
            update["$set"]["expire_at"] = to_millis(change.expire_at)
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
    return document


def check_page(offset: int, limit: int) -> None:
    """Raise ValueError for a page no repository serves (``limit`` 0 asks only for the total)."""
    if offset < 0 or not 0 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"need offset >= 0 and 0 <= limit <= {MAX_PAGE_SIZE}")
