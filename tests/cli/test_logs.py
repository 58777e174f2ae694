"""Logs: ``cam-tasks serve`` writes JSON lines with the request id and owner; every line logged
while a task runs, by the runner or by the executor's own logger, names the task (id, type,
queue when it has one, attempt) in both formats."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from pydantic import BaseModel, ConfigDict

import cam_tasks
from cam_tasks.cli.logs import log_handler
from cam_tasks.config import LogSettings, load_settings
from cam_tasks.domain import PermanentError, Task, TaskStatus
from cam_tasks.executor import TaskContext
from tests.cli.support import API, ROOT
from tests.support.network import free_port
from tests.support.waiting import eventually


class ChattyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int
    fail: bool = False


class Chatty:
    """Logs through a logger of its own (as executors do), then finishes or fails."""

    type = "chatty"
    params_model = ChattyParams

    def __init__(self) -> None:
        self.both_running = asyncio.Event()
        self.running = 0

    async def execute(self, params: ChattyParams, ctx: TaskContext) -> Any:
        log = logging.getLogger("x")
        self.running += 1
        if self.running == 2:
            self.both_running.set()
        await self.both_running.wait()  # the two attempts overlap: their lines interleave
        log.info("working on %d", params.n)
        if params.fail:
            raise PermanentError("bad account")
        return {"n": params.n}


@pytest.fixture
def captured(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """What the CLI's handler, in the format the test is parametrised with, writes for the
    records of the root logger at INFO."""
    stream = io.StringIO()
    handler, _ = log_handler(LogSettings(format=request.param), stream, {"owner": "h:1:a"})
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def _run_two_tasks() -> dict[int, Task]:
    runtime = cam_tasks.CamTasks(
        load_settings(mongo={"uri": "memory://"}, queue={"poll_interval_s": 0.05}),
        executors=[Chatty()],
        load_plugins=False,
    )
    async with runtime:
        ids = {
            1: (await runtime.service.submit("chatty", {"n": 1})).id,
            2: (await runtime.service.submit("chatty", {"n": 2, "fail": True})).id,
        }
        return {
            n: await eventually(
                lambda task_id=task_id: runtime.service.get(task_id),
                lambda task: task.status.is_terminal,
            )
            for n, task_id in ids.items()
        }


@pytest.mark.parametrize("captured", ["json"], indirect=True)
async def test_json_lines_logged_during_a_task_carry_the_task(captured: io.StringIO) -> None:
    tasks = await _run_two_tasks()

    entries = [json.loads(line) for line in captured.getvalue().splitlines()]
    for n, task in tasks.items():
        (own,) = [e for e in entries if e["logger"] == "x" and e["message"] == f"working on {n}"]
        assert own["task_id"] == task.id
        assert own["type"] == "chatty"
        assert own["attempt"] == 1
        assert own.get("queue") == getattr(task, "queue", None)  # once tasks have queues
        assert own["owner"] == "h:1:a"
    assert tasks[2].status is TaskStatus.FAILED
    failed = next(e for e in entries if e["message"] == "task failed: PermanentError")
    assert failed["task_id"] == tasks[2].id
    assert failed["type"] == "chatty"
    outside = [e for e in entries if e["logger"] == "x" and "task_id" not in e]
    assert outside == []


@pytest.mark.parametrize("captured", ["text"], indirect=True)
async def test_text_lines_logged_during_a_task_name_the_task(captured: io.StringIO) -> None:
    tasks = await _run_two_tasks()

    lines = captured.getvalue().splitlines()
    for n, task in tasks.items():
        (own,) = [line for line in lines if f" INFO x: working on {n} " in line]
        queue = getattr(task, "queue", None)
        fields = f"task_id={task.id} type=chatty" + (f" queue={queue}" if queue else "")
        assert own.endswith(f"working on {n} {fields} attempt=1")
    (failed,) = [line for line in lines if "task failed: PermanentError" in line]
    assert re.search(
        rf"WARNING cam_tasks\.queue\.runner: task failed: PermanentError "
        rf"task_id={tasks[2].id} type=chatty .*attempt=1 error=PermanentError$",
        failed,
    )
    assert "owner=" not in captured.getvalue()  # the same on every line: JSON only


async def test_serve_logs_json_lines_with_the_request_id_and_owner() -> None:
    port = free_port()  # nothing listens there
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CAM_TASKS_")},
        "CAM_TASKS_SERVER__PORT": str(port),
        "CAM_TASKS_LOG__FORMAT": "json",
        "CAM_TASKS_AUTH__ALLOW_ANONYMOUS": "true",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cam_tasks.cli",
        "serve",
        "--config",
        str(ROOT / "config.example.toml"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:

            async def ready() -> bool:
                try:
                    async with session.get(f"{base}/health/ready") as response:
                        return response.status == 200
                except aiohttp.ClientConnectionError:
                    assert process.returncode is None, "cam-tasks serve exited"
                    return False

            await eventually(ready, bool, timeout_s=30, interval_s=0.1)
            async with session.post(
                f"{base}{API}/tasks/discover-assets",
                json={"provider": "aliyun", "account_id": "123"},
                headers={"X-Request-ID": "trace-77"},
            ) as response:
                assert response.status == 202
                task_id = (await response.json())["data"]["task_id"]
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        output = (await asyncio.wait_for(process.communicate(), 30))[0].decode()

    assert process.returncode == 0, output
    entries = [json.loads(line) for line in output.splitlines()]  # every line is one object
    submitted = next(e for e in entries if e["message"] == "task submitted")
    assert submitted["request_id"] == "trace-77"
    assert submitted["task_id"] == task_id
    assert submitted["type"] == "discover_assets"
    assert submitted["level"] == "INFO"
    memory_warnings = [e for e in entries if "memory" in e["message"] and e["level"] == "WARNING"]
    assert len(memory_warnings) == 1, memory_warnings  # said once, not by every layer
    owners = {entry.get("owner") for entry in entries if entry["logger"] != "cam_tasks.cli"}
    (owner,) = owners - {None}
    assert owner.count(":") == 2  # host:pid:random, the id its leases carry
