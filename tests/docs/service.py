"""The live service the docs' commands talk to, the settings the Python samples get, and the
stand-in for ``web.run_app`` (:func:`exercise`).

Two instances, as ``docker-compose.yml`` runs them: each is ``cam_tasks.setup`` on its own aiohttp
application with the example configuration (``config.example.toml``, what ``scripts/serve``
runs) and the ``export_assets`` executor of ``examples/embed_app.py``, served by aiohttp's
``AppRunner`` on a free loopback port. They share one database (mongomock-motor, in process), so
a task submitted on one is read, and may be run, by the other. The docs' ``localhost:8001``
is the first instance and ``localhost:8002`` the second.

The test's own changes to the example configuration, and nothing else: a bearer token for the
CLI samples (``[auth] tokens``; anonymous use stays on, as the example has it), and a faster
sample provider (``latency_s``) and progress interval so that syncs finish in a fraction of a
second.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

import aiohttp
from aiohttp import web

import cam_tasks
from cam_tasks import CAM_TASKS_KEY
from tests.docs.blocks import ROOT
from tests.support.waiting import eventually

EXAMPLE_CONFIG = ROOT / "config.example.toml"
API = "/api/v1/cam"
#: The bearer token of the test's principal ``docs`` (an admin); the CLI samples send it.
TOKEN = "docs-samples-token-0123456789abcdef"
#: Ports the docs name, in instance order.
DOC_PORTS = (8001, 8002)
FINISHED = frozenset({"completed", "failed", "cancelled"})
#: The params a task type a sample adds is submitted with (see :func:`exercise`).
SAMPLE_PARAMS: Mapping[str, Any] = {"account_id": "123"}


def example_settings(**overrides: Any) -> cam_tasks.Settings:
    """``config.example.toml`` with the test's speed-ups (and ``overrides``)."""
    changes: dict[str, Any] = {
        "queue": {"progress_interval_s": 0.05, "heartbeat_interval_s": 0.5},
        "providers": {
            "static": [
                {"name": "aliyun", "inventory": "builtin:sample_inventory.toml", "latency_s": 0.02}
            ]
        },
    }
    changes.update(overrides)
    return cam_tasks.load_settings(EXAMPLE_CONFIG, **changes)


@cache
def embed_example() -> ModuleType:
    """``examples/embed_app.py`` as a module (registered, so pydantic resolves its names)."""
    name = "cam_tasks_docs_embed_app"
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / "embed_app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@asynccontextmanager
async def served(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port until the block ends; yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@dataclass(frozen=True)
class Service:
    """The running instances: ``urls[i]`` is where instance ``i`` listens."""

    urls: tuple[str, ...]
    runtimes: tuple[cam_tasks.CamTasks, ...]

    @property
    def url(self) -> str:
        return self.urls[0]

    def port_map(self) -> Mapping[int, str]:
        """The docs' port -> the ``host:port`` of the instance standing for it."""
        return {
            doc: url.removeprefix("http://") for doc, url in zip(DOC_PORTS, self.urls, strict=True)
        }


@asynccontextmanager
async def running_service() -> AsyncIterator[Service]:
    """Two instances on one database, ready (``/health/ready`` answers 200) when yielded."""
    from mongomock_motor import AsyncMongoMockClient

    client: Any = AsyncMongoMockClient()
    database = client["cam_docs"]
    settings = example_settings(
        auth={"allow_anonymous": True, "tokens": {"docs": {"token": TOKEN, "role": "admin"}}}
    )
    executor_class = embed_example().ExportAssetsExecutor
    urls: list[str] = []
    runtimes: list[cam_tasks.CamTasks] = []
    async with AsyncExitStack() as stack:
        for _ in DOC_PORTS:
            app = web.Application()
            runtime = cam_tasks.setup(
                app, settings, executors=[executor_class()], database=database
            )
            urls.append(await stack.enter_async_context(served(app)))
            runtimes.append(runtime)
        async with aiohttp.ClientSession() as http:
            for url in urls:
                async with http.get(f"{url}/health/ready") as response:
                    assert response.status == 200, await response.text()
        yield Service(tuple(urls), tuple(runtimes))
    client.close()


async def task_view(http: aiohttp.ClientSession, url: str, task_id: str) -> dict[str, Any]:
    async with http.get(f"{url}{API}/tasks/{task_id}") as response:
        body: dict[str, Any] = await response.json()
        assert response.status == 200, body
        view: dict[str, Any] = body["data"]
        return view


async def run_over_http(
    http: aiohttp.ClientSession, url: str, path: str, body: Mapping[str, Any]
) -> dict[str, Any]:
    """Submit ``body`` to ``{url}{API}{path}`` and wait for the task to finish; its view."""
    async with http.post(f"{url}{API}{path}", json=body) as response:
        answer: dict[str, Any] = await response.json()
        assert response.status == 202, answer
    task_id: str = answer["data"]["task_id"]
    return await eventually(
        lambda: task_view(http, url, task_id), lambda view: view["status"] in FINISHED
    )


def app_runtime(app: web.Application) -> cam_tasks.CamTasks:
    return app[CAM_TASKS_KEY]


async def exercise(
    app: web.Application,
    also: Callable[[aiohttp.ClientSession, str], Awaitable[None]] | None = None,
) -> None:
    """Stand-in for ``web.run_app(app)``: serve ``app`` on a free loopback port with
    ``AppRunner``; ``/health/ready`` answers 200; one task of every type and one sync of every
    provider the app has beyond a bare runtime's run to ``completed`` over HTTP; ``also`` (given
    a client session and the base URL) runs; stop. An app starts once: this serves it once."""
    runtime = app_runtime(app)
    bare = cam_tasks.CamTasks(runtime.settings)  # built-ins and plug-ins; construction is free
    added_types = sorted(runtime.registry.types - bare.registry.types)
    added_providers = sorted(set(runtime.providers.names) - set(bare.providers.names))
    await bare.close()
    async with served(app) as url, aiohttp.ClientSession() as http:
        async with http.get(f"{url}/health/ready") as response:
            assert response.status == 200, await response.text()
        for task_type in added_types:
            body = {"type": task_type, "params": dict(SAMPLE_PARAMS)}
            view = await run_over_http(http, url, "/tasks", body)
            assert view["status"] == "completed", view
        for name in added_providers:
            asset_types = sorted(runtime.providers.get(name).asset_types)
            body = {"provider": name, "account_id": "123", "asset_types": asset_types}
            view = await run_over_http(http, url, "/tasks/sync-assets", body)
            assert view["status"] == "completed", view
        if also is not None:
            await also(http, url)
