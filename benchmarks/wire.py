"""B3 and B4: database commands per task, and tasks/s, over the wire (a MongoDB-wire server).

Every command the client sends while the tasks run is counted by a PyMongo ``CommandListener``:
the feeder's empty claims and idle look-ups, heartbeats and the rescuer included. Index
creation at start-up is not counted. Three runs on one database each:

- N no-op tasks submitted one ``submit`` at a time;
- N no-op tasks submitted with ``submit_many`` in batches of 100;
- one task reporting progress 1000 times over one second (heartbeat every 5 s, progress
  written at most every 0.5 s): how many progress writes reach the server.

B4 is the throughput of the first two runs, next to B1's on ``memory://`` (same mode).
"""

from __future__ import annotations

import argparse
import math
import time
import uuid
from collections import Counter
from typing import Any

from pymongo import AsyncMongoClient, monitoring

from benchmarks.common import (
    Completions,
    NoopExecutor,
    ProgressExecutor,
    Row,
    bench_settings,
    run,
    skipped,
)
from cam_tasks import CamTasks

WORKERS = 10
BATCH = 100
PROGRESS_INTERVAL_S = 0.5
HEARTBEAT_INTERVAL_S = 5.0


class CommandCounter(monitoring.CommandListener):
    """Counts commands by kind while ``counting`` is True."""

    def __init__(self) -> None:
        self.counting = False
        self.kinds: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.counting:
            self.kinds[_kind(event.command_name, event.command)] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    @property
    def total(self) -> int:
        return sum(self.kinds.values())


def _kind(name: str, command: Any) -> str:
    """The command name, with findAndModify split by what it writes."""
    if name != "findAndModify":
        return name
    fields = (command.get("update") or {}).get("$set", {})
    status = fields.get("status")
    if status == "running":
        return "claim"  # empty claims included
    if status is not None:
        return f"finish:{status}"
    if "progress" in fields:
        return "progress"
    if "lease_until" in fields:
        return "heartbeat"
    return "findAndModify"


def _breakdown(kinds: Counter[str], per: int) -> str:
    return ", ".join(f"{kind} {count / per:.2f}" for kind, count in kinds.most_common())


async def _run_noop(uri: str, n: int, *, batched: bool) -> tuple[float, Counter[str]]:
    counter = CommandCounter()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        uri, event_listeners=[counter], tz_aware=True
    )
    database = client[f"bench_{uuid.uuid4().hex[:10]}"]
    try:
        runtime = CamTasks(
            bench_settings(workers=WORKERS), executors=[NoopExecutor()], database=database
        )
        async with runtime:
            done = Completions(runtime)
            service: Any = runtime.service
            counter.counting = True
            start = time.perf_counter()
            if batched:
                from cam_tasks.service import TaskSubmission

                for first in range(0, n, BATCH):
                    await service.submit_many([TaskSubmission("noop")] * min(BATCH, n - first))
            else:
                for _ in range(n):
                    await service.submit("noop", {})
            await done.wait_for(n, timeout_s=600)
            elapsed = time.perf_counter() - start
            counter.counting = False
        return n / elapsed, counter.kinds
    finally:
        await client.drop_database(database.name)
        await client.close()


async def _run_progress(uri: str, reports: int) -> tuple[float, Counter[str]]:
    counter = CommandCounter()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        uri, event_listeners=[counter], tz_aware=True
    )
    database = client[f"bench_{uuid.uuid4().hex[:10]}"]
    try:
        settings = bench_settings(
            workers=WORKERS,
            progress_interval_s=PROGRESS_INTERVAL_S,
            heartbeat_interval_s=HEARTBEAT_INTERVAL_S,
        )
        executor = ProgressExecutor(reports=reports, duration_s=1.0)
        async with CamTasks(settings, executors=[executor], database=database) as runtime:
            done = Completions(runtime)
            counter.counting = True
            start = time.perf_counter()
            await runtime.service.submit("progress", {})
            await done.wait_for(1, timeout_s=60)
            elapsed = time.perf_counter() - start
            counter.counting = False
        return elapsed, counter.kinds
    finally:
        await client.drop_database(database.name)
        await client.close()


async def main(args: argparse.Namespace) -> list[Row]:
    uri = args.wire_uri
    n = 50 if args.smoke else 500
    if not uri:
        reason = "no wire server"
        return [
            skipped("B3", "commands per task, submit()", reason, "<= 4"),
            skipped("B3", f"commands per task, submit_many() x{BATCH}", reason, "<= 3"),
            skipped("B3", "progress writes, 1000 reports in 1 s", reason),
            skipped("B4", "no-op tasks/s over the wire", reason),
        ]
    from cam_tasks.service import TaskService

    has_batches = hasattr(TaskService, "submit_many")
    rows: list[Row] = []
    throughput: dict[str, float] = {}
    for batched, label, bound in ((False, "submit()", 4.0), (True, f"submit_many() x{BATCH}", 3.0)):
        if batched and not has_batches:
            rows.append(skipped("B3", f"commands per task, {label}", "no submit_many", "<= 3"))
            continue
        rate, kinds = await _run_noop(uri, n, batched=batched)
        total = sum(kinds.values())
        throughput[label] = rate
        rows.append(
            Row(
                "B3",
                f"commands per no-op task, {label}, N={n}",
                total / n,
                "cmd/task",
                target=f"<= {bound:g}",
                check=f"value<={bound}",
                note=_breakdown(kinds, n),
            )
        )
    reports = 100 if args.smoke else 1000
    elapsed, kinds = await _run_progress(uri, reports)
    progress_writes = kinds.get("progress", 0)
    intervals = math.ceil(elapsed / PROGRESS_INTERVAL_S)
    rows.append(
        Row(
            "B3",
            f"progress writes: {reports} reports over 1 s (written <= every "
            f"{PROGRESS_INTERVAL_S:g} s, heartbeat {HEARTBEAT_INTERVAL_S:g} s)",
            progress_writes,
            "writes",
            intervals,
            f"{elapsed:.2f} s / {PROGRESS_INTERVAL_S:g} s intervals",
            target="<= 1 per interval",
            check="ratio<=1",
            note=f"all commands of the task: {sum(kinds.values())} ({_breakdown(kinds, 1)})",
        )
    )
    for label, rate in throughput.items():
        mode = "batch" if "submit_many" in label else "one"
        rows.append(
            Row(
                "B4",
                f"no-op tasks/s over the wire, {label}, N={n}",
                rate,
                "tasks/s",
                ref_what=f"B1 memory://, {label}, N=10k",
                ref_key=f"B1.{mode}.10000",
                target="report",
            )
        )
    return rows


if __name__ == "__main__":
    run(main, __doc__ or "")
