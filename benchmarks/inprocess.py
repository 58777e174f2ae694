"""B1 and B2: in-process throughput and idle latency on ``memory://``, next to taskiq's
in-memory broker and aiojobs (``benchmarks.peers``, the ``bench`` extra) and a raw
``asyncio.Queue``, all with the same N, the same 10 workers and this process's event loop.

B1: N no-op tasks submitted through ``TaskService`` (one ``submit`` at a time, then
``submit_many`` in batches of 100), timed from the first submit until the last completion is
written. The peers enqueue the same N one call at a time (neither has a batch call); the raw
reference puts N no-op coroutines through ``asyncio.Queue`` + 10 workers.

B2: with every worker idle, one submit at a time; latency from calling ``submit`` to the
executor's first line, p50/p99 over the samples; the peers from their enqueue call to the job
body's first line, over as many samples. Raw reference: ``put_nowait`` to a worker blocked in
``get``.

Each cam_tasks figure is printed three times: against taskiq (the target), aiojobs and the raw
queue (B1's stretch target, >= 0.1x).
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
from benchmarks.peers import MissingPeer, Peer, peers
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


def _compared(
    what: str,
    value: float,
    unit: str,
    *,
    row_id: str,
    peer_figures: dict[str, tuple[float | None, str]],
    raw: tuple[float, str],
    target: tuple[str, str],
    raw_target: tuple[str, str] = ("report", ""),
    key: str = "",
) -> list[Row]:
    """One cam_tasks figure against each peer, then against the raw queue.

    ``peer_figures``: peer name -> (its figure, or None when it is missing; what it is, or why
    it is missing). ``target``/``raw_target``: (what the table prints, how ``met`` is judged).
    The row against taskiq carries ``target``; the one against aiojobs only reports.
    """
    rows: list[Row] = []
    for name, (reference, ref_what) in peer_figures.items():
        judged = name == "taskiq"
        rows.append(
            Row(
                row_id,
                f"{what}, vs {name}",
                value,
                unit,
                reference,
                ref_what,
                target=target[0] if judged else "report",
                check=target[1] if judged and reference is not None else "",
                key=key if judged else "",
            )
        )
    rows.append(
        Row(
            row_id,
            f"{what}, vs asyncio.Queue",
            value,
            unit,
            raw[0],
            raw[1],
            target=raw_target[0],
            check=raw_target[1],
        )
    )
    return rows


def _figure(
    peer: Peer | MissingPeer, figures: dict[str, float], suffix: str = ""
) -> tuple[float | None, str]:
    if isinstance(peer, MissingPeer):
        return None, peer.reason
    return figures[peer.name], peer.label + suffix


async def main(args: argparse.Namespace) -> list[Row]:
    sizes = [200] if args.smoke else [10_000, 100_000]
    samples = 50 if args.smoke else 1000
    compared = peers(WORKERS)
    measured = [peer for peer in compared if isinstance(peer, Peer)]
    b1_target = (">= 1.0x taskiq", "ratio>=1.0")
    raw_target = (">= 0.1x (stretch)", "ratio>=0.1")
    rows: list[Row] = []
    for n in sizes:
        reference = await raw_queue_throughput(n)
        rates = {peer.name: await peer.throughput(n, WORKERS) for peer in measured}
        label = f"{n // 1000}k" if n >= 1000 else str(n)
        raw = (reference, f"asyncio.Queue + {WORKERS} workers")
        one = await cam_throughput(n, batched=False)
        rows += _compared(
            f"no-op tasks/s, N={label}, submit() one at a time",
            one,
            "tasks/s",
            row_id="B1",
            peer_figures={peer.name: _figure(peer, rates) for peer in compared},
            raw=raw,
            target=b1_target,
            raw_target=raw_target,
            key=f"B1.one.{n}",
        )
        if hasattr(TaskService, "submit_many"):
            batched = await cam_throughput(n, batched=True)
            rows += _compared(
                f"no-op tasks/s, N={label}, submit_many() batches of {BATCH}",
                batched,
                "tasks/s",
                row_id="B1",
                peer_figures={
                    peer.name: _figure(peer, rates, ", no batch call") for peer in compared
                },
                raw=raw,
                target=b1_target,
                raw_target=raw_target,
                key=f"B1.batch.{n}",
            )
        else:
            rows.append(skipped("B1", f"N={label}, batches", "no submit_many", key=f"B1.batch.{n}"))
    reference_latency = await raw_queue_latency(samples)
    peer_latency = {peer.name: await peer.latency(samples, WORKERS) for peer in measured}
    latency = await cam_latency(samples)
    for name, q, bound in (("p50", 0.5, "1.0"), ("p99", 0.99, "1.5")):
        rows += _compared(
            f"idle submit -> executor start, {name} ({samples} samples)",
            _us(percentile(latency, q)),
            "us",
            row_id="B2",
            peer_figures={
                peer.name: _figure(
                    peer, {p: _us(percentile(v, q)) for p, v in peer_latency.items()}
                )
                for peer in compared
            },
            raw=(_us(percentile(reference_latency, q)), "asyncio.Queue hand-off"),
            target=(f"<= {bound}x taskiq", f"ratio<={bound}"),
        )
    return rows


if __name__ == "__main__":
    run(main, __doc__ or "")
