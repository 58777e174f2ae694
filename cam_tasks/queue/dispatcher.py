"""The dispatcher: claims due tasks into a bounded asyncio queue and runs them on a worker pool.

One dispatcher runs per process. It owns four kinds of coroutine:

- the **feeder** claims due pending tasks (one atomic claim each) while this process holds fewer
  than ``worker_count + buffer_size`` of them, and otherwise sleeps until woken (a local submit,
  a finished task) or until the next due time, at most ``poll_interval_s`` (tasks submitted by
  other instances are found that way). Claims take the highest priority first, except every
  ``fair_claim_every``-th, which takes the oldest due task whatever its priority: that bounds
  how long any due task can wait (docs/scheduling.md, "Starvation");
- **workers** take claimed tasks from the queue and run them through :class:`TaskRunner`;
- the **lease keeper** renews the lease of every held task every ``heartbeat_interval_s`` and
  writes progress at most every ``progress_interval_s`` (one fenced update does both); it also
  learns of cancel requests made on other instances and of leases lost;
- the **rescuer** returns tasks whose owner stopped renewing (a dead process) to pending.

The queue only buffers claimed work: its size bounds memory, never what can be submitted; a
task that does not fit stays pending in the database.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ParamSpec, Protocol

from cam_tasks.domain import (
    Clock,
    ConfigurationError,
    DatabaseUnavailableError,
    Progress,
    RetryPolicy,
    SystemClock,
    Task,
    TaskLostError,
)
from cam_tasks.domain.lifecycle import Startable
from cam_tasks.executor import ExecutorRegistry, TaskContext
from cam_tasks.queue.held import HeldTask, StopReason
from cam_tasks.queue.runner import TaskRunner
from cam_tasks.queue.wakeup import CloseOnce, Wakeup
from cam_tasks.repository.protocol import ClaimOrder, TaskRepository

__all__ = ["Dispatcher", "DispatcherObserver", "DispatcherStats", "new_owner_id"]

logger = logging.getLogger(__name__)


def new_owner_id() -> str:
    """Unique per process start (not per host): a restarted process never inherits leases."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class DispatcherObserver(Protocol):
    """Told what the dispatcher does that no stored change shows (metrics listen here).

    Calls are synchronous, on the event loop, and must be cheap; one that raises is logged and
    ignored.
    """

    def claim_finished(self, duration_s: float, *, claimed: bool) -> None:
        """A claim round trip took ``duration_s`` (monotonic) and found a task or not."""
        ...

    def heartbeat_failed(self, reason: str) -> None:
        """A lease renewal failed: ``lost`` (the task was taken away),
        ``database_unavailable`` or ``error``."""
        ...


class _Unobserved:
    def claim_finished(self, duration_s: float, *, claimed: bool) -> None:
        pass

    def heartbeat_failed(self, reason: str) -> None:
        pass


_P = ParamSpec("_P")


@dataclass(frozen=True, slots=True)
class DispatcherStats:
    owner: str
    running: bool
    worker_count: int
    busy_workers: int
    buffer_size: int
    buffered: int
    held: int


