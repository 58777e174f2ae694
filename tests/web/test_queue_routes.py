"""The queue routes on the whole composition (``cam_tasks.setup``): two instances on one
database; a pause through one is answered by the other, resume clears it; the list shows
concurrency (declared in the settings or by an executor) and the active tasks of every
instance; unknown queues 404, viewers 403."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any, ClassVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import cam_tasks
from cam_tasks.config import QueueDefinition
from tests.security.support import ADMIN, ALICE, VERA, authenticator, bearer
from tests.web.helpers import PREFIX, Client, EchoExecutor, assert_error, assert_success


class BulkEcho(EchoExecutor):
    """An executor that declares its own queue (no [queues.reports] in the settings)."""

    type = "bulk_echo"
    queue: ClassVar[str] = "reports"


@pytest.fixture
async def instances(mongomock_db: Any) -> AsyncIterator[tuple[Client, Client]]:
    """Two instances (API and workers) on one database."""
    settings = cam_tasks.Settings(queues={"bulk": QueueDefinition(concurrency=2)})
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(2):
            host = web.Application()
            cam_tasks.setup(
                host,
                settings,
                executors=[EchoExecutor(), BulkEcho()],
                database=mongomock_db,
                authenticate=authenticator(),
            )
            clients.append(await stack.enter_async_context(TestClient(TestServer(host))))
        yield clients[0], clients[1]


async def _queues(client: Client, principal: Any = ADMIN) -> dict[str, dict[str, Any]]:
    response = await client.get(f"{PREFIX}/queues", headers=bearer(principal))
    data = await assert_success(response)
    return {queue["name"]: queue for queue in data["queues"]}


async def test_a_pause_through_one_instance_is_answered_by_the_other(
    instances: tuple[Client, Client],
) -> None:
    one, other = instances
    response = await one.post(f"{PREFIX}/queues/bulk/pause", headers=bearer(ALICE))
    paused = await assert_success(response)
    assert (paused["name"], paused["paused"], paused["concurrency"]) == ("bulk", True, 2)
    assert (await _queues(other))["bulk"]["paused"] is True

    response = await other.post(f"{PREFIX}/queues/bulk/resume", headers=bearer(ALICE))
    assert (await assert_success(response))["paused"] is False
    assert (await _queues(one))["bulk"]["paused"] is False


async def test_the_list_has_every_declared_queue_and_the_tasks_of_all_instances(
    instances: tuple[Client, Client],
) -> None:
    one, other = instances
    # Due in an hour: it stays pending whatever the workers of either instance do.
    body = {"type": "bulk_echo", "params": {"text": "x"}, "queue": "reports", "delay_s": 3600}
    response = await other.post(f"{PREFIX}/tasks", json=body, headers=bearer(ALICE))
    await assert_success(response, 202)

    queues = await _queues(one)
    assert set(queues) == {"bulk", "default", "reports"}
    assert set(queues["reports"]) >= {"name", "concurrency", "paused", "pending", "running"}
    assert queues["reports"]["concurrency"] == queues["default"]["concurrency"]
    active = {name: (q["pending"] + q["running"]) for name, q in queues.items()}
    assert active == {"bulk": 0, "default": 0, "reports": 1}

    listed = await one.get(f"{PREFIX}/tasks?queue=reports", headers=bearer(ALICE))
    page = await assert_success(listed)
    assert (page["total"], page["tasks"][0]["queue"]) == (1, "reports")
    listed = await one.get(f"{PREFIX}/tasks?queue=bulk", headers=bearer(ALICE))
    assert (await assert_success(listed))["total"] == 0


async def test_unknown_queues_viewers_and_queries_are_refused(
    instances: tuple[Client, Client],
) -> None:
    one, _ = instances
    response = await one.post(f"{PREFIX}/queues/nope/pause", headers=bearer(ALICE))
    data = await assert_error(response, 404, "not_found")
    assert data["details"][0]["name"] == "nope"
    response = await one.post(f"{PREFIX}/queues/bulk/pause", headers=bearer(VERA))
    await assert_error(response, 403, "forbidden")
    response = await one.get(f"{PREFIX}/queues?name=bulk", headers=bearer(ADMIN))
    await assert_error(response, 400, "bad_request")
    response = await one.get(f"{PREFIX}/tasks?queue=$bad", headers=bearer(ADMIN))
    await assert_error(response, 400, "bad_request")
    assert all(not queue["paused"] for queue in (await _queues(one, VERA)).values())
