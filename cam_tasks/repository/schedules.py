"""Schedule stores: the :class:`ScheduleRepository` contract, the document mapping, and the
memory backend (the MongoDB one is :mod:`cam_tasks.repository.mongo_schedules`).

Both backends pass one contract suite (``tests/repository/test_schedule_repository.py``) on memory,
mongomock-motor and a MongoDB-wire server.

Concurrency: every write is one atomic conditional update, so many coroutines and processes may
share a store. Two conditions carry the scheduling guarantees:

- a **configuration write** (:meth:`~ScheduleRepository.replace`) matches the ``revision`` its
  caller read and increments it: a change computed from a stale read matches nothing;
- a **fire claim** (:meth:`~ScheduleRepository.claim_fire`) matches ``{name, active: true,
  revision, next_run_at: T, firing_at: null}`` and moves ``next_run_at`` past ``T`` while
  recording ``firing_at = T``: of any number of racing schedulers exactly one wins the slot
  ``T``, and none wins a slot computed from a configuration that changed meanwhile.

Document shape (``schedules`` collection): every :class:`Schedule` field under its own name;
``_id`` is left to the server (names carry a unique index instead); times are BSON dates.
"""

from __future__ import annotations

import builtins
import copy
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, Protocol

from cam_tasks.domain import (
    Schedule,
    ScheduleExistsError,
    ScheduleNotFoundError,
    utc,
)
from cam_tasks.domain.lifecycle import Initializable
from cam_tasks.repository.changes import to_millis

__all__ = [
    "CONFIG_FIELDS",
    "MemoryScheduleRepository",
    "ScheduleRepository",
    "check_page",
    "check_types",
    "schedule_from_document",
    "schedule_to_document",
]

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
_TIME_FIELDS = frozenset({"next_run_at", "last_run_at", "firing_at", "created_at", "updated_at"})


class ScheduleRepository(Protocol):
    """Where schedules live. Errors: ScheduleNotFoundError / ScheduleExistsError as documented,
    DatabaseUnavailableError when the store cannot be reached (driver errors never escape)."""

    async def initialize(self) -> None:
        """Create indexes (idempotent). Call once before use."""
        ...

    async def close(self) -> None:
        """Release what the repository owns (not a database handle it was given). Idempotent."""
        ...

    async def insert(self, schedule: Schedule) -> Schedule:
        """Store a new schedule; ScheduleExistsError when the name is taken (of concurrent
        inserts with one name exactly one succeeds)."""
        ...

    async def get(self, name: str) -> Schedule:
        """The schedule, or ScheduleNotFoundError."""
        ...

    async def list(
        self, *, active: bool | None = None, offset: int = 0, limit: int = 100
    ) -> tuple[builtins.list[Schedule], int]:
        """One page of schedules ordered by name (``active`` filters when given) and the total.
        ValueError for a negative offset or limit."""
        ...

    async def replace(self, schedule: Schedule, *, revision: int) -> Schedule | None:
        """Write the configuration of ``schedule`` (expression, timezone, type, params,
        priority, active, next_run_at, updated_at) and ``revision + 1``, if the stored revision
        is still ``revision``. Runtime state (last_*, firing_at) is left alone.

        Returns the stored schedule after the write; None when the revision moved (re-read and
        try again); ScheduleNotFoundError when the schedule is gone.
        """
        ...

    async def delete(self, name: str) -> None:
        """Delete the schedule; ScheduleNotFoundError when there is none."""
        ...

    # -- the scheduler's side -------------------------------------------------------------------

    async def due(
        self, *, now: datetime, types: Collection[str] | None = None, limit: int = 100
    ) -> builtins.list[Schedule]:
        """Active schedules with ``next_run_at <= now`` (of one of ``types`` when given),
        earliest first."""
        ...

    async def firing(
        self, *, types: Collection[str] | None = None, limit: int = 100
    ) -> builtins.list[Schedule]:
        """Schedules with a claimed fire whose task is not recorded (``firing_at`` set), of one
        of ``types`` when given."""
        ...

    async def next_run_at(self, *, types: Collection[str] | None = None) -> datetime | None:
        """The earliest ``next_run_at`` of an active schedule (of one of ``types`` when given),
        or None."""
        ...

    async def claim_fire(
        self,
        name: str,
        *,
        revision: int,
        fire_at: datetime,
        next_run_at: datetime | None,
        now: datetime,
    ) -> Schedule | None:
        """Claim the slot ``fire_at``: atomically, if the schedule is active, at ``revision``,
        due at ``fire_at`` and has no fire pending, set ``next_run_at``, ``firing_at = fire_at``
        and ``last_run_at = now``. Returns the schedule after the claim, or None when any
        condition failed (another scheduler won, or the schedule changed or vanished)."""
        ...

    async def skip_fire(
        self, name: str, *, revision: int, fire_at: datetime, next_run_at: datetime | None
    ) -> bool:
        """Like :meth:`claim_fire` without firing: only move ``next_run_at`` on (a missed slot
        under the "skip" misfire policy). True when this call moved it."""
        ...

    async def finish_fire(
        self, name: str, *, fire_at: datetime, task_id: str | None, error: str | None
    ) -> bool:
        """Record the outcome of the fire claimed for ``fire_at``: clear ``firing_at`` and set
        ``last_task_id`` and ``last_error``, if ``firing_at`` is still ``fire_at``. True when
        this call recorded it (False: already recorded by another scheduler, or deleted)."""
        ...

    async def record_run(self, name: str, *, now: datetime, task_id: str) -> Schedule:
        """Record a task fired outside the timetable (run now): ``last_run_at = now``,
        ``last_task_id``, no ``last_error``; ``next_run_at`` is left alone.
        ScheduleNotFoundError when the schedule is gone."""
        ...


