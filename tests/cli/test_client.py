"""Submits through :class:`CamTasksClient` (the CLI's client) are safe to retry: each logical
submit carries one ``Idempotency-Key`` on all its sends, so a submit that was stored although
its answer was lost is stored once. Against a real service whose first answer is replaced by a
503, as a database stall can make it after the insert went through."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Handler

import cam_tasks
from cam_tasks.client import ApiResponseError, CamTasksClient
from cam_tasks.config import load_settings
from tests.cli.support import TOKEN, Steps


@dataclass
class LosesAnswers:
    """Lets a submit through to the service, then answers the client 503 instead of 202, for
    the first ``count`` submits; records the Idempotency-Key of every submit it sees."""

    count: int = 1
    keys: list[str | None] = field(default_factory=list)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if request.method == "POST" and request.path.endswith("/tasks"):
            self.keys.append(request.headers.get("Idempotency-Key"))
            if self.count > 0:
                self.count -= 1
                envelope = {
                    "code": 503,
                    "msg": "database unavailable",
                    "data": {"error": "database_unavailable", "details": []},
                }
                return web.json_response(envelope, status=503)
        return response


@dataclass
class Flaky:
    url: str
    runtime: cam_tasks.CamTasks
    faults: LosesAnswers

    def client(self, *, submit_attempts: int = 3) -> CamTasksClient:
        return CamTasksClient(
            self.url, token=TOKEN, retry_delay_s=0, submit_attempts=submit_attempts
        )

    async def task_count(self) -> int:
        return sum((await self.runtime.service.counts()).values())


@pytest.fixture
async def flaky() -> AsyncIterator[Flaky]:
    faults = LosesAnswers()
    settings = load_settings(
        mongo={"uri": "memory://"}, auth={"tokens": {"ops": {"token": TOKEN, "role": "admin"}}}
    )
    app = web.Application(middlewares=[faults.middleware])
    runtime = cam_tasks.setup(app, settings, executors=[Steps()])
    async with TestServer(app, host="127.0.0.1") as server:
        yield Flaky(str(server.make_url("")).rstrip("/"), runtime, faults)


async def test_a_submit_whose_answer_was_lost_is_stored_once(flaky: Flaky) -> None:
    async with flaky.client() as client:
        task_id = await client.submit("steps", {"steps": 3})

    first, second = flaky.faults.keys  # the 503, then the retry
    assert first is not None
    assert second == first
    assert await flaky.task_count() == 1
    assert (await flaky.runtime.service.get(task_id)).params["steps"] == 3


async def test_each_logical_submit_gets_its_own_key(flaky: Flaky) -> None:
    flaky.faults.count = 0
    async with flaky.client() as client:
        one = await client.submit("steps", {"steps": 1})
        two = await client.submit("steps", {"steps": 1})

    assert one != two
    assert len(set(flaky.faults.keys)) == 2
    assert await flaky.task_count() == 2


async def test_a_key_the_caller_gives_is_the_one_sent(flaky: Flaky) -> None:
    async with flaky.client() as client:
        first = await client.submit("steps", idempotency_key="order-77")
        again = await client.submit("steps", idempotency_key="order-77")

    assert flaky.faults.keys == ["order-77", "order-77", "order-77"]
    assert first == again
    assert await flaky.task_count() == 1


async def test_the_last_answer_is_raised_when_every_attempt_fails(flaky: Flaky) -> None:
    flaky.faults.count = 5
    async with flaky.client(submit_attempts=2) as client:
        with pytest.raises(ApiResponseError) as raised:
            await client.submit("steps")

    assert raised.value.status == 503
    assert len(flaky.faults.keys) == 2
    assert len(set(flaky.faults.keys)) == 1
    assert await flaky.task_count() == 1  # both sends reached the service: one task


async def test_a_refused_submit_is_not_sent_again(flaky: Flaky) -> None:
    flaky.faults.count = 0
    async with flaky.client() as client:
        with pytest.raises(ApiResponseError) as raised:
            await client.submit("no_such_type")

    assert raised.value.status == 422
    assert len(flaky.faults.keys) == 1


async def test_cam_tasks_submit_retries_with_its_key_and_stores_one_task(flaky: Flaky) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAM_TASKS_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cam_tasks.cli", "submit", "steps", "--url", flaky.url,
        "--token", TOKEN, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 30)

    assert process.returncode == 0, err.decode()
    assert await flaky.task_count() == 1
    assert (await flaky.runtime.service.get(out.decode().strip())).type == "steps"
    assert len(flaky.faults.keys) == 2
    assert len(set(flaky.faults.keys)) == 1
