"""B3 and B4: database commands per task, and tasks/s, over the wire (a MongoDB-wire server).

Every command the client sends while the tasks are submitted and run is counted by a PyMongo
``CommandListener``: the feeder's empty claims and idle look-ups, heartbeats and the rescuer
included; the start-up's index creation and topology probe are not. Three runs, each on a
database of its own:

- a backlog of N no-op tasks (the issue's 1,000) submitted one ``submit`` at a time by an
  API-only runtime, then run by a runtime with 10 workers started on it;
- the same backlog submitted with ``submit_many`` in batches of 100;
- one task reporting progress 1000 times over one second (heartbeat every 5 s, progress
  written at most every 0.5 s): how many progress writes reach the server.

B4 is the throughput of the first two runs (first submit to last completion), next to the same
runs of the code before the performance work (``benchmarks.baseline``) against the same server.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient, monitoring

from benchmarks.baseline import BaselineUnavailable, baseline_ref, measure_old, old_package
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
#: The issue's backlog for B3 and B4 (smoke runs use 50).
BACKLOG = 1000
WARMUP = 50
PROGRESS_INTERVAL_S = 0.5
HEARTBEAT_INTERVAL_S = 5.0


#: What a runtime sends once when it starts (index creation, the replica-set probe), not per task.
STARTUP_COMMANDS = frozenset({"createIndexes", "hello"})


class CommandCounter(monitoring.CommandListener):
    """Counts commands by kind while ``counting`` is True (start-up commands aside)."""

    def __init__(self) -> None:
        self.counting = False
        self.kinds: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.counting and event.command_name not in STARTUP_COMMANDS:
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


async def throughput(uri: str, n: int, *, batched: bool) -> tuple[float, Counter[str]]:
    """Tasks/s of a backlog of ``n`` no-op tasks, and the commands sent meanwhile by kind.

    An API-only runtime submits the backlog (one ``submit`` at a time, or ``submit_many`` in
    batches of 100); a runtime with 10 workers then starts on the same database and runs it.
    Timed from the first submit to the last completion written. This is also what
    ``benchmarks.baseline`` runs against the code before the performance work, so it uses
    only APIs that code has.
    """
    counter = CommandCounter()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        uri, event_listeners=[counter], tz_aware=True
    )
    database = client[f"bench_{uuid.uuid4().hex[:10]}"]
    settings = bench_settings(workers=WORKERS)
    try:
        submitter = CamTasks(settings, executors=[NoopExecutor()], database=database, workers=False)
        runner = CamTasks(settings, executors=[NoopExecutor()], database=database)
        done = Completions(runner)
        async with submitter:
            service: Any = submitter.service
            counter.counting = True
            start = time.perf_counter()
            if batched:
                from cam_tasks.service import TaskSubmission

                for first in range(0, n, BATCH):
                    await service.submit_many([TaskSubmission("noop")] * min(BATCH, n - first))
            else:
                for _ in range(n):
                    await service.submit("noop", {})
            async with runner:
                await done.wait_for(n, timeout_s=1800)
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


def _baseline(
    tree: Path | None, why_not: str, ref: str, uri: str, n: int, *, batched: bool
) -> tuple[float | None, str]:
    """B4's reference: the old code's tasks/s and what it is, or None and why it is missing."""
    if tree is None:
        return None, f"skipped: {why_not}"
    try:
        return measure_old(tree, uri, n, batched=batched), f"code at {ref}, same server"
    except BaselineUnavailable as exc:
        return None, f"skipped: {exc}"


async def main(args: argparse.Namespace) -> list[Row]:
    uri = args.wire_uri
    n = 50 if args.smoke else BACKLOG
    b3 = ((False, "submit()", "1.2"), (True, f"submit_many() x{BATCH}", "0.3"))
    if not uri:
        reason = "no wire server"
        return [
            *(
                skipped("B3", f"commands per task, {label}", reason, f"<= {b}")
                for _, label, b in b3
            ),
            skipped("B3", "progress writes, 1000 reports in 1 s", reason),
            skipped("B4", "no-op tasks/s over the wire", reason, ">= 3x"),
        ]
    from cam_tasks.service import TaskService

    has_batches = hasattr(TaskService, "submit_many")
    ref = baseline_ref()
    rows: list[Row] = []
    b4: list[Row] = []
    if not args.smoke:
        # A fresh server answers its first commands slower: warm it before the first figure,
        # so that neither the current code nor the baseline pays for it.
        await throughput(uri, WARMUP, batched=False)
    with contextlib.ExitStack() as stack:
        try:
            old_tree: Path | None = stack.enter_context(old_package(ref))
            why_not = ""
        except BaselineUnavailable as exc:
            old_tree, why_not = None, str(exc)
        for batched, label, bound in b3:
            if batched and not has_batches:
                rows.append(
                    skipped("B3", f"commands per task, {label}", "no submit_many", "<= 0.3")
                )
                continue
            rate, kinds = await throughput(uri, n, batched=batched)
            total = sum(kinds.values())
            rows.append(
                Row(
                    "B3",
                    f"commands per no-op task, {label}, backlog of {n}, {WORKERS} workers",
                    total / n,
                    "cmd/task",
                    target=f"<= {bound}",
                    check=f"value<={bound}",
                    note=_breakdown(kinds, n),
                )
            )
            old_rate, old_what = _baseline(old_tree, why_not, ref, uri, n, batched=batched)
            b4.append(
                Row(
                    "B4",
                    f"no-op tasks/s over the wire, {label}, backlog of {n}",
                    rate,
                    "tasks/s",
                    old_rate,
                    old_what,
                    target=">= 3x",
                    check="ratio>=3" if old_rate is not None else "",
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
    return rows + b4


if __name__ == "__main__":
    run(main, __doc__ or "")