def schedule_to_document(schedule: Schedule) -> dict[str, Any]:
    """The document that stores ``schedule`` (times truncated to milliseconds, as BSON keeps
    them)."""
    document = schedule.model_dump()
    for name in _TIME_FIELDS:
        if document[name] is not None:
            document[name] = to_millis(document[name])
    return document


def schedule_from_document(document: Mapping[str, Any]) -> Schedule:
    """The schedule a document stores (``_id`` and unknown fields are ignored)."""
    fields = {name: document[name] for name in Schedule.model_fields if name in document}
    for name in _TIME_FIELDS & fields.keys():
        if fields[name] is not None:
            fields[name] = utc(fields[name])
    return Schedule.model_validate(fields)


def check_page(offset: int, limit: int) -> None:
    if offset < 0 or limit < 0:
        raise ValueError("offset and limit must be >= 0")


def check_types(types: Collection[str] | None) -> None:
    if isinstance(types, str):  # a bare string would read as a set of its characters
        raise TypeError(f"expected a collection of task types, got the string {types!r}")


class MemoryScheduleRepository(Initializable):
    """Schedules in a dict of this process; nothing survives it. Queries scan every schedule
    (O(n)): schedules are few, unlike tasks.

    Coroutine-safe without a lock: no method awaits, so each runs whole before another
    coroutine of the event loop can. Not thread-safe.
    """

    def __init__(self) -> None:
        self._schedules: dict[str, Schedule] = {}

    async def initialize(self) -> None:
        """Nothing to create."""

    async def close(self) -> None:
        """Nothing to release. Idempotent."""

    def _store(self, schedule: Schedule) -> Schedule:
        # Through the document mapping, so a schedule reads back exactly as from MongoDB.
        stored = schedule_from_document(copy.deepcopy(schedule_to_document(schedule)))
        self._schedules[stored.name] = stored
        return stored

    def _get(self, name: str) -> Schedule:
        schedule = self._schedules.get(name)
        if schedule is None:
            raise ScheduleNotFoundError(name)
        return schedule

    def _update(self, schedule: Schedule, **fields: Any) -> Schedule:
        return self._store(schedule.model_copy(update=fields))

    async def insert(self, schedule: Schedule) -> Schedule:
        if schedule.name in self._schedules:
            raise ScheduleExistsError(schedule.name)
        return self._store(schedule)

    async def get(self, name: str) -> Schedule:
        return self._get(name)

    async def list(
        self, *, active: bool | None = None, offset: int = 0, limit: int = 100
    ) -> tuple[builtins.list[Schedule], int]:
        check_page(offset, limit)
        matching = [
            self._schedules[name]
            for name in sorted(self._schedules)
            if active is None or self._schedules[name].active is active
        ]
        return matching[offset : offset + limit], len(matching)

    async def replace(self, schedule: Schedule, *, revision: int) -> Schedule | None:
        current = self._get(schedule.name)
        if current.revision != revision:
            return None
        fields = {name: getattr(schedule, name) for name in CONFIG_FIELDS}
        return self._update(current, revision=revision + 1, **fields)

    async def delete(self, name: str) -> None:
        self._get(name)
        del self._schedules[name]

    def _of(self, types: Collection[str] | None) -> builtins.list[Schedule]:
        check_types(types)
        return [s for s in self._schedules.values() if types is None or s.type in types]

    async def due(
        self, *, now: datetime, types: Collection[str] | None = None, limit: int = 100
    ) -> builtins.list[Schedule]:
        now = to_millis(now)
        due = [
            s
            for s in self._of(types)
            if s.active and s.next_run_at is not None and s.next_run_at <= now
        ]
        due.sort(key=lambda s: (s.next_run_at, s.name))
        return due[:limit]

    async def firing(
        self, *, types: Collection[str] | None = None, limit: int = 100
    ) -> builtins.list[Schedule]:
        pending = [s for s in self._of(types) if s.firing_at is not None]
        pending.sort(key=lambda s: (s.firing_at, s.name))
        return pending[:limit]

    async def next_run_at(self, *, types: Collection[str] | None = None) -> datetime | None:
        times = [s.next_run_at for s in self._of(types) if s.active and s.next_run_at is not None]
        return min(times, default=None)

    def _claimable(self, name: str, revision: int, fire_at: datetime) -> Schedule | None:
        schedule = self._schedules.get(name)
        if (
            schedule is None
            or not schedule.active
            or schedule.revision != revision
            or schedule.next_run_at != to_millis(fire_at)
            or schedule.firing_at is not None
        ):
            return None
        return schedule

    async def claim_fire(
        self,
        name: str,
        *,
        revision: int,
        fire_at: datetime,
        next_run_at: datetime | None,
        now: datetime,
    ) -> Schedule | None:
        schedule = self._claimable(name, revision, fire_at)
        if schedule is None:
            return None
        return self._update(schedule, next_run_at=next_run_at, firing_at=fire_at, last_run_at=now)

    async def skip_fire(
        self, name: str, *, revision: int, fire_at: datetime, next_run_at: datetime | None
    ) -> bool:
        schedule = self._claimable(name, revision, fire_at)
        if schedule is None:
            return False
        self._update(schedule, next_run_at=next_run_at)
        return True

    async def finish_fire(
        self, name: str, *, fire_at: datetime, task_id: str | None, error: str | None
    ) -> bool:
        schedule = self._schedules.get(name)
        if schedule is None or schedule.firing_at != to_millis(fire_at):
            return False
        self._update(schedule, firing_at=None, last_task_id=task_id, last_error=error)
        return True

    async def record_run(self, name: str, *, now: datetime, task_id: str) -> Schedule:
        schedule = self._get(name)
        return self._update(schedule, last_run_at=now, last_task_id=task_id, last_error=None)
