"""Fixtures of the security tests.

- ``stack``: the whole composition as a host mounts it (``cam_tasks.setup``), authenticated by
  bearer tokens, on mongomock behind a :class:`RecordingDatabase`, its workers running.
- ``api``: ``create_api`` over a TaskService on the in-memory store, no workers, a manual
  clock: tasks stay where a test puts them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import cam_tasks
from cam_tasks.domain import ManualClock
from cam_tasks.repository.memory import MemoryTaskRepository
from cam_tasks.service import TaskService
from cam_tasks.web import create_api
from tests.security.support import RecordingDatabase, authenticator
from tests.web.helpers import PREFIX, START, Client, EchoExecutor, MakeClient, make_registry


@dataclass
class Stack:
    client: Client
    host: web.Application
    runtime: cam_tasks.CamTasks
    database: RecordingDatabase


@pytest.fixture
async def stack(mongomock_db: Any) -> AsyncIterator[Stack]:
    database = RecordingDatabase(mongomock_db)
    host = web.Application()
    runtime = cam_tasks.setup(
        host,
        cam_tasks.Settings(),
        executors=[EchoExecutor()],
        database=database,
        authenticate=authenticator(),
    )
    async with TestClient(TestServer(host)) as client:
        yield Stack(client, host, runtime, database)


@dataclass
class SecureApi:
    client: Client
    service: TaskService
    repository: MemoryTaskRepository
    clock: ManualClock


@pytest.fixture
async def make_secure_client() -> AsyncIterator[MakeClient]:
    """Serve ``create_api(service, authenticate=<the test tokens>, **options)``."""
    async with AsyncExitStack() as stack:

        async def make(service: TaskService, **options: Any) -> Client:
            options.setdefault("authenticate", authenticator())
            host = web.Application()
            host.add_subapp(PREFIX, create_api(service, **options))
            return await stack.enter_async_context(TestClient(TestServer(host)))

        yield make


@pytest.fixture
async def api(make_secure_client: MakeClient) -> SecureApi:
    clock = ManualClock(START)
    repository = MemoryTaskRepository(clock=clock)
    service = TaskService(repository, make_registry(), clock=clock)
    client = await make_secure_client(service, max_body_bytes=4096)
    return SecureApi(client, service, repository, clock)
