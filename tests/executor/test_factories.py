"""Executors given to ``setup()``/``CamTasks`` may be factories of the runtime's context: they
reach the inventory, the settings, the clock and a shared HTTP session the runtime owns,
through documented names only; entry-point plug-ins are built and checked the same way."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import BaseModel

from cam_tasks import (
    Asset,
    AssetInventory,
    CamTasks,
    ConfigurationError,
    PluginContext,
    Settings,
    Task,
    TaskContext,
    TaskStatus,
)
from cam_tasks.domain import AssetScope
from tests.support.waiting import eventually

SCOPE = AssetScope(provider="lab", account_id="123", region="r1", asset_type="vm")


class Empty(BaseModel):
    pass


class InventoryCount:
    """Counts the stored assets of an account: needs the runtime's inventory."""

    type = "inventory_count"
    params_model = Empty

    def __init__(self, context: PluginContext) -> None:
        self.inventory: AssetInventory = context.inventory
        self.database = context.settings.mongo.database

    async def execute(self, params: Empty, ctx: TaskContext) -> dict[str, Any]:
        _, total = await self.inventory.find(account_id="123")
        return {"assets": total, "database": self.database}


class Fetch:
    """GETs a URL through the runtime's shared HTTP session."""

    type = "fetch"
    params_model = Empty

    def __init__(self, context: PluginContext, url: str) -> None:
        self.http = context.http
        self.url = url

    async def execute(self, params: Empty, ctx: TaskContext) -> dict[str, Any]:
        async with self.http.session().get(self.url) as response:
            return {"status": response.status, "body": await response.json()}


class Bare:
    type = "bare"
    params_model = Empty

    async def execute(self, params: Empty, ctx: TaskContext) -> str:
        return "ok"


async def run(cam: CamTasks, task_type: str) -> Task:
    task = await cam.service.submit(task_type, {})
    return await eventually(lambda: cam.service.get(task.id), lambda t: t.status.is_terminal)


async def test_a_factory_class_gets_the_runtime_context_and_reaches_the_inventory() -> None:
    async with CamTasks(Settings(), executors=[InventoryCount], load_plugins=False) as cam:
        now = datetime(2026, 1, 1, tzinfo=UTC)
        asset = Asset(asset_id="vm-1", asset_type="vm", region="r1")
        await cam.stores.inventory.write(SCOPE, upserts=[asset], removals=(), now=now)
        done = await run(cam, "inventory_count")
    assert done.status is TaskStatus.COMPLETED, done.error
    assert done.result == {"assets": 1, "database": cam.settings.mongo.database}


def test_a_class_with_no_argument_is_built_as_a_factory() -> None:
    cam = CamTasks(Settings(), executors=[Bare], load_plugins=False)
    assert isinstance(cam.registry.get("bare").executor, Bare)


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": "world"})

    app = web.Application()
    app.router.add_get("/hello", hello)
    async with TestServer(app, host="127.0.0.1") as test_server:
        yield test_server


async def test_executors_share_one_http_session_that_closes_with_the_runtime(
    server: TestServer,
) -> None:
    url = str(server.make_url("/hello"))

    def make_fetch(context: PluginContext) -> Fetch:
        return Fetch(context, url)

    async with CamTasks(Settings(), executors=[make_fetch], load_plugins=False) as cam:
        done = await run(cam, "fetch")
        session = cam.http.session()
        assert cam.http.session() is session
    assert done.status is TaskStatus.COMPLETED, done.error
    assert done.result == {"status": 200, "body": {"hello": "world"}}
    assert session.closed


def test_a_factory_that_asks_for_something_else_is_refused_naming_it() -> None:
    with pytest.raises(ConfigurationError, match=r"Fetch must take no argument or one"):
        CamTasks(Settings(), executors=[Fetch], load_plugins=False)


def test_a_factory_annotated_with_another_type_is_refused() -> None:
    def make(path: Path) -> Bare:
        return Bare()

    with pytest.raises(ConfigurationError, match=r"requires \(path: Path\)"):
        CamTasks(Settings(), executors=[make], load_plugins=False)


def test_a_factory_that_raises_is_reported_with_its_error() -> None:
    def make(context: PluginContext) -> Bare:
        raise KeyError("EXPORT_TOKEN")

    with pytest.raises(ConfigurationError, match=r"make failed: KeyError: 'EXPORT_TOKEN'"):
        CamTasks(Settings(), executors=[make], load_plugins=False)


def test_what_a_factory_returns_is_checked_like_any_executor() -> None:
    class Sync:
        type = "sync_def"
        params_model = Empty

        def execute(self, params: Empty, ctx: TaskContext) -> str:
            return "never awaited"

    with pytest.raises(ConfigurationError, match=r"'sync_def'.*async def"):
        CamTasks(Settings(), executors=[lambda context: Sync()], load_plugins=False)


PLUGIN_MODULE = """
from pydantic import BaseModel


class Params(BaseModel):
    pass


class Broken:
    type = "broken"
    params_model = Params

    def execute(self, params, ctx):
        return 1
"""


def test_an_entry_point_plugin_is_checked_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real installed distribution (a dist-info directory on sys.path) whose executor has a
    plain ``def execute``: start-up stops, naming the entry point and its package."""
    (tmp_path / "broken_plugin.py").write_text(PLUGIN_MODULE, encoding="utf-8")
    dist_info = tmp_path / "broken_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n", encoding="utf-8"
    )
    (dist_info / "entry_points.txt").write_text(
        "[cam_tasks.executors]\nbroken = broken_plugin:Broken\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(ConfigurationError) as caught:
            CamTasks(Settings())
    finally:
        sys.modules.pop("broken_plugin", None)
    message = str(caught.value)
    assert "plug-in 'broken' (cam_tasks.executors) from package 'broken-plugin'" in message
    assert "async def" in message
