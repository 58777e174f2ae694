"""What the CLI tests share: a real service to talk to (``cam_tasks.setup`` in an aiohttp
TestServer on a loopback port, the memory store, a test executor the test steers) and a way to
run the real ``cam-tasks`` command against it as a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

import cam_tasks
from cam_tasks.domain import PermanentError, TaskStatus
from cam_tasks.executor import TaskContext

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "cli-test-token-0123456789"
API = "/api/v1/cam"


#: ``python -m cam_tasks.cli`` with Ctrl-C handled as at a terminal: a test run started in the
#: background (``cmd &``, nohup) has SIGINT ignored, its children inherit that, and Python then
#: installs no KeyboardInterrupt handler, so the Ctrl-C tests would wait forever.
_AS_FROM_A_TERMINAL: Final = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('cam_tasks.cli', run_name='__main__', alter_sys=True)"
)


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
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CAM_TASKS_") and k not in ("COLUMNS", "LINES")
        }
        return {**env, "CAM_TASKS_URL": self.url, "CAM_TASKS_TOKEN": TOKEN, **extra}

    async def start(
        self, *args: str, env: dict[str, str] | None = None, stdout: Any = asyncio.subprocess.PIPE
    ) -> Any:
        """The real command (``python -m cam_tasks.cli``), started; ``stdout`` may be a pipe's
        or a pty's file descriptor."""
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _AS_FROM_A_TERMINAL,
            *args,
            env=env or self.env(),
            stdin=asyncio.subprocess.PIPE,
            stdout=stdout,
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


async def read_until(stream: asyncio.StreamReader, needle: str) -> list[str]:
    """Lines of ``stream`` up to the first one containing ``needle``."""
    lines: list[str] = []
    while True:
        line = (await asyncio.wait_for(stream.readline(), 20)).decode()
        assert line, f"{needle!r} never came; got {lines}"
        lines.append(line.rstrip("\n"))
        if needle in line:
            return lines
