"""TaskWatcher: wait for a task to change, wherever the change was made.

News of a task comes from two places:

- **this process**: the composition root registers :meth:`TaskWatcher.on_change` with the
  :class:`~cam_tasks.repository.observed.ObservedTaskRepository`, so a write made here wakes the
  watchers of that task at once;
- **other instances**: their writes are not announced here, so every watched task is also read
  again every ``poll_interval_s``. That is the whole cross-instance mechanism: a point read by
  ``_id`` per watched task and interval, which every MongoDB-wire server serves. (A change stream
  would need a replica set and server support that SecantusDB and mongomock do not offer.)

One poller runs per *watched task*, not per client: a thousand pages following one task cost one
read per interval plus one per local write, and a task nobody watches costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Final, Protocol

from cam_tasks.domain import Task, TaskChange

__all__ = ["DEFAULT_WATCH_POLL_INTERVAL_S", "TaskReader", "TaskSubscription", "TaskWatcher"]

logger = logging.getLogger(__name__)

#: How often a watched task is read again to notice changes made by other instances.
DEFAULT_WATCH_POLL_INTERVAL_S: Final = 1.0


class TaskReader(Protocol):
    """Where the watcher reads tasks: a :class:`TaskRepository` or a :class:`TaskService`."""

    async def get(self, task_id: str) -> Task:
        """The task, or TaskNotFoundError (DatabaseUnavailableError when unreachable)."""
        ...


class _Watch:
    """Shared state of one watched task: its poller and the latest outcome it read.

    ``reads_started`` numbers the poller's reads; ``seq`` is the number of the read whose outcome
    is published in ``outcome``. ``published`` is set (and replaced) on every publication, so a
    waiter holding the old event never misses one.
    """

    __slots__ = ("outcome", "poller", "published", "reads_started", "seq", "subscribers", "wake")

    def __init__(self) -> None:
        self.subscribers = 0
        self.wake = asyncio.Event()
        self.reads_started = 0
        self.seq = 0
        self.outcome: Task | Exception | None = None
        self.published = asyncio.Event()
        self.poller: asyncio.Task[None] | None = None

    def publish(self, seq: int, outcome: Task | Exception) -> None:
        self.seq, self.outcome = seq, outcome
        published, self.published = self.published, asyncio.Event()
        published.set()


class TaskSubscription:
    """One client's view of a watched task; get it from :meth:`TaskWatcher.subscribe`."""

    def __init__(self, watcher: TaskWatcher, watch: _Watch) -> None:
        self._watcher = watcher
        self._watch = watch
        # The first state handed out must come from a read that started after subscribing.
        self._need = watch.reads_started + 1

    @property
    def closed(self) -> bool:
        """True once the watcher closed: :meth:`next` returns None at once from then on."""
        return self._watcher.closed

    async def next(self, *, timeout_s: float | None = None) -> Task | None:
        """The task as read after the state this subscription last returned (the first call:
        as read after subscribing). Consecutive results may be equal; states written between
        two reads are not seen (the store keeps only the latest).

        Returns None when ``timeout_s`` passes first or the watcher closes. Raises
        :class:`TaskNotFoundError` once the task is gone, :class:`DatabaseUnavailableError`
        when that read failed (the next call reads again). Safe to cancel.
        """
        watch = self._watch
        loop = asyncio.get_running_loop()
        deadline = math.inf if timeout_s is None else loop.time() + timeout_s
        while self.closed or watch.seq < self._need:
            if self.closed:
                return None
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            published = watch.published
            with suppress(TimeoutError):
                async with asyncio.timeout(None if math.isinf(remaining) else remaining):
                    await published.wait()
        self._need = watch.seq + 1
        outcome = watch.outcome
        if isinstance(outcome, Exception):
            raise outcome
        assert outcome is not None  # seq > 0 means something was published
        return outcome


class TaskWatcher:
    """Lets many coroutines wait for changes of tasks, locally announced or polled.

    Concurrency: for use from one event loop. :meth:`on_change` is synchronous and cheap, as a
    repository listener must be. Lifecycle: the watcher owns one poller task per watched task
    id, started by the first subscriber and cancelled with the last; :meth:`close` cancels them
    all, makes every waiter return, and is idempotent.
    """

    def __init__(
        self, reader: TaskReader, *, poll_interval_s: float = DEFAULT_WATCH_POLL_INTERVAL_S
    ) -> None:
        if not 0 < poll_interval_s < math.inf:
            raise ValueError("poll_interval_s must be a finite number > 0")
        self._reader = reader
        self.poll_interval_s = poll_interval_s
        self._watches: dict[str, _Watch] = {}
        self._pollers: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def watching(self, task_id: str) -> int:
        """How many subscriptions currently follow ``task_id``."""
        watch = self._watches.get(task_id)
        return 0 if watch is None else watch.subscribers

    def on_change(self, change: TaskChange) -> None:
        """Repository listener: a write of this process touched ``change.task_id``."""
        watch = self._watches.get(change.task_id)
        if watch is not None:
            watch.wake.set()

    @asynccontextmanager
    async def subscribe(self, task_id: str) -> AsyncIterator[TaskSubscription]:
        """Follow ``task_id`` for the duration of the block."""
        watch = self._watches.get(task_id)
        if watch is None:
            watch = self._watches[task_id] = _Watch()
        watch.subscribers += 1
        subscription = TaskSubscription(self, watch)
        if watch.poller is None and not self._closed:
            poller = asyncio.create_task(
                self._poll(task_id, watch), name=f"cam_tasks:watch:{task_id}"
            )
            watch.poller = poller
            self._pollers.add(poller)
            poller.add_done_callback(self._pollers.discard)
        else:
            watch.wake.set()  # a read that starts after this subscription, now
        try:
            yield subscription
        finally:
            watch.subscribers -= 1
            if watch.subscribers == 0:
                if self._watches.get(task_id) is watch:
                    del self._watches[task_id]
                if watch.poller is not None:
                    watch.poller.cancel()

    async def wait(self, task_id: str, *, until: Callable[[Task], bool], timeout_s: float) -> Task:
        """The task as soon as ``until(task)`` holds for a state read after this call began,
        or, when ``timeout_s`` passes first (or the watcher closes), the latest state read.

        Raises :class:`TaskNotFoundError` when the task does not exist or is deleted while
        waiting, :class:`DatabaseUnavailableError` when the store cannot be read.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        latest: Task | None = None
        async with self.subscribe(task_id) as subscription:
            while True:
                task = await subscription.next(timeout_s=max(0.0, deadline - loop.time()))
                if task is None:
                    break
                latest = task
                if until(task):
                    return task
        # Timed out or closed: answer with what is there now.
        return latest if latest is not None else await self._reader.get(task_id)

    async def close(self) -> None:
        """Stop every poller and release every waiter (they return None / the latest state)."""
        if self._closed:
            return
        self._closed = True
        for watch in self._watches.values():
            published, watch.published = watch.published, asyncio.Event()
            published.set()
        pollers = list(self._pollers)
        for poller in pollers:
            poller.cancel()
        await asyncio.gather(*pollers, return_exceptions=True)

    async def _poll(self, task_id: str, watch: _Watch) -> None:
        while not self._closed:
            watch.wake.clear()
            watch.reads_started += 1
            seq = watch.reads_started
            outcome: Task | Exception
            try:
                outcome = await self._reader.get(task_id)
            except Exception as exc:  # TaskNotFound / DatabaseUnavailable: the waiters' to raise
                outcome = exc
            watch.publish(seq, outcome)
            with suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval_s):
                    await watch.wake.wait()
