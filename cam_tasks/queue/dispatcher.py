"""The dispatcher: claims due tasks for free worker slots, queue by queue, and runs them.

One dispatcher runs per process. It serves named queues, each with ``concurrency`` worker
slots of its own, so a busy queue never starves another; priorities order tasks within a queue.
It owns four kinds of coroutine:

- the **feeder** claims a due pending task for each free slot of each queue this process serves
  (not paused in the store), one atomic claim each, and hands it to an idle worker of that queue
  at once: a task is ``running`` only while its executor runs (``started_at`` is its start), and
  a task that does not fit waits ``pending`` in the database. Otherwise it sleeps until woken (a
  local submit, a finished task) or until the next due time, at most ``poll_interval_s`` (tasks
  submitted by other instances are found that way). Claims take the highest priority first,
  except every ``fair_claim_every``-th of a queue, which takes the oldest due task whatever its
  priority: that bounds how long any due task can wait (docs/scheduling.md, "Starvation").
  A task with a **concurrency key** under a limit runs only with a slot of that key
  (:class:`~cam_tasks.repository.KeySlotRepository`, shared by every instance): claims pass
  over keys that are full, and the slot is freed when the attempt ends, is handed back, or its
  owner's lease is rescued;
- **workers** (``concurrency`` per queue) run the tasks handed to them through
  :class:`TaskRunner`;
- the **lease keeper** renews the lease of every held task every ``heartbeat_interval_s`` and
  writes progress at most every ``progress_interval_s`` (one fenced update does both); it also
  learns of cancel requests made on other instances and of leases lost;
- the **rescuer** returns tasks whose owner stopped renewing (a dead process) to pending, and
  frees their key slots.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ParamSpec, Protocol

from cam_tasks.domain import (
    DEFAULT_QUEUE,
    Clock,
    ConfigurationError,
    DatabaseUnavailableError,
    Lease,
    Progress,
    RetryPolicy,
    SystemClock,
    Task,
    TaskLostError,
    TaskNotFoundError,
    TaskStatus,
)
from cam_tasks.domain.lifecycle import Startable
from cam_tasks.executor import ExecutorRegistry, TaskContext
from cam_tasks.queue.held import HeldTask, StopReason
from cam_tasks.queue.outcomes import CompletionWriter
from cam_tasks.queue.runner import TaskRunner
from cam_tasks.queue.wakeup import CloseOnce, Wakeup
from cam_tasks.repository.protocol import ClaimOrder, KeySlotRepository, TaskRepository
from cam_tasks.tracing import TaskTracer

__all__ = [
    "Dispatcher",
    "DispatcherObserver",
    "DispatcherStats",
    "KeyLimit",
    "QueueLoad",
    "new_owner_id",
]

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
class QueueLoad:
    """One queue of this process: its slots and how many are busy."""

    name: str
    concurrency: int
    busy: int


@dataclass(frozen=True, slots=True)
class DispatcherStats:
    owner: str
    running: bool
    worker_count: int
    busy_workers: int
    #: Always 0 since 0.2: tasks are claimed only for a free worker slot (no claimed task waits
    #: in a buffer); kept so readers of 0.1's figures keep working.
    buffer_size: int
    buffered: int
    held: int
    queues: tuple[QueueLoad, ...] = ()


class _Lane:
    """One queue served by this process: its worker slots and the hand-off to its workers."""

    __slots__ = ("claims", "concurrency", "held", "inbox", "name")

    def __init__(self, name: str, concurrency: int) -> None:
        self.name = name
        self.concurrency = concurrency
        self.held = 0  # claimed and not finished: at most `concurrency`
        self.claims = 0  # tasks claimed so far: every fair_claim_every-th is by age
        # Unbounded but never longer than `concurrency`: a task is put here only for a free
        # slot, and a worker of the lane is idle whenever a slot is free.
        self.inbox: asyncio.Queue[HeldTask | None] = asyncio.Queue()

    @property
    def free(self) -> int:
        return self.concurrency - self.held


#: A function naming the limit of a concurrency key (None: no limit).
KeyLimit = Callable[[str], int | None]


class Dispatcher(Startable):
    """Runs registered task types from a :class:`TaskRepository`, serving ``queues`` (name ->
    concurrency: tasks of that queue this process runs at once; default: the ``default`` queue
    with ``worker_count``).

    Use ``async with Dispatcher(...)`` or ``await start()`` / ``await close()``. ``close()`` is
    a graceful stop and idempotent: it stops claiming, lets running tasks finish for
    ``shutdown_timeout_s``, then cancels the rest and hands them back as pending without
    spending their attempt (their key slots are freed at once).

    ``paused``: reads the queues paused cluster-wide (at most every ``poll_interval_s``);
    their tasks are not claimed here, running ones finish. ``key_slots`` and ``key_limit``:
    the shared slots of concurrency keys and each key's limit; without them keys are not
    limited. ``fair_claim_every`` (N): every N-th task claimed from a queue is its oldest due
    one (``order="age"``), which bounds every due task's wait (docs/scheduling.md); 0 claims
    by strict priority. ConfigurationError for impossible settings. ``buffer_size`` is
    ignored since 0.2 (no task waits claimed: claims are made only for a free slot).
    ``tracer``: spans of claims and executions (:mod:`cam_tasks.tracing`; default: none).

    Implements the service layer's ``TaskNotifier`` (``task_submitted``, ``cancel_requested``).
    """

    def __init__(
        self,
        repository: TaskRepository,
        registry: ExecutorRegistry,
        *,
        clock: Clock | None = None,
        queues: Mapping[str, int] | None = None,
        worker_count: int = 5,
        buffer_size: int = 0,
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
        paused: Callable[[], Awaitable[Collection[str]]] | None = None,
        key_slots: KeySlotRepository | None = None,
        key_limit: KeyLimit | None = None,
        tracer: TaskTracer | None = None,
    ) -> None:
        lanes = dict(queues) if queues is not None else {DEFAULT_QUEUE: worker_count}
        if not lanes or any(concurrency < 1 for concurrency in lanes.values()):
            raise ConfigurationError("a dispatcher serves at least one queue, each with >= 1 slot")
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
        if (key_slots is None) != (key_limit is None):
            raise ConfigurationError("key_slots and key_limit go together")
        self._repository = repository
        self._registry = registry
        self._clock = clock or SystemClock()
        self._lanes = {name: _Lane(name, concurrency) for name, concurrency in lanes.items()}
        self.worker_count = sum(lanes.values())
        self.buffer_size = 0
        self.lease_s = lease_s
        self.heartbeat_interval_s = heartbeat_interval_s
        self.progress_interval_s = progress_interval_s
        self.rescue_interval_s = rescue_interval_s
        self.poll_interval_s = poll_interval_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self.fair_claim_every = fair_claim_every
        self.owner = owner or new_owner_id()
        self._tracer = tracer or TaskTracer()
        self._completions = CompletionWriter(repository)
        self._runner = TaskRunner(
            repository,
            registry,
            completions=self._completions,
            clock=self._clock,
            retry_policy=retry_policy or RetryPolicy(),
            rng=rng,
            tracer=self._tracer,
        )
        self._observer: DispatcherObserver = observer or _Unobserved()
        self._read_paused = paused
        self._paused: frozenset[str] = frozenset()
        self._paused_read_at: float | None = None
        self._key_slots = key_slots
        #: Slots held per key when the current feeder pass began (plus those it took since).
        self._key_held: dict[str, int] = {}
        self._key_limit = key_limit
        self._types: frozenset[str] = frozenset()
        self._held: dict[str, HeldTask] = {}
        self._wake = Wakeup()
        self._busy = 0
        self._started = False
        self._stopping = False
        self._closing = CloseOnce()
        self._feeder: asyncio.Task[None] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._background: list[asyncio.Task[None]] = []

    @property
    def queues(self) -> dict[str, int]:
        """The queues this process serves and their concurrency."""
        return {name: lane.concurrency for name, lane in self._lanes.items()}

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
        self._workers = [
            self._spawn(self._work(lane), f"worker-{lane.name}-{i}")
            for lane in self._lanes.values()
            for i in range(lane.concurrency)
        ]
        self._background = [
            self._spawn(self._keep_leases(), "lease-keeper"),
            self._spawn(self._rescue(), "rescuer"),
        ]
        logger.info(
            "dispatcher started",
            extra={
                "owner": self.owner,
                "queues": self.queues,
                "types": sorted(self._types),
            },
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
        running = [h.execution for h in self._held.values() if h.execution and not h.finished]
        if running:
            logger.info(
                "waiting up to %.1f s for %d running task(s)", self.shutdown_timeout_s, len(running)
            )
            await asyncio.wait(running, timeout=self.shutdown_timeout_s)
        for held in list(self._held.values()):
            if not held.finished:
                held.stop(StopReason.SHUTDOWN)
        for lane in self._lanes.values():
            for _ in range(lane.concurrency):
                lane.inbox.put_nowait(None)
        await asyncio.gather(*self._workers)  # each has its outcome written, or gave up
        await self._completions.close()
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        logger.info("dispatcher stopped", extra={"owner": self.owner})

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        return asyncio.create_task(coro, name=f"cam_tasks:{name}")

    # -- TaskNotifier ------------------------------------------------------------------------

    def task_submitted(self, task: Task) -> None:
        """Wake the feeder for a task submitted in this process."""
        if task.type in self._types and task.queue in self._lanes:
            self._wake.set()

    def queues_changed(self) -> None:
        """Read the paused queues again before the next claim (a pause or resume was just
        stored by this process)."""
        self._paused_read_at = None
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
            buffer_size=0,
            buffered=0,
            held=len(self._held),
            queues=tuple(
                QueueLoad(lane.name, lane.concurrency, lane.held) for lane in self._lanes.values()
            ),
        )

    # -- feeder ----------------------------------------------------------------------------

    async def _feed(self) -> None:
        while not self._stopping:
            # Clear before looking, so a wake-up that arrives during the pass is not lost.
            self._wake.clear()
            try:
                claimed, saturated, open_queues = await self._feed_once()
            except DatabaseUnavailableError:
                logger.warning("database unavailable; claim paused")
                await self._wake.sleep(self.poll_interval_s)
                continue
            except Exception:
                logger.exception("claim failed")
                await self._wake.sleep(self.poll_interval_s)
                continue
            if claimed:
                # More may be due: look again at once, once the workers just handed a task have
                # started it (a pass that finds nothing would only delay them).
                await asyncio.sleep(0)
                continue
            if saturated:
                # Every served queue is busy: a finished task wakes us; the poll bounds how long
                # a pause or resume decided elsewhere takes to be seen.
                await self._wake.sleep(self.poll_interval_s)
            else:
                await self._sleep_until_due(open_queues)

    async def _feed_once(self) -> tuple[int, bool, list[str]]:
        """One pass over the served queues: claim a task for every free slot of every queue
        that is not paused. Returns (tasks claimed, whether every open queue is full, the open
        queues)."""
        paused = await self._paused_queues()
        lanes = [lane for lane in self._lanes.values() if lane.name not in paused]
        full_keys = await self._full_keys() if any(lane.free for lane in lanes) else set()
        claimed = 0
        for lane in lanes:
            while lane.free and not self._stopping:
                tasks, exhausted = await self._claim(lane, full_keys)
                claimed += len(tasks)
                for task in tasks:
                    self._hold(lane, task)
                if exhausted:  # the store had no more: asking again would find nothing
                    break
        saturated = bool(lanes) and all(not lane.free for lane in lanes)
        return claimed, saturated, [lane.name for lane in lanes]

    async def _paused_queues(self) -> frozenset[str]:
        """The queues paused cluster-wide, read at most every ``poll_interval_s``."""
        if self._read_paused is None:
            return frozenset()
        now = time.monotonic()
        if self._paused_read_at is None or now - self._paused_read_at >= self.poll_interval_s:
            self._paused = frozenset(await self._read_paused())
            self._paused_read_at = now
        return self._paused

    async def _full_keys(self) -> set[str]:
        """Concurrency keys with no free slot now (one read; none without key limits)."""
        if self._key_slots is None or self._key_limit is None:
            return set()
        limit_of = self._key_limit
        self._key_held = dict(await self._key_slots.held())
        return {
            key
            for key, count in self._key_held.items()
            if (limit := limit_of(key)) is not None and count >= limit
        }

    def _key_room(self, key: str) -> int | None:
        """How many more tasks of ``key`` may start, by the slots held when the pass began and
        those this pass took since (None: the key is not limited)."""
        limit = None if self._key_limit is None else self._key_limit(key)
        return None if limit is None else limit - self._key_held.get(key, 0)

    async def _claim(self, lane: _Lane, full_keys: set[str]) -> tuple[list[Task], bool]:
        """Tasks of ``lane`` for its free slots, in one claim (one round trip or two), each
        with a slot of its concurrency key when the key is limited; none when nothing is due
        (or every due task's key is full). And whether the store had fewer due tasks than were
        asked for (then no claim of this pass would find more).

        Fairness counts tasks: a batch stops short of the lane's age claim (see
        :meth:`_age_turn`), which is then claimed alone."""
        turn = self._age_turn(lane)
        order: ClaimOrder = "age" if turn == 1 else "priority"
        limit = 1 if turn == 1 else lane.free if turn is None else min(lane.free, turn - 1)
        while True:
            with self._tracer.claim(lane.name) as span:
                started = time.perf_counter()
                tasks = await self._repository.claim_many(
                    types=self._types,
                    owner=self.owner,
                    now=self._clock.now(),
                    lease_s=self.lease_s,
                    limit=limit,
                    order=order,
                    queue=lane.name,
                    exclude_keys=full_keys,
                    key_room=self._key_room if self._key_limit is not None else None,
                )
                duration_s = time.perf_counter() - started
                self._observe(self._observer.claim_finished, duration_s, claimed=bool(tasks))
                exhausted = len(tasks) < limit
                if not tasks:
                    return [], True
                kept: list[Task] = []
                refused: list[Task] = []
                slotted = await self._take_key_slots(tasks)
                for task, has_slot in zip(tasks, slotted, strict=True):
                    key = task.concurrency_key
                    if has_slot or (key not in full_keys and await self._retake_key_slot(task)):
                        kept.append(task)
                        if key is not None:
                            self._key_held[key] = self._key_held.get(key, 0) + 1
                    else:
                        # Its key filled up since the pass read the slots (another instance,
                        # or this batch): pass over the key for the rest of this pass.
                        assert key is not None
                        full_keys.add(key)
                        refused.append(task)
                lane.claims += len(kept)
                span.set_tasks(kept or refused)
                if not kept:
                    span.set_outcome("key_full")
            for task in refused:  # handed back untouched
                await self._repository.unclaim(task.lease, now=self._clock.now())
            if kept or not refused:
                return kept, exhausted

    def _age_turn(self, lane: _Lane) -> int | None:
        """Which of the lane's coming claims (1 = the next) is made by age, None when fairness
        is off: claims number N, 2N, 3N… of a queue (N = ``fair_claim_every``).

        Only claims that took a task count: a claim that finds nothing due, in either order,
        leaves the turn where it was. So among any N consecutive claims of a queue one is by
        age, and a due task with k tasks older than it is claimed within N * (k + 1) claims.
        """
        every = self.fair_claim_every
        return every - lane.claims % every if every else None

    async def _take_key_slots(self, tasks: list[Task]) -> list[bool]:
        """For each task, whether it may run now: its key is unlimited, or a slot of it was
        taken, all in one write where the store allows (a task refused here gets one more try
        by :meth:`_retake_key_slot`, which first frees the slots of stale holders)."""
        slots, limit_of = self._key_slots, self._key_limit
        answers = [True] * len(tasks)
        if slots is None or limit_of is None:
            return answers
        wanted: list[tuple[int, tuple[str, int, Lease]]] = []
        for index, task in enumerate(tasks):
            key = task.concurrency_key
            limit = None if key is None else limit_of(key)
            if key is not None and limit is not None:
                wanted.append((index, (key, limit, task.lease)))
        if wanted:
            taken = await slots.acquire_many([request for _, request in wanted])
            for (index, _), ok in zip(wanted, taken, strict=True):
                answers[index] = ok
        return answers

    async def _retake_key_slot(self, task: Task) -> bool:
        """For a task :meth:`_take_key_slots` found no slot for: True when freeing the slots of
        its key's stale holders (whose attempt no longer runs) lets it take one."""
        key, slots, limit_of = task.concurrency_key, self._key_slots, self._key_limit
        assert key is not None
        assert slots is not None
        assert limit_of is not None
        limit = limit_of(key)
        assert limit is not None
        return await self._evict_stale_holders(key) and await slots.acquire(
            key, limit=limit, holder=task.lease
        )

    async def _evict_stale_holders(self, key: str) -> bool:
        """Free the slots of ``key`` whose holder's attempt no longer runs (finished without
        releasing, or its process died and its lease expired). True when one was freed."""
        assert self._key_slots is not None
        now = self._clock.now()
        freed = False
        for holder in await self._key_slots.holders(key):
            try:
                task: Task | None = await self._repository.get(holder.task_id)
            except TaskNotFoundError:
                task = None
            if (
                task is None
                or task.status is not TaskStatus.RUNNING
                or task.owner != holder.owner
                or task.attempts != holder.attempt
                or (task.lease_until is not None and task.lease_until < now)
            ):
                await self._key_slots.release(key, holder)
                freed = True
        return freed

    async def _sweep_key_slots(self) -> None:
        """Free the slots of full keys whose holder's attempt no longer runs: a holder whose
        release was lost (its process died between finishing and freeing, or could not reach
        the store) would otherwise keep the key full. Claims pass over full keys, so this sweep,
        run with every rescue, is what reopens them."""
        for key in await self._full_keys():
            await self._evict_stale_holders(key)

    async def _release_key_slot(self, task: Task, holder: Lease) -> None:
        """Free ``holder``'s slot of ``task``'s key; a failure only delays it (the next claimer
        that finds the key full evicts holders whose attempt no longer runs)."""
        key = task.concurrency_key
        if key is None or self._key_slots is None:
            return
        try:
            await self._key_slots.release(key, holder)
        except Exception:
            logger.warning("key slot not freed", extra={"task_id": task.id}, exc_info=True)

    def _hold(self, lane: _Lane, task: Task) -> None:
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
        lane.held += 1
        lane.inbox.put_nowait(held)  # a worker of the lane is idle: it starts it at once

    async def _sleep_until_due(self, queues: list[str]) -> None:
        """Sleep until the next task of the open ``queues`` is due, a wake-up, or the poll
        interval. A task already due that the pass did not claim waits for its key to free up
        (a finished task wakes us) or for the next poll: never a spin."""
        timeout_s = self.poll_interval_s
        try:
            next_run_at = (
                await self._repository.next_run_at(types=self._types, queues=queues)
                if queues
                else None
            )
        except DatabaseUnavailableError:
            next_run_at = None
        if next_run_at is not None:
            due_in_s = (next_run_at - self._clock.now()).total_seconds()
            if due_in_s > 0:
                timeout_s = min(timeout_s, due_in_s)
        await self._wake.sleep(timeout_s)

    # -- workers -----------------------------------------------------------------------------

    async def _work(self, lane: _Lane) -> None:
        while True:
            held = await lane.inbox.get()
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
                lane.held -= 1
                self._held.pop(held.task.id, None)
                self._wake.set()
            await self._release_key_slot(held.task, held.lease)

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
            await self._sweep_key_slots()
        except DatabaseUnavailableError:
            logger.warning("key slot sweep skipped: database unavailable")
        except Exception:
            logger.exception("key slot sweep failed")
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
            if task.history:
                # The dead owner's slot of the task's key dies with its lease.
                record = task.history[-1]
                await self._release_key_slot(task, Lease(task.id, record.owner, record.attempt))
        if rescued:
            self._wake.set()
