"""The database stops answering.

In process: a store whose calls hang (a network black hole, a paused server) must not keep a
worker running unowned work past its lease, nor hold a stopping dispatcher forever.

Over the wire: a dedicated SecantusDB, on disk, is paused with SIGSTOP while an HTTP instance
and a worker process use it. The API answers 503 with the envelope meanwhile; once it is back
nothing is lost and every task completes.
"""

from __future__ import annotations

import asyncio
import builtins
import signal
import time
from collections.abc import AsyncIterator, Collection
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel
from pymongo import AsyncMongoClient

import cam_tasks
from cam_tasks.config import load_settings
from cam_tasks.domain import Lease, Progress, RetryPolicy, SystemClock, Task, TaskStatus, new_task
from cam_tasks.executor import ExecutorRegistry, TaskContext
from cam_tasks.queue import Dispatcher
from cam_tasks.repository import ClaimOrder, MemoryTaskRepository
from tests.crash.conftest import (
    Spawn,
    executions,
    find_secantusd,
    runs_per_task,
    statuses,
)
from tests.crash.worker_process import PROBE, ProbeExecutor
from tests.support.network import free_port
from tests.support.waiting import eventually

CLOCK = SystemClock()
API = "/api/v1/cam"

# -- in process: a store that hangs -------------------------------------------------------------


class BlackHoledRepository(MemoryTaskRepository):
    """A memory store whose worker-side calls get no answer between ``pause()`` and
    ``resume()``, like a paused server: they neither fail nor return until it resumes."""

    def __init__(self) -> None:
        super().__init__()
        self._answering = asyncio.Event()
        self._answering.set()

    def pause(self) -> None:
        self._answering.clear()

    def resume(self) -> None:
        self._answering.set()

    async def _maybe_hang(self) -> None:
        await self._answering.wait()

    async def heartbeat(
        self, lease: Lease, *, now: datetime, lease_s: float, progress: Progress | None
    ) -> bool:
        await self._maybe_hang()
        return await super().heartbeat(lease, now=now, lease_s=lease_s, progress=progress)

    async def complete(
        self, lease: Lease, *, now: datetime, result: Any, progress: Progress | None = None
    ) -> Task:
        await self._maybe_hang()
        return await super().complete(lease, now=now, result=result, progress=progress)

    async def claim(
        self,
        *,
        types: Collection[str],
        owner: str,
        now: datetime,
        lease_s: float,
        order: ClaimOrder = "priority",
        queue: str = "default",
        exclude_keys: Collection[str] = (),
    ) -> Task | None:
        await self._maybe_hang()
        return await super().claim(
            types=types,
            owner=owner,
            now=now,
            lease_s=lease_s,
            order=order,
            queue=queue,
            exclude_keys=exclude_keys,
        )

    async def rescue_expired(self, *, now: datetime, limit: int = 100) -> builtins.list[Task]:
        await self._maybe_hang()
        return await super().rescue_expired(now=now, limit=limit)


class NoParams(BaseModel):
    pass


class Blocking:
    """Runs until cancelled (recording when) or until ``release`` is set."""

    type = "blocking"
    params_model = NoParams

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled_at: datetime | None = None

    async def execute(self, params: NoParams, ctx: TaskContext) -> Any:
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled_at = CLOCK.now()
            raise
        return "done"


def dispatcher(repo: MemoryTaskRepository, executor: Blocking) -> Dispatcher:
    return Dispatcher(
        repo,
        ExecutorRegistry([executor]),
        worker_count=1,
        buffer_size=0,
        lease_s=1.0,
        heartbeat_interval_s=0.2,
        progress_interval_s=0.05,
        rescue_interval_s=0.1,
        poll_interval_s=0.05,
        shutdown_timeout_s=0.1,
        retry_policy=RetryPolicy(base_s=0.01, max_s=0.02),
    )


