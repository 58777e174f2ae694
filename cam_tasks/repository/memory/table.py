"""The memory store's tasks by id, finished ones packed small.

A store keeps finished tasks for their whole retention (a week by default), so they are nearly
all of its memory. A :class:`Task` holds its fields in a per-instance dict (about 0.8 KB) plus
an attempt record model per history entry; a packed task is one tuple of its field values,
its history as tuples, and its ``params``/``result`` as JSON bytes when JSON gives them back
exactly (otherwise they stay as they are). That is about a third of the memory
(docs/performance.md, B6). Active tasks stay Task objects: they are read on every claim,
heartbeat and finish.

Reading a packed task unpacks it into an equal Task (a new object each time, which costs a few
microseconds); nothing else of the store changes.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import orjson

from cam_tasks.domain import AttemptRecord, Task
from cam_tasks.repository.documents import build_task

__all__ = ["TaskTable"]

_FIELDS: tuple[str, ...] = tuple(Task.model_fields)
_PARAMS = _FIELDS.index("params")
_RESULT = _FIELDS.index("result")
_HISTORY = _FIELDS.index("history")
_RECORD_FIELDS: tuple[str, ...] = tuple(AttemptRecord.model_fields)
_RECORD_FIELDS_SET: set[str] = set(_RECORD_FIELDS)  # shared, as build_task shares the task's
_PARAMS_PACKED, _RESULT_PACKED = 1, 2
_set_attribute = object.__setattr__

# (flags, *field values): flags say which of params/result are JSON bytes.
_Packed = tuple[Any, ...]


def _as_json(value: Any) -> bytes | None:
    """``value`` as JSON when loading it gives an equal value back (never for NaN, tuples,
    datetimes, non-string keys…), else None."""
    try:
        raw = orjson.dumps(value)
    except TypeError:
        return None
    # A copy: orjson's bytes keep the capacity of its output buffer (4 KiB), not their length.
    return bytes(memoryview(raw)) if orjson.loads(raw) == value else None


def _record(values: tuple[Any, ...]) -> AttemptRecord:
    record = AttemptRecord.__new__(AttemptRecord)
    _set_attribute(record, "__dict__", dict(zip(_RECORD_FIELDS, values, strict=True)))
    _set_attribute(record, "__pydantic_fields_set__", _RECORD_FIELDS_SET)
    _set_attribute(record, "__pydantic_extra__", None)
    _set_attribute(record, "__pydantic_private__", None)
    return record


def _pack(task: Task) -> _Packed:
    values = [task.__dict__[name] for name in _FIELDS]
    flags = 0
    params, result = _as_json(values[_PARAMS]), _as_json(values[_RESULT])
    if params is not None:
        values[_PARAMS], flags = params, flags | _PARAMS_PACKED
    if result is not None:
        values[_RESULT], flags = result, flags | _RESULT_PACKED
    values[_HISTORY] = tuple(
        tuple(record.__dict__[name] for name in _RECORD_FIELDS) for record in values[_HISTORY]
    )
    return (flags, *values)


def _unpack(packed: _Packed) -> Task:
    flags = packed[0]
    values = dict(zip(_FIELDS, packed[1:], strict=True))
    if flags & _PARAMS_PACKED:
        values["params"] = orjson.loads(values["params"])
    if flags & _RESULT_PACKED:
        values["result"] = orjson.loads(values["result"])
    values["history"] = tuple(_record(record) for record in values["history"])
    return build_task(values)


class TaskTable(MutableMapping[str, Task]):
    """A ``dict[str, Task]`` that keeps finished tasks packed (see the module docstring).

    Reads of a finished task return a new, equal Task each time. Not thread-safe.
    """

    def __init__(self) -> None:
        self._items: dict[str, Task | _Packed] = {}

    def __getitem__(self, task_id: str) -> Task:
        item = self._items[task_id]
        return item if isinstance(item, Task) else _unpack(item)

    def __setitem__(self, task_id: str, task: Task) -> None:
        self._items[task_id] = _pack(task) if task.status.is_terminal else task

    def __delitem__(self, task_id: str) -> None:
        del self._items[task_id]

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
