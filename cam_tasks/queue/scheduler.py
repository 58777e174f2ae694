"""The scheduler: fires each schedule's task at its fire times, once per fire time, cluster-wide.

Every instance runs one. It sleeps until the earliest ``next_run_at`` of the active schedules, a
local change (:meth:`Scheduler.schedules_changed`), or at most ``poll_interval_s`` (how it notices
schedules changed on other instances), then makes one *pass*:

1. **Finish pending fires**: a schedule whose ``firing_at`` is set had a fire time claimed whose
   task is not recorded yet (its claimer crashed, or the submit failed for a passing reason).
   Submit its task again — with the same idempotency key, so it exists at most once — and
   record it.
2. **Fire due schedules**: for each active schedule with ``next_run_at = T <= now``, claim the
   slot ``T`` with one conditional update on ``{name, active, revision, next_run_at: T,
   firing_at: null}`` that sets ``next_run_at`` to the first fire time after now and
   ``firing_at = T``. Exactly one scheduler of the cluster wins it. The winner submits the task
   with idempotency key ``schedule:<name>:<T>`` and then clears ``firing_at`` and records
   ``last_task_id``.

Why exactly one task per (schedule, fire time):

- *at most one claim*: the claim matches ``next_run_at: T`` and moves it past ``T`` atomically, so
  of concurrent schedulers one wins and the others match nothing; a slot once passed is never
  due again (the next fire time is always computed after now);
- *at most one task*: every submit for the slot uses the key ``schedule:<name>:<T>``; the task
  store's unique index on keys turns a repeated submit (a retry, a crash recovery, two instances
  finishing the same pending fire) into a read of the existing task;
- *at least one task*: the claim records ``firing_at = T`` before anything is submitted, and no
  later slot can be claimed while it is set; so a crash between claim and submit leaves a
  marker that the next pass of any instance turns into the task.

The dedup of the last point lasts as long as the task store keeps the first task (its retention
after it finishes): a fire left pending for longer than that could fire twice.

Missed fire times (everything was down, or the database was unreachable): a due schedule fires
once, for the earliest missed slot, and continues from the first fire time after now — never once
per missed slot. With ``misfire="skip"``, a slot found more than ``misfire_grace_s`` late is
skipped instead (the schedule just moves on).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, Protocol

from cam_tasks.domain import (
    Clock,
    ConfigurationError,
    DatabaseUnavailableError,
    InvalidParamsError,
    Schedule,
    ScheduleNotFoundError,
    SystemClock,
    Task,
    UnknownTaskTypeError,
    fire_key,
    schedule_task_creator,
)
from cam_tasks.domain.lifecycle import Startable
from cam_tasks.executor import ExecutorRegistry
from cam_tasks.queue.wakeup import CloseOnce, Wakeup
from cam_tasks.repository.protocol import ScheduleRepository

__all__ = ["MisfirePolicy", "Scheduler", "SubmitTask"]

logger = logging.getLogger(__name__)

#: What a due schedule found late does: fire once (then continue after now), or skip the slot.
MisfirePolicy = Literal["fire_once", "skip"]

# Submit errors that a retry cannot fix: the fire is recorded as failed instead of kept pending.
_PERMANENT_SUBMIT_ERRORS = (UnknownTaskTypeError, InvalidParamsError)
# Claim attempts per due schedule and pass when a concurrent change keeps moving its revision.
_CLAIM_ROUNDS = 3


class SubmitTask(Protocol):
    """Submit one task; ``TaskService.submit`` is one (module.py wires it). Must be idempotent
    by ``idempotency_key``: a second call with the same key returns the first task."""

    async def __call__(
        self,
        task_type: str,
        params: Mapping[str, Any],
        *,
        priority: int,
        created_by: str,
        idempotency_key: str,
    ) -> Task: ...


class Scheduler(Startable):
    """Fires due schedules from a :class:`ScheduleRepository` through ``submit``.

    With ``registry``, only schedules of the task types registered there are fired (read at each
    pass): an instance without a type's executor leaves its schedules to instances that have one,
    as its dispatcher leaves their tasks.

    Use ``async with Scheduler(...)`` or ``await start()`` / ``await close()``; both are
    idempotent, and ``close()`` lets a pass in flight finish (a pass interrupted anyway leaves at
    most a pending fire, which any instance finishes later). :meth:`run_due` makes one pass by
    hand (tests, tools).

    Implements the service layer's ``ScheduleNotifier`` (``schedules_changed``).
    """

    def __init__(
        self,
        repository: ScheduleRepository,
        submit: SubmitTask,
        *,
        registry: ExecutorRegistry | None = None,
        clock: Clock | None = None,
        poll_interval_s: float = 5.0,
        misfire: MisfirePolicy = "fire_once",
        misfire_grace_s: float = 60.0,
        batch_size: int = 100,
    ) -> None:
        if poll_interval_s <= 0 or misfire_grace_s < 0 or batch_size < 1:
            raise ConfigurationError(
                "poll_interval_s must be > 0, misfire_grace_s >= 0 and batch_size >= 1"
            )
        if misfire not in ("fire_once", "skip"):
            raise ConfigurationError(f"misfire must be 'fire_once' or 'skip', not {misfire!r}")
        self._repository = repository
        self._submit = submit
        self._registry = registry
        self._clock = clock or SystemClock()
        self.poll_interval_s = poll_interval_s
        self.misfire: MisfirePolicy = misfire
        self.misfire_grace_s = misfire_grace_s
        self.batch_size = batch_size
        self._wake = Wakeup()
        self._started = False
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._closing = CloseOnce()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the loop; its first pass fires what is due (missed fire times included).
        Idempotent; a closed scheduler stays closed."""
        if self._started or self._closing.begun:
            return
        self._started = True
        self._loop_task = asyncio.create_task(self._loop(), name="cam_tasks:scheduler")
        logger.info("scheduler started", extra={"misfire": self.misfire})

    async def close(self) -> None:
        """Stop after the pass in flight. Safe to call more than once or concurrently."""
        await self._closing.run(self._stop)

    async def _stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            await self._loop_task
            logger.info("scheduler stopped")

    @property
    def running(self) -> bool:
        return self._started and not self._stopping

    # -- ScheduleNotifier ------------------------------------------------------------------

    def schedules_changed(self) -> None:
        """Wake the loop: a schedule was created or changed in this process."""
        self._wake.set()

    # -- the loop ----------------------------------------------------------------------------

    async def _loop(self) -> None:
        while not self._stopping:
            # Cleared before the pass, so a change announced during it is not lost.
            self._wake.clear()
            started = self._clock.now()
            try:
                await self.run_due()
                await self._sleep_until_due(started)
            except DatabaseUnavailableError:
                logger.warning("database unavailable; schedules wait")
                await self._wake.sleep(self.poll_interval_s)
            except Exception:
                logger.exception("scheduler pass failed")
                await self._wake.sleep(self.poll_interval_s)

    async def _sleep_until_due(self, pass_started: datetime) -> None:
        next_run_at = await self._repository.next_run_at(types=self._types())
        timeout_s = self.poll_interval_s
        # A schedule still due since before the pass has a fire that keeps failing (or another
        # instance is mid-way through it): it is retried after a poll interval, not in a spin.
        if next_run_at is not None and next_run_at > pass_started:
            due_in_s = (next_run_at - self._clock.now()).total_seconds()
            timeout_s = min(timeout_s, max(due_in_s, 0.0))
        await self._wake.sleep(timeout_s)

    # -- one pass ----------------------------------------------------------------------------

    def _types(self) -> frozenset[str] | None:
        return None if self._registry is None else self._registry.types

    async def run_due(self) -> int:
        """One pass: finish pending fires, then fire (or skip) every due schedule. Returns how
        many fires recorded a task. DatabaseUnavailableError aborts the pass (nothing is lost:
        a claimed fire stays pending and is finished by a later pass)."""
        recorded = 0
        types = self._types()
        for schedule in await self._repository.firing(types=types, limit=self.batch_size):
            assert schedule.firing_at is not None
            recorded += await self._finish(schedule, schedule.firing_at)
        now = self._clock.now()
        for schedule in await self._repository.due(now=now, types=types, limit=self.batch_size):
            try:
                recorded += await self._fire_due(schedule, now)
            except DatabaseUnavailableError:
                raise
            except Exception:
                logger.exception("firing schedule failed", extra={"schedule": schedule.name})
        return recorded

    async def _fire_due(self, schedule: Schedule, now: datetime) -> int:
        """Claim (or skip) the due slot of ``schedule`` and fire it; 1 when a task was recorded."""
        for _ in range(_CLAIM_ROUNDS):
            fire_at = schedule.next_run_at
            if not schedule.active or fire_at is None or fire_at > now:
                return 0  # paused, or moved on (another instance fired it, or it was changed)
            if schedule.firing_at is not None:
                # A fire of an earlier slot is pending (claimed elsewhere a moment ago, or
                # left by a crash): finish it first; no later slot is claimed before.
                await self._finish(schedule, schedule.firing_at)
            else:
                next_run_at = schedule.next_fire_after(now)
                late_s = (now - fire_at).total_seconds()
                if self.misfire == "skip" and late_s > self.misfire_grace_s:
                    if await self._repository.skip_fire(
                        schedule.name,
                        revision=schedule.revision,
                        fire_at=fire_at,
                        next_run_at=next_run_at,
                    ):
                        logger.warning(
                            "schedule missed its fire time; skipped (misfire=skip)",
                            extra={"schedule": schedule.name, "fire_at": fire_at.isoformat()},
                        )
                        return 0
                else:
                    claimed = await self._repository.claim_fire(
                        schedule.name,
                        revision=schedule.revision,
                        fire_at=fire_at,
                        next_run_at=next_run_at,
                        now=now,
                    )
                    if claimed is not None:
                        if late_s > self.misfire_grace_s:
                            logger.warning(
                                "schedule missed its fire time; firing once now",
                                extra={"schedule": schedule.name, "fire_at": fire_at.isoformat()},
                            )
                        return await self._finish(claimed, fire_at)
            # Lost the claim, or finished an earlier fire: look again at what is stored now.
            try:
                schedule = await self._repository.get(schedule.name)
            except ScheduleNotFoundError:
                return 0  # deleted meanwhile
        return 0

    async def _finish(self, schedule: Schedule, fire_at: datetime) -> int:
        """Submit the task of the claimed slot ``fire_at`` (idempotently) and record it; 1 when
        this call recorded it. A passing failure leaves the fire pending for a later pass."""
        name = schedule.name
        key = fire_key(name, fire_at)
        try:
            task = await self._submit(
                schedule.type,
                schedule.params,
                priority=schedule.priority,
                created_by=schedule_task_creator(name),
                idempotency_key=key,
            )
        except _PERMANENT_SUBMIT_ERRORS as exc:
            # The executor is gone or its params model changed: retrying cannot help. Record the
            # failure on the schedule (visible in its view) and move on.
            logger.error(
                "schedule fire failed: %s",
                type(exc).__name__,
                extra={"schedule": name, "fire_at": fire_at.isoformat()},
            )
            error = f"{type(exc).__name__}: {exc}"
            await self._repository.finish_fire(name, fire_at=fire_at, task_id=None, error=error)
            return 0
        except DatabaseUnavailableError:
            raise
        except Exception:
            logger.warning(
                "schedule fire could not submit its task; it stays pending",
                exc_info=True,
                extra={"schedule": name, "fire_at": fire_at.isoformat()},
            )
            return 0
        if not await self._repository.finish_fire(
            name, fire_at=fire_at, task_id=task.id, error=None
        ):
            return 0  # another instance recorded the same task first
        logger.info(
            "schedule fired",
            extra={"schedule": name, "task_id": task.id, "fire_at": fire_at.isoformat()},
        )
        return 1