async def test_a_worker_whose_heartbeats_hang_stops_its_task_before_the_lease_runs_out() -> None:
    repo = BlackHoledRepository()
    executor = Blocking()
    task = await repo.insert(new_task(task_type="blocking", params={}, now=CLOCK.now()))
    async with dispatcher(repo, executor):
        await asyncio.wait_for(executor.started.wait(), 5)
        repo.pause()
        await eventually(lambda: asyncio.sleep(0, executor.cancelled_at), bool, timeout_s=5)
        stored = await repo.get(task.id)
        assert stored.status is TaskStatus.RUNNING  # nothing written: it cannot be
        assert stored.lease_until is not None
        assert executor.cancelled_at is not None
        assert executor.cancelled_at < stored.lease_until  # it stopped before anyone may rescue
        repo.resume()
    # Once the store answers again the lease expires and the task is rescued, not lost.
    rescued = await repo.rescue_expired(now=stored.lease_until.replace(year=2100))
    assert [(t.id, t.status) for t in rescued] == [(task.id, TaskStatus.PENDING)]


async def test_a_stop_is_not_held_forever_by_an_outcome_write_that_hangs() -> None:
    repo = BlackHoledRepository()
    executor = Blocking()
    task = await repo.insert(new_task(task_type="blocking", params={}, now=CLOCK.now()))
    runtime = dispatcher(repo, executor)
    await runtime.start()
    try:
        await asyncio.wait_for(executor.started.wait(), 5)
        repo.pause()
        executor.release.set()  # it returns, and its completion never answers
        # The write gives up when the lease runs out (1 s); the stop then completes.
        await asyncio.wait_for(runtime.close(), 5)
    finally:
        repo.resume()
        await runtime.close()
    assert (await repo.get(task.id)).status is TaskStatus.RUNNING  # left for the rescuer


# -- over the wire: a paused SecantusDB ---------------------------------------------------------

LEASE_S = 3.0
#: The server stays paused this long: past every lease, so every running task is stopped by
#: its owner and rescued afterwards.
OUTAGE_S = LEASE_S + 1.5


