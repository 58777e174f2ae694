"""The in-process schedule store behind ``memory://`` (the MongoDB one is
:class:`cam_tasks.repository.mongo.MongoScheduleRepository`; both pass
``tests/repository/test_schedule_repository.py``)."""

from __future__ import annotations

import builtins
import copy
from collections.abc import Collection
from datetime import datetime
from typing import Any

from cam_tasks.domain import Schedule, ScheduleExistsError, ScheduleNotFoundError, to_millis
from cam_tasks.domain.lifecycle import Initializable
from cam_tasks.repository.documents import (
    CONFIG_FIELDS,
    check_schedule_page,
    check_types,
    schedule_from_document,
    schedule_to_document,
)

__all__ = ["MemoryScheduleRepository"]


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
        check_schedule_page(offset, limit)
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
