"""Models <-> stored documents, for every backend: tasks, schedules and inventory assets.

Task documents are derived from the fields of :class:`~cam_tasks.domain.Task`: each field keeps
its name (``id`` is stored as ``_id``) and is converted by its declared type, so a field added to
the domain model is stored, read back and defaulted for older documents without a line here.
Times are BSON dates (millisecond precision, read back as tz-aware UTC whatever the client's
``tz_aware``), enums are stored as their string values, ``error`` as ``{type, message}`` and
``history`` as a list of attempt dicts. ``expire_at`` exists only on finished tasks when
retention is configured; it belongs to the storage (TTL index), not to the domain, so it is not
mapped back.

Reading is a hot path (every claim, list and finishing write decodes documents), so documents
are turned back into tasks without pydantic validation (:func:`build_task`). That is safe
because only this module writes them: the decoder still normalises everything a driver may hand
back differently (naive datetimes, lists for tuples, ints for floats, strings for enums).

The memory backends store values through the same mapping, so a task reads back from
``memory://`` exactly as MongoDB would give it.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Any, Final

from pydantic.fields import FieldInfo

from cam_tasks.domain import (
    MAX_PAGE_SIZE,
    Asset,
    AssetScope,
    AttemptRecord,
    Schedule,
    Task,
    TaskError,
    to_millis,
    utc,
)
from cam_tasks.domain.changes import Change

__all__ = [
    "ACTIVE_KEY",
    "ASSET_KEY_FIELDS",
    "ASSET_SORT_FIELDS",
    "CONFIG_FIELDS",
    "active_key_of",
    "asset_criteria",
    "build_task",
    "changed_task",
    "check_page",
    "check_schedule_page",
    "check_scope",
    "check_types",
    "encode_value",
    "schedule_from_document",
    "schedule_to_document",
    "task_from_document",
    "task_to_document",
]

# -- task fields, by declared type ------------------------------------------------------------

_Convert = Callable[[Any], Any]


def _error_document(error: TaskError | None) -> dict[str, Any] | None:
    return None if error is None else {"type": error.type, "message": error.message}


def _read_error(value: Mapping[str, Any] | None) -> TaskError | None:
    if value is None:
        return None
    return TaskError.model_construct(type=value["type"], message=value.get("message", ""))


def _record_document(record: AttemptRecord) -> dict[str, Any]:
    return {
        "attempt": record.attempt,
        "owner": record.owner,
        "started_at": to_millis(record.started_at),
        "ended_at": to_millis(record.ended_at),
        "outcome": record.outcome,
        "error": _error_document(record.error),
    }


def _read_record(value: Mapping[str, Any]) -> AttemptRecord:
    return AttemptRecord.model_construct(
        attempt=int(value["attempt"]),
        owner=value["owner"],
        started_at=utc(value["started_at"]),
        ended_at=utc(value["ended_at"]),
        outcome=value["outcome"],
        error=_read_error(value.get("error")),
    )


def _history_document(history: Sequence[AttemptRecord]) -> list[dict[str, Any]]:
    return [_record_document(record) for record in history]


def _read_history(value: Sequence[Mapping[str, Any]] | None) -> tuple[AttemptRecord, ...]:
    return tuple(_read_record(record) for record in value or ())


def _optional(convert: _Convert) -> _Convert:
    return lambda value: None if value is None else convert(value)


def _enum_value(value: Enum) -> Any:
    return value.value


#: (encode, decode) per declared type; a type not listed is stored as it is (str, bool, dicts,
#: ``Any``). Each pair must be exact inverses up to the normalisation described above.
_BY_TYPE: dict[Any, tuple[_Convert, _Convert]] = {
    datetime: (to_millis, utc),
    float: (float, float),
    int: (int, int),
    bool: (bool, bool),
    TaskError: (_error_document, _read_error),
    tuple[AttemptRecord, ...]: (_history_document, _read_history),
}


def _converters(annotation: Any) -> tuple[_Convert | None, _Convert | None]:
    """(encode, decode) for a field declared as ``annotation``: None where the value is
    stored as it is."""
    optional = False
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        annotation = members[0] if len(members) == 1 else Any
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        pair: tuple[_Convert, _Convert] | None = (_enum_value, annotation)
    else:
        pair = _BY_TYPE.get(annotation)
    if pair is None:
        return None, None
    encode, decode = pair
    if optional and annotation not in (TaskError,):  # TaskError's pair handles None itself
        return _optional(encode), _optional(decode)
    return encode, decode


def _stored_name(field: str) -> str:
    return "_id" if field == "id" else field


def _default_of(info: FieldInfo) -> Callable[[], Any] | None:
    """What makes the field's default (a fresh one per call: some are containers), or None
    when the default is None (most optional fields: decoding skips them)."""
    if info.default_factory is None and info.default is None:
        return None
    return lambda: info.get_default(call_default_factory=True)


_FieldCodec = tuple[str, str, _Convert | None, _Convert | None, Callable[[], Any] | None]
#: Per Task field, in declaration order: (field, stored name, encode, decode, default factory).
_TASK_CODEC: Final[tuple[_FieldCodec, ...]] = tuple(
    (name, _stored_name(name), *_converters(info.annotation), _default_of(info))
    for name, info in Task.model_fields.items()
)
#: Fields a document must have (no default): a document without one is not a task.
_REQUIRED: Final = frozenset(name for name, info in Task.model_fields.items() if info.is_required())


#: The stored field that holds a task's unique key while it is active (storage only: a unique
#: partial index over it enforces "one active task per key"; it is removed when the task ends).
ACTIVE_KEY: Final = "active_key"


def active_key_of(task: Task) -> str | None:
    """What :data:`ACTIVE_KEY` holds for ``task``: its ``unique_key`` in its project's namespace
    while it is pending or running, else None. The length prefix keeps ("a:b", "c") and
    ("a", "b:c") apart."""
    if task.unique_key is None or task.status.is_terminal:
        return None
    project = task.project_id or ""
    return f"{len(project)}:{project}:{task.unique_key}"


def task_to_document(task: Task) -> dict[str, Any]:
    """The document that stores ``task`` (no ``expire_at``: a new task never expires)."""
    values = task.__dict__
    document: dict[str, Any] = {}
    for name, stored, encode, _, _ in _TASK_CODEC:
        value = values[name]
        document[stored] = value if encode is None else encode(value)
    active_key = active_key_of(task)
    if active_key is not None:
        document[ACTIVE_KEY] = active_key
    return document


#: Every field of a Task. Tasks built by :func:`build_task` all share this one set as their
#: ``model_fields_set`` (they set every field) instead of carrying one each (about 1 KB a task
#: in a memory store). Pydantic copies it before any change (``model_copy``), never mutates it.
_TASK_FIELDS: set[str] = set(Task.model_fields)
_set_attribute = object.__setattr__


def changed_task(task: Task, change: Change) -> Task:
    """``task`` as it is after ``change`` is written (what both stores compute for a write
    whose result they know without reading it back). ``result`` is shared, not copied."""
    update = dict(change.fields)
    if change.attempts_delta:
        update["attempts"] = task.attempts + change.attempts_delta
    if change.record is not None:
        update["history"] = (*task.history, change.record)
    return build_task({**task.__dict__, **update})


def build_task(values: dict[str, Any]) -> Task:
    """A Task holding ``values`` (every field, already normalised), without validation.

    What ``Task.model_construct(**values)`` makes of a complete dict, minus its per-field
    bookkeeping: decoding is on every hot path (claims, finishes, memory-store writes). ``values``
    becomes the task's own ``__dict__``: the caller must not keep it. A dict missing a field
    goes through ``model_construct``, which fills in the default.
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
    """The task a document stores. Fields missing from older documents take their defaults
    (a stored null where the model has a non-null default, too); a document without a required
    field raises KeyError."""
    values: dict[str, Any] = {}
    for name, stored, _, decode, default in _TASK_CODEC:
        value = document.get(stored)
        if value is None:
            if name in _REQUIRED:
                value = document[stored]  # KeyError when missing
            elif default is not None:  # absent, or a stored null: the model's default
                values[name] = default()
                continue
            else:
                values[name] = None
                continue
        values[name] = value if decode is None or value is None else decode(value)
    return build_task(values)


