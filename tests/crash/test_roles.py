"""Process roles on one database: an API-only process (``cam-tasks serve --no-workers``) and a
worker-only process (``cam-tasks worker``), both real ``cam-tasks`` processes over the wire
server, together behave as one service.

Both register the ``probe`` executor as an installed plug-in (``tests.crash.roles_plugin``),
which records every execution with the pid of the process that ran it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.crash.conftest import ROOT, START_TIMEOUT_S, executions
from tests.crash.roles_plugin import install
from tests.support.network import free_port
from tests.support.waiting import eventually

pytestmark = pytest.mark.wire

API = "/api/v1/cam"


class CliProcess:
    def __init__(self, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


Start = Callable[..., Awaitable[CliProcess]]


@pytest.fixture
async def cam_tasks_process(tmp_path: Path, wire_uri: str, wire_db: Any) -> AsyncIterator[Start]:
    """``await cam_tasks_process("worker", ..., **env)``: a ``cam-tasks`` process on the test's
    database of the wire server, with the probe plug-in installed. Stopped with SIGTERM (then
    killed) when the test ends."""
    site = tmp_path / "site"
    install(site)
    started: list[tuple[CliProcess, Any]] = []
    base_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
        "CAM_TASKS_MONGO__URI": wire_uri,
        "CAM_TASKS_MONGO__DATABASE": wire_db.name,
        "CAM_TASKS_AUTH__ALLOW_ANONYMOUS": "true",
        "CAM_TASKS_QUEUE__POLL_INTERVAL_S": "0.1",
    }

    async def start(*argv: str, **env: str) -> CliProcess:
        log_path = tmp_path / f"{argv[0]}-{len(started)}.log"
        log = log_path.open("wb")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cam_tasks.cli",
            *argv,
            env={**base_env, **env},
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
        started.append((CliProcess(process, log_path), log))
        return started[-1][0]

    try:
        yield start
    finally:
        for cli, log in started:
            if cli.process.returncode is None:
                cli.process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(cli.process.wait(), 30)
                except TimeoutError:
                    cli.process.kill()
                    await cli.process.wait()
            log.close()


async def answers(session: aiohttp.ClientSession, url: str, process: CliProcess) -> None:
    """Wait until ``url`` answers 200 (the process is up and ready)."""

    async def status() -> int:
        assert process.process.returncode is None, process.log()
        try:
            async with session.get(url) as response:
                return response.status
        except aiohttp.ClientConnectionError:
            return 0

    await eventually(status, lambda code: code == 200, timeout_s=START_TIMEOUT_S, interval_s=0.1)


@pytest.mark.timeout(120)
async def test_a_submit_to_the_api_process_runs_on_the_worker_and_never_on_the_api(
    cam_tasks_process: Start, wire_db: Any
) -> None:
    api_port, worker_port = free_port(), free_port()
    api = await cam_tasks_process("serve", "--no-workers", CAM_TASKS_SERVER__PORT=str(api_port))
    worker = await cam_tasks_process("worker", CAM_TASKS_WORKER__PORT=str(worker_port))
    base = f"http://127.0.0.1:{api_port}"
    async with aiohttp.ClientSession() as session:
        await answers(session, f"{base}/health/ready", api)
        await answers(session, f"http://127.0.0.1:{worker_port}/health/ready", worker)
        task_ids = []
        for _ in range(6):
            async with session.post(
                f"{base}{API}/tasks", json={"type": "probe", "params": {"duration_s": 0.05}}
            ) as response:
                assert response.status == 202, await response.text()
                task_ids.append((await response.json())["data"]["task_id"])
        async with session.post(
            f"{base}{API}/tasks", json={"type": "probe", "params": {"duration_s": -1}}
        ) as response:
            # The API process validates with the probe's params model (it registered it).
            assert response.status == 422
            assert (await response.json())["data"]["error"] == "validation_error"

        async def finished() -> list[str]:
            statuses = []
            for task_id in task_ids:
                async with session.get(f"{base}{API}/tasks/{task_id}") as response:
                    statuses.append((await response.json())["data"]["status"])
            return statuses

        final = await eventually(
            finished,
            lambda statuses: all(s not in ("pending", "running") for s in statuses),
            timeout_s=60,
            interval_s=0.1,
        )
        assert final == ["completed"] * len(task_ids), worker.log()

    recorded = await executions(wire_db)
    assert sorted(str(execution["task_id"]) for execution in recorded) == sorted(task_ids)
    # Every execution happened in the worker process; the API process ran nothing.
    assert {execution["pid"] for execution in recorded} == {worker.process.pid}
    assert api.process.returncode is None, api.log()
    api.process.send_signal(signal.SIGTERM)
    worker.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(api.process.wait(), 30) == 0, api.log()
    assert await asyncio.wait_for(worker.process.wait(), 30) == 0, worker.log()
    assert "Traceback" not in api.log() + worker.log()
