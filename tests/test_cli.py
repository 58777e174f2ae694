"""The ``cam-tasks`` client commands, run for real: each test starts the CLI as a subprocess
against a real server (``cam_tasks.setup`` in an aiohttp TestServer on a loopback port, the
memory store, a test executor the test steers), and reads its output and exit status."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import BaseModel, ConfigDict, Field

import cam_tasks
from cam_tasks.cli import (
    EXIT_API_ERROR,
    EXIT_TASK_CANCELLED,
    EXIT_TASK_FAILED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)
from cam_tasks.config import load_settings
from cam_tasks.domain import PermanentError, TaskStatus
from cam_tasks.executor import TaskContext
from tests.support.network import free_port
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "cli-test-token-0123456789"
API = "/api/v1/cam"


class StepsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(2, ge=1)
    hold: bool = False
    fail: bool = False


class Steps:
    """Reports half of its steps, waits for the test when told to, then fails or finishes."""

    type = "steps"
    params_model = StepsParams

    def __init__(self) -> None:
        self.gate = asyncio.Event()

    async def execute(self, params: StepsParams, ctx: TaskContext) -> Any:
        ctx.report(50, "halfway there", step=1, total_steps=2)
        if params.hold:
            await self.gate.wait()
        if params.fail:
            raise PermanentError("bad account")
        ctx.report(100, "all done", step=2, total_steps=2)
        return {"steps": params.steps}


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Service:
    url: str
    runtime: cam_tasks.CamTasks
    executor: Steps

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAM_TASKS_")}
        return {**env, "CAM_TASKS_URL": self.url, "CAM_TASKS_TOKEN": TOKEN, **extra}

    async def start(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cam_tasks.cli",
            *args,
            env=env or self.env(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def run(self, *args: str, env: dict[str, str] | None = None, stdin: str = "") -> Result:
        process = await self.start(*args, env=env)
        out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 30)
        return Result(process.returncode, out.decode(), err.decode())

    async def status(self, task_id: str) -> TaskStatus:
        return (await self.runtime.service.get(task_id)).status

    async def submit(self, **params: Any) -> str:
        task = await self.runtime.service.submit("steps", params)
        return task.id


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    executor = Steps()
    settings = load_settings(
        mongo={"uri": "memory://"},
        queue={"poll_interval_s": 0.05, "progress_interval_s": 0.02},
        auth={"tokens": {"ops": {"token": TOKEN, "role": "admin"}}},
        providers={"static": [{"name": "aliyun", "inventory": "builtin:sample_inventory.toml"}]},
    )
    app = web.Application()
    runtime = cam_tasks.setup(app, settings, executors=[executor])
    async with TestServer(app, host="127.0.0.1") as server:
        yield Service(str(server.make_url("")).rstrip("/"), runtime, executor)
        executor.gate.set()


async def read_until(stream: asyncio.StreamReader, needle: str) -> list[str]:
    """Lines of ``stream`` up to the first one containing ``needle``."""
    lines: list[str] = []
    while True:
        line = (await asyncio.wait_for(stream.readline(), 20)).decode()
        assert line, f"{needle!r} never came; got {lines}"
        lines.append(line.rstrip("\n"))
        if needle in line:
            return lines


# -- submit --------------------------------------------------------------------------------------


async def test_submit_prints_the_id_of_the_stored_task(service: Service) -> None:
    result = await service.run("submit", "steps", '{"steps": 3}', "--priority", "high")

    assert result.code == 0, result.err
    task_id = result.out.strip()
    task = await service.runtime.service.get(task_id)
    assert task.params == {"steps": 3, "hold": False, "fail": False}
    assert task.priority == 2


async def test_submit_reads_params_from_a_file_or_stdin_and_answers_json(
    service: Service, tmp_path: Path
) -> None:
    params = tmp_path / "params.json"
    params.write_text('{"steps": 4}')

    from_file = await service.run("submit", "steps", f"@{params}", "--json")
    from_stdin = await service.run("submit", "steps", "-", "--json", stdin='{"steps": 5}')

    for result, steps in ((from_file, 4), (from_stdin, 5)):
        assert result.code == 0, result.err
        task = await service.runtime.service.get(result.json()["task_id"])
        assert task.params["steps"] == steps


async def test_submit_sync_assets_takes_its_params_as_options(service: Service) -> None:
    result = await service.run(
        "submit",
        "sync-assets",
        "--provider",
        "aliyun",
        "--account-id",
        "123",
        "--asset-types",
        "ecs, rds",
        "--watch",
    )

    assert result.code == 0, result.out + result.err
    task_id = result.out.splitlines()[0]
    task = await service.runtime.service.get(task_id)
    assert task.type == "sync_assets"
    assert task.params["asset_types"] == ["ecs", "rds"]
    assert task.status is TaskStatus.COMPLETED
    assert result.out.splitlines()[-1].startswith("completed in ")


async def test_invalid_params_print_the_api_details_and_exit_1(service: Service) -> None:
    result = await service.run("submit", "steps", '{"steps": 0, "colour": "red"}')

    assert result.code == EXIT_API_ERROR
    assert result.out == ""
    assert "validation failed (HTTP 422, validation_error)" in result.err
    assert "steps: Input should be greater than or equal to 1" in result.err
    assert "colour: Extra inputs are not permitted" in result.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["submit", "steps", "{not json"], "params are not valid JSON"),
        (["submit", "steps", "[1, 2]"], "params must be a JSON object"),
        (["submit", "steps", "--provider", "aliyun"], "--provider: only with sync-assets"),
        (["submit", "steps", "@/nonexistent/params.json"], "cannot read /nonexistent"),
    ],
)
async def test_bad_arguments_exit_2_before_calling_the_service(
    service: Service, args: list[str], message: str
) -> None:
    result = await service.run(*args)

    assert result.code == EXIT_USAGE
    assert message in result.err
    assert sum((await service.runtime.service.counts()).values()) == 0


# -- list, status, cancel, retry, delete ----------------------------------------------------------


async def test_list_shows_a_table_for_people_and_json_for_scripts(service: Service) -> None:
    ids = [await service.submit(fail=True) for _ in range(3)]
    for task_id in ids:
        await eventually(lambda t=task_id: service.status(t), lambda s: s is TaskStatus.FAILED)

    table = await service.run("list", "--type", "steps", "--limit", "2")
    scripted = await service.run("list", "--status", "failed,completed", "--json")

    assert table.code == 0, table.err
    header, first, second, footer = table.out.splitlines()
    assert header.split() == ["ID", "TYPE", "STATUS", "PROGRESS", "CREATED", "DURATION", "MESSAGE"]
    assert first.split()[:3] == [ids[2], "steps", "failed"]  # newest first
    assert second.split()[0] == ids[1]
    assert footer == "2 of 3 task(s)"
    assert scripted.code == 0, scripted.err
    page = scripted.json()
    assert page["total"] == 3
    assert [task["id"] for task in page["tasks"]] == ids[::-1]


async def test_status_shows_one_task(service: Service) -> None:
    task_id = await service.submit(fail=True)
    await eventually(lambda: service.status(task_id), lambda s: s is TaskStatus.FAILED)

    shown = await service.run("status", task_id)
    scripted = await service.run("status", task_id, "--json")

    assert shown.code == 0, shown.err
    fields = dict(line.split(":", 1) for line in shown.out.splitlines())
    assert fields["id"].strip() == task_id
    assert fields["status"].strip() == "failed"
    assert fields["error"].strip() == "PermanentError: bad account"
    assert fields["progress"].strip() == "50.0%  step 1/2  halfway there"
    assert scripted.json()["error"] == {"type": "PermanentError", "message": "bad account"}


async def test_cancel_retry_and_delete_change_the_task(service: Service) -> None:
    task_id = await service.submit(hold=True)
    await eventually(lambda: service.status(task_id), lambda s: s is TaskStatus.RUNNING)

    busy = await service.run("delete", task_id)
    assert busy.code == EXIT_API_ERROR
    assert "task is running: cannot delete (HTTP 409, conflict)" in busy.err

    cancelled = await service.run("cancel", task_id, "--json")
    assert cancelled.code == 0, cancelled.err
    assert cancelled.json()["cancel_requested"] is True
    await eventually(lambda: service.status(task_id), lambda s: s is TaskStatus.CANCELLED)

    retried = await service.run("retry", task_id)
    assert retried.code == 0, retried.err
    assert "status:" in retried.out
    assert await service.status(task_id) in (TaskStatus.PENDING, TaskStatus.RUNNING)
    await service.runtime.service.cancel(task_id)
    await eventually(lambda: service.status(task_id), lambda s: s is TaskStatus.CANCELLED)

    deleted = await service.run("delete", task_id)
    assert deleted.code == 0, deleted.err
    assert deleted.out.strip() == f"deleted {task_id}"
    gone = await service.run("status", task_id)
    assert gone.code == EXIT_API_ERROR
    assert "task not found (HTTP 404, not_found)" in gone.err


# -- watch ---------------------------------------------------------------------------------------


async def test_watch_follows_progress_to_completion(service: Service) -> None:
    task_id = await service.submit(hold=True)
    process = await service.start("watch", task_id)

    seen = await read_until(process.stdout, "halfway there")
    service.executor.gate.set()
    out, err = await asyncio.wait_for(process.communicate(), 30)

    assert process.returncode == 0, err.decode()
    lines = seen + out.decode().splitlines()
    assert ["running", "50.0%", "step", "1/2", "halfway", "there"] in [
        line.split() for line in lines
    ]
    assert lines[-2].split() == ["completed", "100.0%", "step", "2/2", "all", "done"]
    assert lines[-1].startswith("completed in ")


async def test_watch_exits_4_when_the_task_fails(service: Service) -> None:
    task_id = await service.submit(fail=True)

    result = await service.run("watch", task_id)

    assert result.code == EXIT_TASK_FAILED
    assert result.out.splitlines()[-1] == "failed: PermanentError: bad account"


async def test_watch_exits_5_when_the_task_is_cancelled(service: Service) -> None:
    task_id = await service.submit(hold=True)
    process = await service.start("watch", task_id, "--json")

    first = json.loads((await read_until(process.stdout, "halfway there"))[-1])
    await service.runtime.service.cancel(task_id)
    out, _ = await asyncio.wait_for(process.communicate(), 30)

    assert process.returncode == EXIT_TASK_CANCELLED
    assert first["status"] == "running"
    assert json.loads(out.decode().splitlines()[-1])["status"] == "cancelled"


# -- reaching the service --------------------------------------------------------------------


async def test_the_token_comes_from_the_option_or_the_environment(service: Service) -> None:
    anonymous = service.env()
    del anonymous["CAM_TASKS_TOKEN"]

    refused = await service.run("list", env=anonymous)
    by_option = await service.run("list", "--token", TOKEN, env=anonymous)
    wrong = await service.run("list", "--token", "x" * 24)

    assert refused.code == EXIT_API_ERROR
    assert "HTTP 401" in refused.err
    assert by_option.code == 0, by_option.err
    assert wrong.code == EXIT_API_ERROR


async def test_an_unreachable_service_exits_3(service: Service) -> None:
    nothing_listens = free_port()
    result = await service.run("status", "abc", "--url", f"http://127.0.0.1:{nothing_listens}")

    assert result.code == EXIT_UNREACHABLE
    assert "cannot reach http://127.0.0.1:" in result.err


# -- structured logs of `cam-tasks serve` ------------------------------------------------------


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
    owners = {entry.get("owner") for entry in entries if entry["logger"] != "cam_tasks.cli"}
    (owner,) = owners - {None}
    assert owner.count(":") == 2  # host:pid:random, the id its leases carry