def encode_value(value: Any) -> Any:
    """One domain value as a document stores it (for the fields of a change)."""
    if isinstance(value, datetime):
        return to_millis(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, TaskError):
        return _error_document(value)
    if isinstance(value, AttemptRecord):
        return _record_document(value)
    return value


def check_page(offset: int, limit: int) -> None:
    """Raise ValueError for a page no repository serves (``limit`` 0 asks only for the total)."""
    if offset < 0 or not 0 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"need offset >= 0 and 0 <= limit <= {MAX_PAGE_SIZE}")


# -- schedules --------------------------------------------------------------------------------

#: The fields a configuration write (``replace``) may change; the rest is runtime state.
CONFIG_FIELDS = (
    "expression",
    "timezone",
    "type",
    "params",
    "priority",
    "active",
    "next_run_at",
    "updated_at",
)
_SCHEDULE_TIME_FIELDS = frozenset(
    name for name, info in Schedule.model_fields.items() if _converters(info.annotation)[0]
)


def schedule_to_document(schedule: Schedule) -> dict[str, Any]:
    """The document that stores ``schedule`` (``_id`` is left to the server: names carry a
    unique index; times truncated to milliseconds, as BSON keeps them)."""
    document = schedule.model_dump()
    for name in _SCHEDULE_TIME_FIELDS:
        if isinstance(document[name], datetime):
            document[name] = to_millis(document[name])
    return document


