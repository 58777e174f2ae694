"""B6: what a big memory store costs. For each size (1k and 1M tasks; each in a fresh process):

- build the store through the repository: the first half of the tasks are inserted, claimed and
  completed with a sync-like result (terminal tasks retained for 7 days, as by default); the
  second half are inserted pending; the build time is reported;
- RSS per retained terminal task: the process's resident memory grown by the terminal half,
  divided by its size (allocator overhead and every index entry included);
- claim: mean time of one claim among the pending half (rounds of 200 claims, each round
  released back untimed; the median round counts);
- list: ``GET /tasks?status=completed&limit=20`` through the API's own handler on a mocked
  request (routing, query parsing, the page, the views and their JSON), median of 500 calls.

The 1k figures are the reference: the 1M ones should cost no more than 1.5x.
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from benchmarks.common import NoopExecutor, Row, emit, group_args, rss_bytes
from cam_tasks import CamTasks
from cam_tasks.config import Settings, TaskSettings
from cam_tasks.domain import SystemClock, Task, new_task
from cam_tasks.repository import MemoryTaskRepository
from cam_tasks.web.auth import allow_anonymous

RETENTION_S = 7 * 24 * 3600.0
CHUNK = 10_000
CLAIMS_PER_ROUND = 200
ROUNDS = 5
LIST_CALLS = 500
PARAMS = {"provider": "aliyun", "account_id": "123", "asset_types": ["ecs", "rds"]}
RESULT = {
    "total_count": 31,
    "added_count": 31,
    "updated_count": 0,
    "unchanged_count": 0,
    "removed_count": 0,
}


def _new(clock: SystemClock, count: int) -> list[Task]:
    now = clock.now()
    return [new_task(task_type="noop", params=dict(PARAMS), now=now) for _ in range(count)]


async def _insert(repository: MemoryTaskRepository, tasks: list[Task]) -> None:
    insert_many = getattr(repository, "insert_many", None)
    if insert_many is not None:
        await insert_many(tasks)
    else:
        for task in tasks:
            await repository.insert(task)


async def _build(repository: MemoryTaskRepository, size: int) -> tuple[float, int, float]:
    """Returns (terminal build s, RSS grown by the terminal half in bytes, pending build s)."""
    clock = SystemClock()
    terminal = size // 2
    gc.collect()
    rss_before = rss_bytes()
    start = time.perf_counter()
    for first in range(0, terminal, CHUNK):
        count = min(CHUNK, terminal - first)
        await _insert(repository, _new(clock, count))
        now = clock.now()
        for _ in range(count):
            task = await repository.claim(types=("noop",), owner="bench", now=now, lease_s=30)
            assert task is not None
            await repository.complete(task.lease, now=now, result=dict(RESULT))
    terminal_s = time.perf_counter() - start
    gc.collect()
    grown = rss_bytes() - rss_before
    start = time.perf_counter()
    for first in range(0, size - terminal, CHUNK):
        await _insert(repository, _new(clock, min(CHUNK, size - terminal - first)))
    return terminal_s, grown, time.perf_counter() - start


async def _claim_cost(repository: MemoryTaskRepository) -> float:
    """Median seconds per claim over rounds of claims, each round released back untimed."""
    clock = SystemClock()
    per_claim: list[float] = []
    for _ in range(ROUNDS):
        now = clock.now() + timedelta(seconds=1)
        claimed = []
        gc.collect()
        start = time.perf_counter()
        for _ in range(CLAIMS_PER_ROUND):
            claimed.append(
                await repository.claim(types=("noop",), owner="bench", now=now, lease_s=30)
            )
        per_claim.append((time.perf_counter() - start) / CLAIMS_PER_ROUND)
        for task in claimed:
            assert task is not None
            await repository.release(task.lease, now=now)
    return statistics.median(per_claim)


async def _list_cost(app: web.Application) -> tuple[float, int]:
    """Median seconds of one list request through the API app (routing, middlewares, query
    parsing, the page, the views and their JSON); the page's body size."""
    app.freeze()
    timings: list[float] = []
    size = 0
    for _ in range(LIST_CALLS):
        request = make_mocked_request("GET", "/tasks?status=completed&limit=20", app=app)
        start = time.perf_counter()
        response = await app._handle(request)  # what the server calls for each request
        timings.append(time.perf_counter() - start)
        assert isinstance(response, web.Response), response
        assert response.status == 200, response.text
        size = len(response.body)  # type: ignore[arg-type]
    return statistics.median(timings), size


async def measure(size: int) -> dict[str, Any]:
    runtime = CamTasks(
        Settings(tasks=TaskSettings(retention_s=RETENTION_S)), executors=[NoopExecutor()]
    )
    repository = runtime.stores.tasks
    assert isinstance(repository, MemoryTaskRepository)
    terminal_s, grown, pending_s = await _build(repository, size)
    claim_s = await _claim_cost(repository)
    list_s, body = await _list_cost(runtime.create_api(allow_anonymous()))
    return {
        "size": size,
        "terminal_build_s": terminal_s,
        "pending_build_s": pending_s,
        "bytes_per_terminal": grown / (size // 2),
        "claim_s": claim_s,
        "list_s": list_s,
        "list_body_bytes": body,
    }


def _measure_in_child(size: int) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale", "--one-size", str(size)],
        check=True,
        capture_output=True,
        text=True,
        timeout=1800,
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def _label(size: int) -> str:
    return f"{size // 1_000_000}M" if size >= 1_000_000 else f"{size // 1000}k"


def rows_for(small: dict[str, Any], big: dict[str, Any]) -> list[Row]:
    big_label, small_label = _label(big["size"]), _label(small["size"])
    build = (
        f"build {big_label}: {big['terminal_build_s']:.1f} s for {big['size'] // 2} "
        f"insert+claim+complete, {big['pending_build_s']:.1f} s for {big['size'] // 2} inserts"
    )
    return [
        Row(
            "B6",
            f"claim, {big_label} tasks in the store",
            big["claim_s"] * 1e6,
            "us",
            small["claim_s"] * 1e6,
            f"{small_label} tasks",
            target="<= 1.5x",
            check="ratio<=1.5",
            note=build,
        ),
        Row(
            "B6",
            f"GET /tasks?status=completed&limit=20, {big_label} tasks",
            big["list_s"] * 1e6,
            "us",
            small["list_s"] * 1e6,
            f"{small_label} tasks",
            target="<= 1.5x",
            check="ratio<=1.5",
            note=f"handler on a mocked request, {big['list_body_bytes']} bytes a page",
        ),
        Row(
            "B6",
            f"RSS per retained terminal task ({big['size'] // 2} completed)",
            big["bytes_per_terminal"],
            "bytes",
            target="<= 1536 B",
            check="value<=1536",
            note="resident memory grown by the completed half / its size",
        ),
    ]


def main() -> None:
    args = group_args(__doc__ or "")
    if args.one_size:
        print(json.dumps(asyncio.run(measure(args.one_size))))
        return
    sizes = (1_000, 4_000) if args.smoke else (1_000, 1_000_000)
    small, big = (_measure_in_child(size) for size in sizes)
    emit(rows_for(small, big))


if __name__ == "__main__":
    main()
