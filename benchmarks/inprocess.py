"""B1 and B2: in-process throughput and idle latency on ``memory://``, next to a raw
``asyncio.Queue`` with the same number of workers.

B1: N no-op tasks submitted through ``TaskService`` (one ``submit`` at a time, then
``submit_many`` in batches of 100), timed from the first submit until the last completion is
written. Reference: the same N no-op coroutines through ``asyncio.Queue`` + 10 workers.

B2: with every worker idle, one submit at a time; latency from calling ``submit`` to the
executor's first line, p50/p99 over the samples. Reference: ``put_nowait`` to a worker
blocked in ``get``.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from benchmarks.common import (
    Completions,
    NoopExecutor,
    ProbeExecutor,
    Row,
    bench_settings,
    percentile,
    run,
    settle,
    skipped,
)
from cam_tasks import CamTasks
from cam_tasks.service import TaskService, TaskSubmission

WORKERS = 10
BATCH = 100


async def raw_queue_throughput(n: int, workers: int = WORKERS) -> float:
    """Tasks/s of N no-op coroutines through an asyncio.Queue and ``workers`` workers."""
    queue: asyncio.Queue[int] = asyncio.Queue()

    async def noop() -> None:
        return None

    async def worker() -> None:
        while True:
            await queue.get()
            await noop()
            queue.task_done()

    pool = [asyncio.create_task(worker()) for _ in range(workers)]
    await asyncio.sleep(0)
    settle()
    start = time.perf_counter()
    for index in range(n):
        await queue.put(index)
    await queue.join()
    elapsed = time.perf_counter() - start
    for task in pool:
        task.cancel()
    await asyncio.gather(*pool, return_exceptions=True)
    return n / elapsed


async def cam_throughput(n: int, *, batched: bool) -> float:
    """Tasks/s of N no-op tasks submitted through the service and run by 10 workers."""
    async with CamTasks(bench_settings(workers=WORKERS), executors=[NoopExecutor()]) as runtime:
        service = runtime.service
        done = Completions(runtime)
        settle()
        start = time.perf_counter()
        if batched:
            for first in range(0, n, BATCH):
                await service.submit_many([TaskSubmission("noop")] * min(BATCH, n - first))
                await asyncio.sleep(0)  # a caller awaiting a real store yields here
        else:
            for _ in range(n):
                await service.submit("noop", {})
        await done.wait_for(n, timeout_s=600)
        elapsed = time.perf_counter() - start
    return n / elapsed


async def raw_queue_latency(samples: int) -> list[float]:
    queue: asyncio.Queue[float] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    started: asyncio.Future[float] = loop.create_future()

    async def worker() -> None:
        nonlocal started
        while True:
            await queue.get()
            now = time.perf_counter()
            if not started.done():
                started.set_result(now)

    pool = [asyncio.create_task(worker()) for _ in range(WORKERS)]
    latencies: list[float] = []
    for _ in range(samples):
        await asyncio.sleep(0.002)  # every worker idle again
        started = loop.create_future()
        t0 = time.perf_counter()
        queue.put_nowait(t0)
        latencies.append(await started - t0)
    for task in pool:
        task.cancel()
    await asyncio.gather(*pool, return_exceptions=True)
    return latencies


async def cam_latency(samples: int) -> list[float]:
    probe = ProbeExecutor()
    loop = asyncio.get_running_loop()
    async with CamTasks(bench_settings(workers=WORKERS), executors=[probe]) as runtime:
        done = Completions(runtime)
        latencies: list[float] = []
        for index in range(samples):
            await asyncio.sleep(0.002)  # the feeder is asleep and every worker idle
            probe.started = loop.create_future()
            t0 = time.perf_counter()
            await runtime.service.submit("probe", {})
            latencies.append(await probe.started - t0)
            await done.wait_for(index + 1, timeout_s=30)
    return latencies


def _us(value: float) -> float:
    return value * 1e6


async def main(args: argparse.Namespace) -> list[Row]:
    sizes = [200] if args.smoke else [10_000, 100_000]
    samples = 50 if args.smoke else 1000
    rows: list[Row] = []
    for n in sizes:
        reference = await raw_queue_throughput(n)
        label = f"{n // 1000}k" if n >= 1000 else str(n)
        one = await cam_throughput(n, batched=False)
        rows.append(
            Row(
                "B1",
                f"no-op tasks/s, N={label}, submit() one at a time",
                one,
                "tasks/s",
                reference,
                "asyncio.Queue + 10 workers",
                target=">= 0.1x",
                check="ratio>=0.1",
                key=f"B1.one.{n}",
            )
        )
        if hasattr(TaskService, "submit_many"):
            batched = await cam_throughput(n, batched=True)
            rows.append(
                Row(
                    "B1",
                    f"no-op tasks/s, N={label}, submit_many() batches of {BATCH}",
                    batched,
                    "tasks/s",
                    reference,
                    "asyncio.Queue + 10 workers",
                    target=">= 0.1x",
                    check="ratio>=0.1",
                    key=f"B1.batch.{n}",
                )
            )
        else:
            rows.append(skipped("B1", f"N={label}, batches", "no submit_many", key=f"B1.batch.{n}"))
    reference_latency = await raw_queue_latency(samples)
    latency = await cam_latency(samples)
    for name, q, bound in (("p50", 0.5, 2.0), ("p99", 0.99, 3.0)):
        rows.append(
            Row(
                "B2",
                f"idle submit -> executor start, {name} ({samples} samples)",
                _us(percentile(latency, q)),
                "us",
                _us(percentile(reference_latency, q)),
                "asyncio.Queue hand-off",
                target=f"<= {bound:g}x",
                check=f"ratio<={bound}",
            )
        )
    return rows


if __name__ == "__main__":
    run(main, __doc__ or "")
