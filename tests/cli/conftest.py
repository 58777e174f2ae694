from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import cam_tasks
from cam_tasks.config import load_settings
from tests.cli.support import TOKEN, Service, Steps


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