class Dispatcher(Startable):
    """Runs registered task types from a :class:`TaskRepository` on ``worker_count`` workers.

    Use ``async with Dispatcher(...)`` or ``await start()`` / ``await close()``. ``close()`` is
    a graceful stop and idempotent: it stops claiming, hands tasks still in the buffer back at
    once, lets running tasks finish for ``shutdown_timeout_s``, then cancels the rest and hands
    them back as pending without spending their attempt.

    ``fair_claim_every`` (N): every N-th task this dispatcher claims is the oldest due one
    (``order="age"``) rather than the highest-priority one, which bounds every due task's wait
    (docs/scheduling.md); 0 claims by strict priority. ConfigurationError when negative.

    Implements the service layer's ``TaskNotifier`` (``task_submitted``, ``cancel_requested``).
    """

    def __init__(
        self,
        repository: TaskRepository,
        registry: ExecutorRegistry,
        *,
        clock: Clock | None = None,
        worker_count: int = 5,
        buffer_size: int = 10,
        lease_s: float = 30.0,
        heartbeat_interval_s: float = 5.0,
        progress_interval_s: float = 0.5,
        rescue_interval_s: float = 10.0,
        poll_interval_s: float = 1.0,
        shutdown_timeout_s: float = 30.0,
        fair_claim_every: int = 10,
        retry_policy: RetryPolicy | None = None,
        owner: str | None = None,
        rng: random.Random | None = None,
        observer: DispatcherObserver | None = None,
    ) -> None:
        if worker_count < 1 or buffer_size < 0:
            raise ConfigurationError("worker_count must be >= 1 and buffer_size >= 0")
        if not 0 < heartbeat_interval_s * 2 <= lease_s:
            raise ConfigurationError("lease_s must be at least twice heartbeat_interval_s")
        if min(progress_interval_s, rescue_interval_s, poll_interval_s) <= 0:
            raise ConfigurationError("intervals must be > 0")
        if shutdown_timeout_s < 0:
            raise ConfigurationError("shutdown_timeout_s must be >= 0")
        if fair_claim_every < 0:
            raise ConfigurationError("fair_claim_every must be >= 0 (0 disables it)")
        self._repository = repository
        self._registry = registry
        self._clock = clock or SystemClock()
        self.worker_count = worker_count
        self.buffer_size = buffer_size
        self.lease_s = lease_s
        self.heartbeat_interval_s = heartbeat_interval_s
        self.progress_interval_s = progress_interval_s
        self.rescue_interval_s = rescue_interval_s
        self.poll_interval_s = poll_interval_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self.fair_claim_every = fair_claim_every
        self.owner = owner or new_owner_id()
        self._runner = TaskRunner(
            repository,
            registry,
            clock=self._clock,
            retry_policy=retry_policy or RetryPolicy(),
            rng=rng,
        )
        self._observer: DispatcherObserver = observer or _Unobserved()
        self._types: frozenset[str] = frozenset()
        self._held: dict[str, HeldTask] = {}
        # At most worker_count + buffer_size tasks are held (claimed, unfinished); workers take
        # them at once while idle, so at most buffer_size wait while every worker is busy.
        self._queue: asyncio.Queue[HeldTask | None] = asyncio.Queue(
            maxsize=worker_count + buffer_size
        )
        self._wake = Wakeup()
        self._claims = 0  # tasks claimed so far: every fair_claim_every-th claim is by age
        self._busy = 0
        self._started = False
        self._stopping = False
        self._closing = CloseOnce()
        self._feeder: asyncio.Task[None] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._background: list[asyncio.Task[None]] = []

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start claiming and running. Rescues expired leases once first (tasks a crashed
        process left running)."""
        if self._started:
            return
        self._started = True
        self._types = self._registry.types
        await self._rescue_once()
        self._feeder = self._spawn(self._feed(), "feeder")
        self._workers = [self._spawn(self._work(), f"worker-{i}") for i in range(self.worker_count)]
        self._background = [
            self._spawn(self._keep_leases(), "lease-keeper"),
            self._spawn(self._rescue(), "rescuer"),
        ]
        logger.info(
            "dispatcher started",
            extra={"owner": self.owner, "workers": self.worker_count, "types": sorted(self._types)},
        )

    async def close(self) -> None:
        """Graceful stop (see the class docstring). Safe to call more than once or concurrently."""
        if self._started:
            await self._closing.run(self._stop)

    async def _stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._feeder is not None:
            await self._feeder  # finishes a claim in flight, then exits: nothing claimed after
        # Tasks still in the buffer never started: hand them back now.
        while not self._queue.empty():
            held = self._queue.get_nowait()
            if held is not None:
                held.stop(StopReason.SHUTDOWN)
                await self._runner.run(held)
                self._held.pop(held.task.id, None)
        running = [h.execution for h in self._held.values() if h.execution and not h.finished]
        if running:
            logger.info(
                "waiting up to %.1f s for %d running task(s)", self.shutdown_timeout_s, len(running)
            )
            await asyncio.wait(running, timeout=self.shutdown_timeout_s)
        for held in list(self._held.values()):
            if not held.finished:
                held.stop(StopReason.SHUTDOWN)
        for _ in self._workers:
            self._queue.put_nowait(None)
        await asyncio.gather(*self._workers)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        logger.info("dispatcher stopped", extra={"owner": self.owner})

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        return asyncio.create_task(coro, name=f"cam_tasks:{name}")

    # -- TaskNotifier ------------------------------------------------------------------------

    def task_submitted(self, task: Task) -> None:
        """Wake the feeder for a task submitted in this process."""
        if task.type in self._types:
            self._wake.set()

    def cancel_requested(self, task_id: str) -> None:
        """Cancel ``task_id`` at once if this process holds it (others learn by heartbeat)."""
        held = self._held.get(task_id)
        if held is not None and not held.finished:
            held.stop(StopReason.CANCEL)

    # -- observation -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._started and not self._stopping

    def stats(self) -> DispatcherStats:
        return DispatcherStats(
            owner=self.owner,
            running=self.running,
            worker_count=self.worker_count,
            busy_workers=self._busy,
            buffer_size=self.buffer_size,
            buffered=self._queue.qsize(),
            held=len(self._held),
        )

    # -- feeder ----------------------------------------------------------------------------

    @property
    def _capacity(self) -> int:
        return self.worker_count + self.buffer_size

    async def _feed(self) -> None:
        while not self._stopping:
            # Clear before looking, so a wake-up that arrives during the claim is not lost.
            self._wake.clear()
            if len(self._held) >= self._capacity:
                await self._wake.wait()
                continue
            try:
                started = time.perf_counter()
                task = await self._repository.claim(
                    types=self._types,
                    owner=self.owner,
                    now=self._clock.now(),
                    lease_s=self.lease_s,
                    order=self._next_order(),
                )
                duration_s = time.perf_counter() - started
                self._observe(self._observer.claim_finished, duration_s, claimed=task is not None)
                if task is None:
                    await self._sleep_until_due()
                    continue
            except DatabaseUnavailableError:
                logger.warning("database unavailable; claim paused")
                await self._wake.sleep(self.poll_interval_s)
                continue
            except Exception:
                logger.exception("claim failed")
                await self._wake.sleep(self.poll_interval_s)
                continue
            self._claims += 1
            self._hold(task)

    def _next_order(self) -> ClaimOrder:
        """``age`` for claims number N, 2N, 3N… of this dispatcher (N = ``fair_claim_every``).

        Only claims that took a task count: a claim that finds nothing due, in either order,
        leaves the turn where it was. So among any N consecutive claims one is by age, and a
        due task with k tasks older than it is claimed within N * (k + 1) claims.
        """
        every = self.fair_claim_every
        return "age" if every and (self._claims + 1) % every == 0 else "priority"

    def _hold(self, task: Task) -> None:
        assert task.lease_until is not None
        assert task.started_at is not None
        held = HeldTask(
            task=task,
            lease_until=task.lease_until,
            last_renewal=task.started_at,
            context=TaskContext(
                task_id=task.id,
                task_type=task.type,
                attempt=task.attempts,
                max_attempts=task.max_attempts,
                run_at=task.run_at,
                project_id=task.project_id,
            ),
        )
        self._held[task.id] = held
        self._queue.put_nowait(held)  # never full: held tasks are capped at workers + buffer

    async def _sleep_until_due(self) -> None:
        timeout_s = self.poll_interval_s
        try:
            next_run_at = await self._repository.next_run_at(types=self._types)
        except DatabaseUnavailableError:
            next_run_at = None
        if next_run_at is not None:
            due_in_s = (next_run_at - self._clock.now()).total_seconds()
            timeout_s = min(timeout_s, max(due_in_s, 0.0))
        await self._wake.sleep(timeout_s)

    # -- workers -----------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            held = await self._queue.get()
            if held is None:
                return
            self._busy += 1
            try:
                await self._runner.run(held)
            except Exception:  # the runner records outcomes itself; this is a bug guard
                logger.exception(
                    "worker failed to record an outcome", extra={"task_id": held.task.id}
                )
            finally:
                self._busy -= 1
                self._held.pop(held.task.id, None)
                self._wake.set()

    # -- leases --------------------------------------------------------------------------------

    async def _keep_leases(self) -> None:
        renew_every = timedelta(seconds=self.heartbeat_interval_s)
        while True:
            await asyncio.sleep(self.progress_interval_s)
            now = self._clock.now()
            due = [
                held
                for held in self._held.values()
                if not held.finished
                and (
                    held.context.has_new_progress
                    or held.last_renewal is None
                    or now - held.last_renewal >= renew_every
                )
            ]
            if due:
                await asyncio.gather(*(self._heartbeat(held) for held in due))

    async def _heartbeat(self, held: HeldTask) -> None:
        now = self._clock.now()
        progress = held.context.take_progress()
        try:
            cancel_requested = await self._renew(held, now, progress)
        except TaskLostError:
            if not held.finished:
                self._observe(self._observer.heartbeat_failed, "lost")
                held.stop(StopReason.LOST)
            return
        except Exception as exc:
            if progress is not None:
                held.context.restore_progress()
            margin = timedelta(seconds=min(self.heartbeat_interval_s, self.lease_s / 4))
            unavailable = isinstance(exc, DatabaseUnavailableError)
            reason = "database_unavailable" if unavailable else "error"
            self._observe(self._observer.heartbeat_failed, reason)
            if unavailable:
                logger.warning(
                    "heartbeat failed: database unavailable", extra={"task_id": held.task.id}
                )
            else:
                logger.exception("heartbeat failed", extra={"task_id": held.task.id})
            if self._clock.now() >= held.lease_until - margin and not held.finished:
                # We can no longer prove we own it: stop rather than run unowned work.
                logger.error(
                    "lease about to expire unrenewed; stopping task",
                    extra={"task_id": held.task.id},
                )
                held.stop(StopReason.LOST)
            return
        held.lease_until = now + timedelta(seconds=self.lease_s)
        held.last_renewal = now
        if cancel_requested and not held.finished:
            held.stop(StopReason.CANCEL)

    async def _renew(self, held: HeldTask, now: datetime, progress: Progress | None) -> bool:
        """One fenced heartbeat, given until the moment the task must be stopped unrenewed
        (``lease_until`` less the stopping margin, and at least half that margin).

        A database that stops answering without closing the connection (a network black
        hole, a paused server) would otherwise hold the renewal, and the task would run on
        past its lease, unowned. A merely slow answer still renews while the lease is safe.
        """
        margin = timedelta(seconds=min(self.heartbeat_interval_s, self.lease_s / 4))
        wait_s = max((held.lease_until - margin - now).total_seconds(), margin.total_seconds() / 2)
        try:
            async with asyncio.timeout(wait_s):
                return await self._repository.heartbeat(
                    held.lease, now=now, lease_s=self.lease_s, progress=progress
                )
        except TimeoutError:
            raise DatabaseUnavailableError(f"heartbeat unanswered after {wait_s:.2f} s") from None

    def _observe(self, notify: Callable[_P, None], *args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            notify(*args, **kwargs)
        except Exception:  # an observer must never stop the dispatcher
            logger.exception("dispatcher observer failed")

    # -- rescue ----------------------------------------------------------------------------

    async def _rescue(self) -> None:
        while True:
            await asyncio.sleep(self.rescue_interval_s)
            await self._rescue_once()

    async def _rescue_once(self) -> None:
        try:
            rescued = await self._repository.rescue_expired(now=self._clock.now())
        except DatabaseUnavailableError:
            logger.warning("rescue skipped: database unavailable")
            return
        except Exception:
            logger.exception("rescue failed")
            return
        for task in rescued:
            logger.warning(
                "rescued task from an expired lease -> %s",
                task.status.value,
                extra={"task_id": task.id, "type": task.type, "attempt": task.attempts},
            )
        if rescued:
            self._wake.set()
