"""ScheduleService: the use cases on schedules (create, read, list, update, delete, pause, resume,
run now, and declaring schedules from configuration).

A schedule is validated completely when it is created or changed, so a bad one is refused at once
(422) instead of failing at its first fire time: the name, the cron expression, the time zone,
the priority, and the task type and params against the executor registry (the params are stored
as the executor's model dumps them, like a submitted task's).

Firing at due times is not done here but by the scheduler (``cam_tasks.queue.scheduler``), which
this layer never imports: the service tells it about changes through :class:`ScheduleNotifier`.
Run-now submits through :class:`TaskService` directly.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from cam_tasks.domain import (
    MAX_PAGE_SIZE,
    Clock,
    InvalidParamsError,
    Priority,
    Schedule,
    ScheduleConflictError,
    ScheduleExistsError,
    ScheduleNotFoundError,
    Task,
    check_schedule_name,
    parse_cron,
    parse_timezone,
    schedule_task_creator,
)
from cam_tasks.repository.protocol import ScheduleRepository
from cam_tasks.service.tasks import TaskService

__all__ = ["ScheduleNotifier", "ScheduleService"]

logger = logging.getLogger(__name__)

_PRIORITY_NAMES = {p.name.lower(): p for p in Priority}
# A configuration write retries when another write changed the schedule between its read and
# its conditional write; more rounds than this means something keeps rewriting it.
_WRITE_ROUNDS = 5

Problems = builtins.list[dict[str, Any]]


class ScheduleNotifier(Protocol):
    """How the service tells the local scheduler that schedules changed (the scheduler
    implements it structurally). A hint for latency only: other instances' schedulers notice
    changes on their next poll."""

    def schedules_changed(self) -> None:
        """A schedule was created, changed, resumed or deleted. Must not block."""
        ...


def _problems_of(exc: InvalidParamsError) -> Problems:
    return list(exc.details)


def _priority(value: object, problems: Problems) -> int:
    if isinstance(value, str) and value.strip().lower() in _PRIORITY_NAMES:
        return int(_PRIORITY_NAMES[value.strip().lower()])
    if isinstance(value, int) and not isinstance(value, bool) and value in set(Priority):
        return int(value)
    names = "|".join(_PRIORITY_NAMES)
    ints = ", ".join(str(int(p)) for p in Priority)
    problems.append(
        {
            "loc": ["priority"],
            "msg": f"priority must be one of {names} or {ints}",
            "type": "priority_invalid",
        }
    )
    return int(Priority.NORMAL)


class ScheduleService:
    """The schedule use cases over one :class:`ScheduleRepository` and the :class:`TaskService`
    (for the executor registry, and to fire run-now tasks).

    Concurrency: configuration changes are conditional on the revision they were computed from
    and retried on a conflict, so concurrent changes from many processes never lose one another
    silently; pause and resume are idempotent.

    Errors: besides those listed per method, any method may raise DatabaseUnavailableError.
    """

    def __init__(
        self,
        repository: ScheduleRepository,
        tasks: TaskService,
        *,
        clock: Clock | None = None,
        notifier: ScheduleNotifier | None = None,
    ) -> None:
        self._repository = repository
        self._tasks = tasks
        self._clock = clock or tasks.clock
        self._notifier = notifier

    @property
    def clock(self) -> Clock:
        return self._clock

    # -- validation ---------------------------------------------------------------------------

    def _validated(
        self,
        *,
        name: str,
        expression: object,
        timezone: object,
        task_type: str,
        params: Mapping[str, Any],
        priority: object,
    ) -> tuple[str, dict[str, Any], int]:
        """Check everything at once; return (expression, stored params, priority int).

        UnknownTaskTypeError first (nothing else can be judged without the executor), then one
        InvalidParamsError listing every problem.
        """
        self._tasks.registry.get(task_type)
        problems: Problems = []
        for check in (lambda: check_schedule_name(name), lambda: parse_timezone(timezone)):
            try:
                check()
            except InvalidParamsError as exc:
                problems += _problems_of(exc)
        normalised = ""
        try:
            normalised = parse_cron(expression)
        except InvalidParamsError as exc:
            problems += _problems_of(exc)
        level = _priority(priority, problems)
        stored: dict[str, Any] = {}
        try:
            stored = self._tasks.registry.validate(task_type, params).model_dump(mode="json")
        except InvalidParamsError as exc:
            problems = [*_problems_of(exc), *problems]
        if problems:
            raise InvalidParamsError(f"invalid schedule {name!r}", problems)
        return normalised, stored, level

    # -- create and read ------------------------------------------------------------------------

    async def create(
        self,
        name: str,
        *,
        expression: str,
        task_type: str,
        params: Mapping[str, Any] | None = None,
        timezone: str = "UTC",
        priority: int | str = Priority.NORMAL,
        active: bool = True,
    ) -> Schedule:
        """Create schedule ``name``, first due at the next fire time after now (none while
        ``active`` is false).

        Raises :class:`UnknownTaskTypeError`, :class:`InvalidParamsError` (every problem, with
        ``loc``/``msg``/``type`` details: ``name``, ``expression``, ``timezone``, ``priority``,
        ``params…``), :class:`ScheduleExistsError`. Nothing is stored when it raises.
        """
        normalised, stored_params, level = self._validated(
            name=name,
            expression=expression,
            timezone=timezone,
            task_type=task_type,
            params=params or {},
            priority=priority,
        )
        now = self._clock.now()
        schedule = Schedule(
            name=name,
            expression=normalised,
            timezone=timezone,
            type=task_type,
            params=stored_params,
            priority=level,
            active=active,
            created_at=now,
            updated_at=now,
        )
        if active:
            schedule = schedule.model_copy(update={"next_run_at": schedule.next_fire_after(now)})
        stored = await self._repository.insert(schedule)
        logger.info("schedule created", extra={"schedule": name, "type": task_type})
        self._notify()
        return stored

    async def get(self, name: str) -> Schedule:
        """The schedule. Raises :class:`ScheduleNotFoundError`."""
        return await self._repository.get(name)

    async def list(
        self, *, active: bool | None = None, offset: int = 0, limit: int = 50
    ) -> tuple[builtins.list[Schedule], int]:
        """One page of schedules ordered by name (only active or paused ones when ``active`` is
        given) and the total. InvalidParamsError unless ``offset >= 0`` and
        ``1 <= limit <= MAX_PAGE_SIZE``."""
        problems: Problems = []
        if offset < 0:
            problems.append({"loc": ["offset"], "msg": "must be >= 0", "type": "offset"})
        if not 1 <= limit <= MAX_PAGE_SIZE:
            problems.append(
                {"loc": ["limit"], "msg": f"must be between 1 and {MAX_PAGE_SIZE}", "type": "limit"}
            )
        if problems:
            raise InvalidParamsError("invalid page", problems)
        return await self._repository.list(active=active, offset=offset, limit=limit)

    # -- changes ------------------------------------------------------------------------------

    async def _rewrite(self, name: str, change: Callable[[Schedule], Schedule]) -> Schedule:
        """Apply ``change`` to the stored schedule with a conditional write, re-reading and
        retrying when a concurrent change got there first. ``change`` may return its argument
        unchanged (nothing is written)."""
        for _ in range(_WRITE_ROUNDS):
            current = await self._repository.get(name)
            wanted = change(current)
            if wanted == current:
                return current
            written = await self._repository.replace(wanted, revision=current.revision)
            if written is not None:
                self._notify()
                return written
        raise ScheduleConflictError(name, "it is being changed concurrently; try again")

    async def update(
        self,
        name: str,
        *,
        expression: str | None = None,
        timezone: str | None = None,
        task_type: str | None = None,
        params: Mapping[str, Any] | None = None,
        priority: int | str | None = None,
        active: bool | None = None,
    ) -> Schedule:
        """Change the given fields (None: unchanged); the result is validated whole, as by
        :meth:`create` (new ``params`` replace the old ones; a new ``task_type`` checks the
        kept params against its own model).

        The timetable: a changed expression or zone restarts it from the next fire time after
        now; ``active=False`` pauses and ``active=True`` resumes (see :meth:`pause` /
        :meth:`resume`); other changes keep ``next_run_at``.

        Raises :class:`ScheduleNotFoundError`, :class:`UnknownTaskTypeError`,
        :class:`InvalidParamsError`.
        """

        def change(current: Schedule) -> Schedule:
            new_type = current.type if task_type is None else task_type
            new_timezone = current.timezone if timezone is None else timezone
            normalised, stored_params, level = self._validated(
                name=name,
                expression=current.expression if expression is None else expression,
                timezone=new_timezone,
                task_type=new_type,
                params=current.params if params is None else params,
                priority=current.priority if priority is None else priority,
            )
            now = self._clock.now()
            wanted = current.model_copy(
                update={
                    "expression": normalised,
                    "timezone": new_timezone,
                    "type": new_type,
                    "params": stored_params,
                    "priority": level,
                    "active": current.active if active is None else active,
                }
            )
            timing = (wanted.expression, wanted.timezone, wanted.active)
            if timing != (current.expression, current.timezone, current.active):
                next_run_at = wanted.next_fire_after(now) if wanted.active else None
                wanted = wanted.model_copy(update={"next_run_at": next_run_at})
            if wanted == current:
                return current
            return wanted.model_copy(update={"updated_at": now})

        updated = await self._rewrite(name, change)
        logger.info("schedule updated", extra={"schedule": name})
        return updated

    async def pause(self, name: str) -> Schedule:
        """Stop firing: ``active`` false, no ``next_run_at``. A fire already claimed still
        submits its task. Idempotent. Raises :class:`ScheduleNotFoundError`."""
        return await self.update(name, active=False)

    async def resume(self, name: str) -> Schedule:
        """Fire again, from the next fire time after now: the slots missed while paused are not
        fired. Idempotent (an active schedule keeps its timetable). Raises
        :class:`ScheduleNotFoundError`."""
        return await self.update(name, active=True)

    async def delete(self, name: str) -> None:
        """Delete the schedule; tasks it fired are kept. Raises :class:`ScheduleNotFoundError`."""
        await self._repository.delete(name)
        logger.info("schedule deleted", extra={"schedule": name})
        self._notify()

    async def run_now(self, name: str) -> Task:
        """Fire one task now, with the schedule's type, params and priority, whether it is
        active or paused; ``next_run_at`` is not moved. ``last_run_at`` and ``last_task_id``
        record it. Each call fires a new task.

        Raises :class:`ScheduleNotFoundError`, or whatever :meth:`TaskService.submit` raises
        (its executor's params model may have changed since the schedule was validated).
        """
        schedule = await self._repository.get(name)
        task = await self._tasks.submit(
            schedule.type,
            schedule.params,
            priority=schedule.priority,
            created_by=schedule_task_creator(name),
        )
        # Deleted meanwhile: the task was fired all the same.
        with contextlib.suppress(ScheduleNotFoundError):
            await self._repository.record_run(name, now=self._clock.now(), task_id=task.id)
        logger.info("schedule run now", extra={"schedule": name, "task_id": task.id})
        return task

    # -- configuration --------------------------------------------------------------------------

    async def ensure(
        self,
        name: str,
        *,
        expression: str,
        task_type: str,
        params: Mapping[str, Any] | None = None,
        timezone: str = "UTC",
        priority: int | str = Priority.NORMAL,
        active: bool | None = None,
    ) -> Schedule:
        """Create schedule ``name`` as declared, or bring an existing one to the declaration
        (what start-up does with the ``[[schedules]]`` of the configuration). ``active`` None
        leaves an existing schedule paused or active as an operator left it (new ones start
        active). Nothing is written when it already matches. Safe when several instances start
        at once. Raises as :meth:`create`."""
        for _ in range(_WRITE_ROUNDS):
            try:
                await self._repository.get(name)
            except ScheduleNotFoundError:
                try:
                    return await self.create(
                        name,
                        expression=expression,
                        task_type=task_type,
                        params=params,
                        timezone=timezone,
                        priority=priority,
                        active=True if active is None else active,
                    )
                except ScheduleExistsError:
                    continue  # another instance created it first: bring it up to date
            try:
                return await self.update(
                    name,
                    expression=expression,
                    timezone=timezone,
                    task_type=task_type,
                    params=params or {},
                    priority=priority,
                    active=active,
                )
            except ScheduleNotFoundError:
                continue  # deleted meanwhile: create it again
        raise ScheduleConflictError(name, "it is being changed concurrently; try again")

    # -- internals ----------------------------------------------------------------------------

    def _notify(self) -> None:
        if self._notifier is None:
            return
        try:
            self._notifier.schedules_changed()
        except Exception:
            logger.warning("schedule notifier failed; the scheduler will catch up", exc_info=True)
