"""``cam-tasks worker`` and ``cam-tasks serve --no-workers`` as real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from cam_tasks.cli.exits import ExitCode
from cam_tasks.cli.main import parser
from cam_tasks.cli.worker import parse_queues
from cam_tasks.domain import CamTasksError
from tests.support.network import free_port
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "config.example.toml")
API = "/api/v1/cam"
START_TIMEOUT_S = 30.0


class Process:
    """A ``cam-tasks`` subprocess whose output (stdout and stderr) is collected as it comes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.lines.append(line.decode(errors="replace"))

    @property
    def output(self) -> str:
        return "".join(self.lines)

    async def said(self, words: str) -> None:
        async def seen() -> bool:
            assert self.process.returncode is None or words in self.output, self.output
            return words in self.output

        await eventually(seen, bool, timeout_s=START_TIMEOUT_S, interval_s=0.05)

    async def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signum)
        code = await asyncio.wait_for(self.process.wait(), 30)
        await self._reader
        return code

    async def ended(self) -> int:
        code = await asyncio.wait_for(self.process.wait(), START_TIMEOUT_S)
        await self._reader
        return code


@pytest.fixture
async def cam_tasks_cli() -> AsyncIterator[Callable[..., object]]:
    """``await cam_tasks_cli(*argv, **env)``: a running ``python -m cam_tasks.cli`` process;
    killed when the test ends if it still runs."""
    started: list[Process] = []

    async def start(*argv: str, **env: str) -> Process:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cam_tasks.cli",
            *argv,
            env={**os.environ, **env},
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        started.append(Process(process))
        return started[-1]

    yield start
    for process in started:
        if process.process.returncode is None:
            process.process.kill()
            await process.ended()


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with session.get(url) as response:
        return response.status, await response.text()


async def test_a_worker_serves_health_and_metrics_on_its_port_and_no_api(cam_tasks_cli) -> None:
    port = free_port()
    worker = await cam_tasks_cli("worker", "--config", CONFIG, CAM_TASKS_WORKER__PORT=str(port))
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:

        async def ready() -> int:
            try:
                return (await get(session, f"{base}/health/ready"))[0]
            except aiohttp.ClientConnectionError:
                assert worker.process.returncode is None, worker.output
                return 0

        await eventually(ready, lambda status: status == 200, timeout_s=START_TIMEOUT_S)
        async with session.get(f"{base}/health/ready") as response:
            checks = (await response.json())["checks"]
        assert checks == {"database": {"ok": True}, "dispatcher": {"ok": True}}
        assert (await get(session, f"{base}/health/live"))[0] == 200
        status, metrics = await get(session, f"{base}/metrics")
        assert status == 200
        assert "cam_tasks_" in metrics
        # No HTTP API and no dashboard in a worker process.
        assert (await get(session, f"{base}{API}/tasks"))[0] == 404
        assert (await get(session, f"{base}/cam/"))[0] == 404
    assert await worker.stop() == ExitCode.OK, worker.output
    assert "stopping gracefully" in worker.output
    assert "Traceback" not in worker.output


async def test_a_worker_without_its_small_server_listens_nowhere(cam_tasks_cli) -> None:
    port = free_port()
    worker = await cam_tasks_cli(
        "worker",
        "--config",
        CONFIG,
        CAM_TASKS_WORKER__PORT=str(port),
        CAM_TASKS_WORKER__HEALTH="false",
    )
    await worker.said("worker running")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert await worker.stop(signal.SIGINT) == ExitCode.OK, worker.output


async def test_a_worker_names_an_undeclared_queue_and_exits_2(cam_tasks_cli) -> None:
    worker = await cam_tasks_cli("worker", "--config", CONFIG, "--queues", "default,exprots")
    assert await worker.ended() == ExitCode.USAGE
    assert "'exprots' are not declared" in worker.output
    assert "Traceback" not in worker.output


async def test_a_worker_whose_port_is_taken_says_so_and_exits_2(cam_tasks_cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = await cam_tasks_cli("worker", "--config", CONFIG, CAM_TASKS_WORKER__PORT=str(port))
        assert await worker.ended() == ExitCode.USAGE
    assert f"cannot listen on 127.0.0.1:{port}" in worker.output
    assert "Traceback" not in worker.output


async def test_serve_no_workers_stores_submits_and_is_ready_without_a_dispatcher(
    cam_tasks_cli,
) -> None:
    port = free_port()
    api = await cam_tasks_cli(
        "serve", "--no-workers", "--config", CONFIG, CAM_TASKS_SERVER__PORT=str(port)
    )
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:

        async def ready() -> int:
            try:
                return (await get(session, f"{base}/health/ready"))[0]
            except aiohttp.ClientConnectionError:
                assert api.process.returncode is None, api.output
                return 0

        await eventually(ready, lambda status: status == 200, timeout_s=START_TIMEOUT_S)
        async with session.get(f"{base}/health/ready") as response:
            assert (await response.json())["checks"] == {"database": {"ok": True}}
        sync = {"provider": "aliyun", "account_id": "123", "asset_types": ["ecs"]}
        async with session.post(f"{base}{API}/tasks/sync-assets", json=sync) as response:
            assert response.status == 202
            task_id = (await response.json())["data"]["task_id"]
        async with session.post(
            f"{base}{API}/tasks/sync-assets", json={**sync, "asset_types": "ecs"}
        ) as response:
            assert response.status == 422  # validated by the executor's params model
        async with session.get(f"{base}{API}/tasks/{task_id}") as response:
            assert (await response.json())["data"]["status"] == "pending"
        async with session.get(f"{base}{API}/queue/stats") as response:
            assert (await response.json())["data"]["workers"]["busy"] == 0
    assert await api.stop() == ExitCode.OK, api.output
    assert "API only, no workers" in api.output
    assert "Traceback" not in api.output


def test_the_commands_parse_their_role_options() -> None:
    args = parser().parse_args(["worker", "--config", "c.toml", "--queues", "a,b"])
    assert (args.command, args.config, args.queues) == ("worker", "c.toml", "a,b")
    assert parser().parse_args(["serve", "--no-workers"]).no_workers is True
    assert parser().parse_args(["serve"]).no_workers is False
    assert parse_queues(" a, b ,") == ["a", "b"]
    with pytest.raises(CamTasksError):
        parse_queues(" , ")