@pytest.fixture
async def paused_server(tmp_path: Path) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """A SecantusDB of this test's own, storing on disk in tmp_path; continued and stopped at
    the end whatever happened."""
    binary = find_secantusd()
    if binary is None:
        pytest.skip("no SecantusDB server: set SECANTUSD, or run scripts/test (.venv-secantus)")
    port = free_port()
    log = (tmp_path / "secantusd.log").open("wb")
    server = await asyncio.create_subprocess_exec(
        binary,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--storage-path",
        str(tmp_path / "data"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    client: Any = AsyncMongoClient(uri, serverSelectionTimeoutMS=500)

    async def answers() -> bool:
        try:
            await client.admin.command("ping")
        except Exception:
            assert server.returncode is None, "SecantusDB exited"
            return False
        return True

    try:
        await eventually(answers, bool, timeout_s=30, interval_s=0.1)
        yield uri, server
    finally:
        await client.close()
        if server.returncode is None:
            server.send_signal(signal.SIGCONT)
            server.terminate()
        await server.wait()
        log.close()


def threads_stopped(pid: int) -> bool:
    """Whether every thread of ``pid`` is stopped: kill() returns before they all are, and a
    thread still running may answer one more request. Linux only (True elsewhere)."""
    threads = Path(f"/proc/{pid}/task")
    if not threads.is_dir():
        return True
    states = []
    for stat in threads.glob("*/stat"):
        try:
            states.append(stat.read_text().rpartition(")")[2].split()[0])
        except OSError:  # the thread ended meanwhile
            continue
    return all(state in ("T", "t") for state in states)


async def body_of(response: Any) -> tuple[int, Any]:
    return response.status, await response.json()


@pytest.mark.timeout(120)
async def test_while_the_database_is_paused_requests_answer_503_and_nothing_is_lost(
    paused_server: tuple[str, asyncio.subprocess.Process], spawn: Spawn
) -> None:
    """An HTTP instance (cam_tasks.setup, 2 workers) and a worker process (4 workers) share a
    database; 6 tasks of 6 s run when the server is paused for longer than a lease. Meanwhile
    every request answers 503 with the envelope and a submit stores nothing. Once it is back,
    every task completes (reruns are bounded by the tasks that were running) and new work
    runs."""
    uri, server = paused_server
    database = "outage"
    worker = await spawn(uri, database, workers=4, lease_s=LEASE_S, heartbeat_s=0.5)
    # The HTTP instance bounds every database call (timeoutMS): against a server that stops
    # answering without closing connections, nothing else would (see docs/reliability.md).
    settings = load_settings(
        mongo={
            "uri": uri + "&timeoutMS=1500",
            "database": database,
            "server_selection_timeout_s": 1.0,
        },
        queue={
            "worker_count": 2,
            "buffer_size": 0,
            "lease_s": LEASE_S,
            "heartbeat_interval_s": 0.5,
            "progress_interval_s": 0.25,
            "rescue_interval_s": 0.5,
            "poll_interval_s": 0.2,
            "shutdown_timeout_s": 1.0,
        },
        tasks={"retention_s": None},
        auth={"allow_anonymous": True},
    )
    probe_client: Any = AsyncMongoClient(uri, tz_aware=True)
    db = probe_client[database]
    probe = ProbeExecutor(db, owner="")
    app = web.Application()
    runtime = cam_tasks.setup(app, settings, executors=[probe])
    probe.owner = runtime.dispatcher.owner
    try:
        async with TestClient(TestServer(app)) as client:

            async def submit(**params: Any) -> str:
                status, body = await body_of(
                    await client.post(f"{API}/tasks", json={"type": PROBE, "params": params})
                )
                assert status == 202, body
                return str(body["data"]["task_id"])

            long = [await submit(first_run_s=6.0, duration_s=0.2) for _ in range(6)]
            # Every one has started (and recorded so): the outage interrupts all six.
            await eventually(
                lambda: executions(db), lambda found: len(found) == 6, timeout_s=20, interval_s=0.05
            )

            server.send_signal(signal.SIGSTOP)
            paused_at = time.monotonic()
            await eventually(
                lambda: asyncio.to_thread(threads_stopped, server.pid), bool, timeout_s=5
            )
            answers: list[tuple[int, Any]] = []

            async def paused_long_enough() -> bool:
                answers.append(await body_of(await client.get(f"{API}/tasks/{long[0]}")))
                answers.append(await body_of(await client.get(f"{API}/tasks?limit=5")))
                answers.append(
                    await body_of(
                        await client.post(f"{API}/tasks", json={"type": PROBE, "params": {}})
                    )
                )
                return time.monotonic() - paused_at > OUTAGE_S

            await eventually(paused_long_enough, bool, timeout_s=OUTAGE_S + 20, interval_s=0)
            server.send_signal(signal.SIGCONT)

            for status, body in answers:
                assert status == 503, body
                assert body["code"] == 503
                assert body["data"]["error"] == "database_unavailable"
                assert isinstance(body["msg"], str)
                assert body["msg"]
            assert worker.process.returncode is None  # the worker process rode it out

            after = await submit(duration_s=0.2)
            await eventually(
                lambda: statuses(db), lambda c: c[TaskStatus.COMPLETED] == 7, timeout_s=30
            )
            assert await statuses(db) == {TaskStatus.COMPLETED: 7}  # no 503 submit was stored
            ids = {d["_id"] for d in await db["tasks"].find({}, {"_id": True}).to_list(None)}
            assert ids == {*long, after}
            recorded = await executions(db)
            runs = runs_per_task(recorded)
            assert set(runs) == ids
            # Every long task was stopped by its owner when its lease could not be renewed, and
            # ran once more after the rescue; nothing else ran twice.
            assert runs == {**dict.fromkeys(long, 2), after: 1}
            for task_id in long:
                first, second = [e for e in recorded if e["task_id"] == task_id]
                assert "interrupted_at" in first, first
                assert "finished_at" in second, second
    finally:
        await probe.flush()
        await probe_client.close()
    worker.send(signal.SIGTERM)
    assert await worker.wait() == 0, worker.log()
    assert (worker.log_path.parent / "data").is_dir()  # it stored on disk
