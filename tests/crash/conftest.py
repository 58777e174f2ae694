"""Real worker processes (``tests.crash.worker_process``) over the wire server, killed with
real signals, and what the tests read back: tasks from the store, executions as recorded.

Every process a test starts is killed (and continued first, if stopped) when the test ends,
whatever happened.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pytest

from cam_tasks.domain import Priority, Task, TaskStatus, new_task
from cam_tasks.repository import MongoTaskRepository
from tests.conftest import WIRE_URI
from tests.crash.worker_process import EXECUTIONS, PROBE

ROOT = Path(__file__).resolve().parents[2]
#: How long a worker process may take to start (imports, indexes) and print ``ready``.
START_TIMEOUT_S = 30.0


class WorkerProcess:
    """One ``worker_process`` subprocess: its owner id once ready, its log, signals."""

    def __init__(self, process: asyncio.subprocess.Process, log_path: Path, log: IO[bytes]):
        self.process = process
        self.log_path = log_path
        self._log = log
        self.owner = ""
        self.stopped = False

    @property
    def pid(self) -> int:
        return self.process.pid

    async def wait_ready(self) -> str:
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), START_TIMEOUT_S)
        except TimeoutError:
            raise AssertionError(f"worker did not start; log:\n{self.log()}") from None
        word, _, owner = line.decode().strip().partition(" ")
        assert word == "ready", f"worker did not start; log:\n{self.log()}"
        self.owner = owner
        return owner

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)
        if signum == signal.SIGSTOP:
            self.stopped = True
        elif signum == signal.SIGCONT:
            self.stopped = False

    async def wait(self, timeout_s: float = 30.0) -> int:
        """Wait for the process to exit; its exit code (negative: killed by that signal)."""
        code = await asyncio.wait_for(self.process.wait(), timeout_s)
        return code

    async def finish(self) -> None:
        """Kill it if it still runs, reap it, close its pipes and log."""
        if self.process.returncode is None:
            if self.stopped:
                self.send(signal.SIGCONT)
            self.process.kill()
        await self.process.communicate()
        self._log.close()

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-6000:]


Spawn = Callable[..., Awaitable[WorkerProcess]]


@pytest.fixture
def wire_uri() -> str:
    if not WIRE_URI:
        pytest.skip("MONGODB_URI is not set (scripts/test starts a wire server and sets it)")
    return WIRE_URI


@pytest.fixture
async def spawn(tmp_path: Path) -> AsyncIterator[Spawn]:
    """Start a worker process: ``await spawn(uri, db, workers=…, lease_s=…, …)``, ready."""
    started: list[WorkerProcess] = []
    names = iter(range(1000))

    async def start(uri: str, db: str, **options: Any) -> WorkerProcess:
        arguments = ["--uri", uri, "--db", db]
        for name, value in options.items():
            arguments += [f"--{name.replace('_', '-')}", str(value)]
        log_path = tmp_path / f"worker-{next(names)}.log"
        log = log_path.open("wb")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.crash.worker_process",
            *arguments,
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
        worker = WorkerProcess(process, log_path, log)
        started.append(worker)
        await worker.wait_ready()
        return worker

    try:
        yield start
    finally:
        for worker in started:
            await worker.finish()


async def submit_probes(
    repo: MongoTaskRepository,
    count: int,
    *,
    max_retries: int = 3,
    priority: int = Priority.NORMAL,
    **params: Any,
) -> list[Task]:
    """Store ``count`` pending probe tasks with ``params``, as a service instance would."""
    now = datetime.now(UTC)
    return [
        await repo.insert(
            new_task(
                task_type=PROBE,
                params=dict(params),
                now=now,
                max_retries=max_retries,
                priority=priority,
            )
        )
        for _ in range(count)
    ]


async def executions(database: Any, **query: Any) -> list[dict[str, Any]]:
    """The executions the probe executor recorded (matching ``query``), oldest first."""
    cursor = database[EXECUTIONS].find(query).sort([("started_at", 1), ("_id", 1)])
    found: list[dict[str, Any]] = await cursor.to_list(None)
    return found


def runs_per_task(recorded: list[dict[str, Any]]) -> Counter[str]:
    return Counter(str(execution["task_id"]) for execution in recorded)


async def statuses(database: Any, **query: Any) -> Counter[TaskStatus]:
    """How many tasks (matching ``query``) are in each status, read straight from the store."""
    cursor = database["tasks"].find(query, {"status": True})
    return Counter(TaskStatus(document["status"]) for document in await cursor.to_list(None))


def all_terminal(counts: Counter[TaskStatus]) -> bool:
    return counts[TaskStatus.PENDING] == 0 and counts[TaskStatus.RUNNING] == 0


def find_secantusd() -> str | None:
    """The SecantusDB server binary: ``$SECANTUSD``, then the one scripts/test installs in
    ``.venv-secantus``, then ``secantusd-py`` on PATH."""
    candidates = [
        os.environ.get("SECANTUSD"),
        str(ROOT / ".venv-secantus" / "bin" / "secantusd-py"),
        shutil.which("secantusd-py"),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None
