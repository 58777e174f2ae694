"""The API served for real: create_api mounted under /api/v1/cam in a host app, over a
MemoryTaskRepository, reached through aiohttp's test client over TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cam_tasks.domain import ManualClock
from cam_tasks.repository.memory import MemoryTaskRepository
from cam_tasks.service import TaskService
from cam_tasks.web import allow_anonymous, create_api
from tests.web.helpers import (
    PREFIX,
    START,
    Api,
    Client,
    MakeClient,
    RecordingNotifier,
    make_registry,
)


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """Serve ``create_api(service, **options)`` under ``prefix`` in a fresh host app, open to
    anonymous requests unless ``options`` name an ``authenticate`` (tests/security has the
    authenticated API)."""
    async with AsyncExitStack() as stack:

        async def make(service: TaskService, *, prefix: str = PREFIX, **options: Any) -> Client:
            options.setdefault("authenticate", allow_anonymous())
            host = web.Application()
            host.add_subapp(prefix, create_api(service, **options))
            return await stack.enter_async_context(TestClient(TestServer(host)))

        yield make


@pytest.fixture
async def api(make_client: MakeClient) -> Api:
    clock = ManualClock(START)
    repository = MemoryTaskRepository(clock=clock)
    notifier = RecordingNotifier()
    service = TaskService(repository, make_registry(), clock=clock, notifier=notifier)
    client = await make_client(service, max_body_bytes=1024)
    return Api(client, service, repository, clock, notifier)
