"""What every benchmark group shares: rows, scales, percentiles, no-op executors, a runtime."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from cam_tasks import CamTasks
from cam_tasks.config import MongoSettings, QueueSettings, Settings
from cam_tasks.domain import TaskChange
from cam_tasks.executor import TaskContext

ROWS_PREFIX = "BENCH-ROWS "


@dataclass
class Row:
    """One line of the table.

    ``value``/``reference`` are numbers in ``unit``; ``ratio`` is value / reference unless
    given; ``met`` is None when the row has no target (or was skipped). ``ref_key`` names a
    row of another group whose value becomes this row's reference (filled in by the runner).
    """

    id: str
    what: str
    value: float | None
    unit: str
    reference: float | None = None
    ref_what: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""
    key: str = ""
    ref_key: str = ""
    check: str = ""  # "ratio>=X" | "ratio<=X" | "value<=X" | "value>=X": how `met` is judged
    extra: dict[str, Any] = field(default_factory=dict)

    def judge(self) -> Row:
        if self.ratio is None and self.value is not None and self.reference:
            self.ratio = self.value / self.reference
        if self.check and self.value is not None:
            subject, _, bound = self.check.partition(">=")
            op = ">="
            if not bound:
                subject, _, bound = self.check.partition("<=")
                op = "<="
            number = self.ratio if subject == "ratio" else self.value
            if number is not None:
                limit = float(bound)
                self.met = number >= limit if op == ">=" else number <= limit
        return self


def skipped(row_id: str, what: str, reason: str, target: str = "", key: str = "") -> Row:
    return Row(row_id, what, None, "", target=target, note=f"skipped: {reason}", key=key)


def emit(rows: Sequence[Row]) -> None:
    """Print the group's rows for the runner (one JSON line, after any human output)."""
    sys.stdout.flush()
    print(ROWS_PREFIX + json.dumps([asdict(row.judge()) for row in rows]), flush=True)


def group_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: proves it runs")
    parser.add_argument("--wire-uri", default=None, help="a MongoDB-wire server to use")
    parser.add_argument("--one-size", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args()


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) by the nearest-rank method."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open(f"/proc/{os.getpid()}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def settle() -> None:
    """Collect garbage before a measurement so it does not land inside one."""
    gc.collect()


def now_s() -> float:
    return time.perf_counter()


# -- executors ----------------------------------------------------------------------------------


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoopExecutor:
    """Does nothing: what is left is the framework's own cost per task."""

    type = "noop"
    params_model = NoParams

    async def execute(self, params: NoParams, ctx: TaskContext) -> None:
        return None


class ProbeExecutor:
    """Records when it started (``perf_counter``) into the future it is given, then returns."""

    type = "probe"
    params_model = NoParams

    def __init__(self) -> None:
        self.started: asyncio.Future[float] | None = None

    async def execute(self, params: NoParams, ctx: TaskContext) -> None:
        started = time.perf_counter()
        if self.started is not None and not self.started.done():
            self.started.set_result(started)


class ProgressExecutor:
    """Reports progress ``reports`` times spread evenly over ``duration_s``."""

    type = "progress"
    params_model = NoParams

    def __init__(self, reports: int = 1000, duration_s: float = 1.0) -> None:
        self.reports = reports
        self.duration_s = duration_s

    async def execute(self, params: NoParams, ctx: TaskContext) -> dict[str, int]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for index in range(1, self.reports + 1):
            ctx.report(100.0 * index / self.reports, f"step {index}/{self.reports}")
            delay = start + self.duration_s * index / self.reports - loop.time()
            await asyncio.sleep(max(0.0, delay))
        return {"reports": self.reports}


def bench_settings(*, uri: str = "memory://", workers: int = 10, **queue: Any) -> Settings:
    return Settings(
        mongo=MongoSettings(uri=uri),
        queue=QueueSettings(worker_count=workers, **queue),
    )


class Completions:
    """Counts finished tasks through the runtime's write listener; awaitable at a count."""

    def __init__(self, runtime: CamTasks) -> None:
        self.count = 0
        self._target = -1
        self._event = asyncio.Event()
        runtime.tasks.add_listener(self._on_change)

    def _on_change(self, change: TaskChange) -> None:
        if change.action in ("complete", "fail"):
            self.count += 1
            if self.count >= self._target >= 0:
                self._event.set()

    async def wait_for(self, total: int, timeout_s: float) -> None:
        self._target = total
        if self.count >= total:
            return
        self._event.clear()
        await asyncio.wait_for(self._event.wait(), timeout_s)


def run(main: Callable[[argparse.Namespace], Any], description: str) -> None:
    """Entry point of a group module: parse the arguments, run ``main`` and emit its rows."""
    args = group_args(description)
    # Only warnings and errors, like a host that logs at WARNING: the memory store's start-up
    # warning would otherwise be printed once per runtime built.
    logging.getLogger("cam_tasks").setLevel(logging.ERROR)
    rows = asyncio.run(main(args))
    emit(rows)