def schedule_from_document(document: Mapping[str, Any]) -> Schedule:
    """The schedule a document stores (``_id`` and unknown fields are ignored)."""
    fields = {name: document[name] for name in Schedule.model_fields if name in document}
    for name in _SCHEDULE_TIME_FIELDS & fields.keys():
        if isinstance(fields[name], datetime):
            fields[name] = utc(fields[name])
    return Schedule.model_validate(fields)


def check_schedule_page(offset: int, limit: int) -> None:
    if offset < 0 or limit < 0:
        raise ValueError("offset and limit must be >= 0")


def check_types(types: Collection[str] | None) -> None:
    if isinstance(types, str):  # a bare string would read as a set of its characters
        raise TypeError(f"expected a collection of task types, got the string {types!r}")


# -- inventory assets -------------------------------------------------------------------------

#: The identity of a stored asset (unique together).
ASSET_KEY_FIELDS: Final = ("provider", "account_id", "region", "asset_type", "asset_id")
#: The order of ``find()``.
ASSET_SORT_FIELDS: Final = ("region", "asset_type", "asset_id")


def check_scope(scope: AssetScope, upserts: Sequence[Asset]) -> None:
    """ValueError for an upsert whose region or type is not the scope's: the scope is the key,
    and an asset filed under the wrong one would be removed by the next sync of its own."""
    for asset in upserts:
        if asset.region != scope.region or asset.asset_type != scope.asset_type:
            raise ValueError(
                f"asset {asset.asset_id!r} ({asset.region}/{asset.asset_type}) does not belong "
                f"to scope {scope.region}/{scope.asset_type}"
            )


def asset_criteria(offset: int, limit: int, **fields: str | None) -> dict[str, str]:
    """find()'s query: fixed field names and string values only, so that nothing a caller
    passes can become an operator. ValueError for a negative offset or limit."""
    if offset < 0 or limit < 0:
        raise ValueError("offset and limit must be >= 0")
    return {name: str(value) for name, value in fields.items() if value is not None}
