"""The peers of B1 and B2: taskiq's in-memory broker and aiojobs, under cam_tasks' harness.

Each peer runs the same no-op work as cam_tasks' rows, in the same process and event loop
(``benchmarks.common.run``), with the same N, the same 10 workers and the same number of
latency samples:

- throughput: enqueue N no-op tasks one call at a time (neither peer has a batch call), then
  time until all N have completed;
- idle latency: with every worker idle, from the enqueue call to the job body's first line.

taskiq: ``InMemoryBroker(max_async_tasks=10)`` with its in-memory result backend keeping every
result. Its ``kick`` starts each message in an asyncio task of its own, so ``max_async_tasks``
(which bounds brokers that listen) does not bound it: for no-op tasks, that never await, the
number of workers makes no difference. A task counts as completed once its result is stored
(``wait_all``), as a cam_tasks task once its outcome is written.

aiojobs: ``Scheduler(limit=10)``, every job spawned at once (pending jobs wait in its queue,
``pending_limit`` N so that spawning never waits); a job counts as completed when its body
returns (aiojobs keeps no outcome).

Both are optional, the ``bench`` extra (``pip install -e .[bench]``): without one, its rows say
so instead of a figure.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from benchmarks.common import settle

INSTALL_HINT = "pip install -e .[bench]"
#: How long one peer measurement may take before it is abandoned (never reached in practice).
TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Peer:
    """A framework measured next to cam_tasks; ``label`` names it (and its version) in the table."""

    name: str
    label: str
    throughput: Callable[[int, int], Awaitable[float]]
    latency: Callable[[int, int], Awaitable[list[float]]]


@dataclass(frozen=True)
class MissingPeer:
    """A peer whose package is not installed: its rows say why there is no figure."""

    name: str
    reason: str


# -- taskiq ------------------------------------------------------------------------------------


async def taskiq_throughput(n: int, workers: int) -> float:
    """Tasks/s of N no-op tasks kicked one ``kiq()`` at a time into an ``InMemoryBroker``."""
    from taskiq import InMemoryBroker

    broker = InMemoryBroker(max_async_tasks=workers, max_stored_results=-1)

    @broker.task
    async def noop() -> None:
        return None

    await broker.startup()
    try:
        settle()
        start = time.perf_counter()
        for _ in range(n):
            await noop.kiq()
        await asyncio.wait_for(broker.wait_all(), TIMEOUT_S)
        elapsed = time.perf_counter() - start
        stored = broker.result_backend.results
        failed = sum(1 for result in stored.values() if result.is_err)
        if len(stored) != n or failed:
            raise RuntimeError(f"taskiq stored {len(stored)} results of {n}, {failed} failed")
    finally:
        await broker.shutdown()
    return n / elapsed


async def taskiq_latency(samples: int, workers: int) -> list[float]:
    """Idle ``kiq()`` -> first line of the task, one sample at a time, every task finished."""
    from taskiq import InMemoryBroker

    broker = InMemoryBroker(max_async_tasks=workers, max_stored_results=-1)
    probe = _Probe()

    @broker.task
    async def started() -> None:
        probe.record()

    await broker.startup()
    try:
        latencies: list[float] = []
        for _ in range(samples):
            await asyncio.sleep(0.002)  # every worker idle, as in cam_tasks' samples
            future = probe.arm()
            t0 = time.perf_counter()
            await started.kiq()
            latencies.append(await asyncio.wait_for(future, TIMEOUT_S) - t0)
            await broker.wait_all()
    finally:
        await broker.shutdown()
    return latencies


# -- aiojobs -----------------------------------------------------------------------------------


async def aiojobs_throughput(n: int, workers: int) -> float:
    """Tasks/s of N no-op jobs spawned one ``spawn()`` at a time on ``Scheduler(limit=workers)``."""
    from aiojobs import Scheduler

    finished = asyncio.Event()
    done = 0

    async def noop() -> None:
        nonlocal done
        done += 1
        if done == n:
            finished.set()

    scheduler = Scheduler(limit=workers, pending_limit=n)
    try:
        settle()
        start = time.perf_counter()
        for _ in range(n):
            await scheduler.spawn(noop())
        await asyncio.wait_for(finished.wait(), TIMEOUT_S)
        elapsed = time.perf_counter() - start
    finally:
        await scheduler.close()
    return n / elapsed


async def aiojobs_latency(samples: int, workers: int) -> list[float]:
    """Idle ``spawn()`` -> first line of the job, one sample at a time, every job finished."""
    from aiojobs import Scheduler

    probe = _Probe()

    async def started() -> None:
        probe.record()

    scheduler = Scheduler(limit=workers)
    try:
        latencies: list[float] = []
        for _ in range(samples):
            await asyncio.sleep(0.002)  # every worker idle, as in cam_tasks' samples
            future = probe.arm()
            t0 = time.perf_counter()
            job = await scheduler.spawn(started())
            latencies.append(await asyncio.wait_for(future, TIMEOUT_S) - t0)
            await job.wait()
    finally:
        await scheduler.close()
    return latencies


class _Probe:
    """The moment (``perf_counter``) a job body started, handed to the sample waiting for it."""

    def __init__(self) -> None:
        self._future: asyncio.Future[float] | None = None

    def arm(self) -> asyncio.Future[float]:
        self._future = asyncio.get_running_loop().create_future()
        return self._future

    def record(self) -> None:
        now = time.perf_counter()
        if self._future is not None and not self._future.done():
            self._future.set_result(now)


# -- discovery ---------------------------------------------------------------------------------


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def peers(workers: int) -> list[Peer | MissingPeer]:
    """taskiq then aiojobs: each measurable, or missing with the install hint."""
    found: list[Peer | MissingPeer] = []
    for name, label, throughput, latency in (
        ("taskiq", "InMemoryBroker", taskiq_throughput, taskiq_latency),
        ("aiojobs", f"Scheduler(limit={workers})", aiojobs_throughput, aiojobs_latency),
    ):
        try:
            importlib.import_module(name)
        except ImportError:
            found.append(MissingPeer(name, f"skipped: {INSTALL_HINT}"))
            continue
        found.append(Peer(name, f"{name} {_version(name)} {label}", throughput, latency))
    return found
