"""What the docs' Python fragments get before they run, and what is checked after.

A directive names them (see :mod:`tests.docs.python_samples`): ``prelude=NAME`` enters one of
:data:`PRELUDES`, an async context manager whose docstring lists the names it puts in the
sample's namespace; ``then=NAME`` runs one of :data:`CHECKS` on the namespace and on the names
the sample itself defined.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import cam_tasks
from tests.docs.service import (
    API,
    EXAMPLE_CONFIG,
    FINISHED,
    SAMPLE_PARAMS,
    app_runtime,
    embed_example,
    example_settings,
    exercise,
    run_over_http,
    served,
)
from tests.support.waiting import eventually

Namespace = dict[str, Any]


def sample_settings() -> cam_tasks.Settings:
    """The example configuration without its declared schedule ``nightly-aliyun-sync``: the
    scheduling samples create that schedule themselves."""
    return example_settings(schedules=[])


# -- preludes: names a fragment takes from its context ---------------------------------------


@asynccontextmanager
async def host_app() -> AsyncIterator[Namespace]:
    """What a host module has when it mounts cam_tasks: ``cam_tasks``, ``web``, ``app`` (a fresh
    aiohttp application), ``settings`` (:func:`sample_settings`) and ``client`` (a Motor-shaped
    database client: mongomock-motor)."""
    from mongomock_motor import AsyncMongoMockClient

    client: Any = AsyncMongoMockClient()
    yield {
        "cam_tasks": cam_tasks,
        "web": web,
        "app": web.Application(),
        "settings": sample_settings(),
        "client": client,
    }
    client.close()


@asynccontextmanager
async def settings() -> AsyncIterator[Namespace]:
    """``cam_tasks`` and ``settings`` (:func:`sample_settings`)."""
    yield {"cam_tasks": cam_tasks, "settings": sample_settings()}


@asynccontextmanager
async def cam() -> AsyncIterator[Namespace]:
    """``cam``: a started ``CamTasks`` (:func:`sample_settings`), and ``params``: a valid
    ``sync_assets`` params object."""
    async with cam_tasks.CamTasks(sample_settings()) as runtime:
        yield {
            "cam": runtime,
            "params": {"provider": "aliyun", "account_id": "123", "asset_types": ["ecs"]},
        }


@asynccontextmanager
async def host_runtime() -> AsyncIterator[Namespace]:
    """``app``: the host app of ``examples/embed_app.py`` (with its ``export_assets``
    executor), started; ``runtime``: its ``CamTasks``."""
    app = embed_example().create_app(sample_settings())
    runner = web.AppRunner(app)
    await runner.setup()  # runs the app's start-up: cam_tasks starts its dispatcher
    try:
        yield {"cam_tasks": cam_tasks, "app": app, "runtime": app_runtime(app)}
    finally:
        await runner.cleanup()


@asynccontextmanager
async def hello() -> AsyncIterator[Namespace]:
    """``hello``: a handler of the host's own."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"service": "host"})

    yield {"hello": handler}


@asynccontextmanager
async def host_files() -> AsyncIterator[Namespace]:
    """No names: the working directory holds the host's ``config.toml`` and ``cam.toml``, both
    copies of ``config.example.toml``."""
    text = await asyncio.to_thread(EXAMPLE_CONFIG.read_text, encoding="utf-8")
    for name in ("config.toml", "cam.toml"):
        await asyncio.to_thread(Path(name).write_text, text, encoding="utf-8")
    yield {}


class FakeCloud:
    """Stands for a cloud's SDK: account ``123`` has two regions, each with three assets of
    every type, served two per page."""

    REGIONS = ("region-1", "region-2")
    PER_TYPE = 3

    async def list_regions(self, account_id: str) -> list[str]:
        return list(self.REGIONS) if account_id == "123" else []

    async def pages(
        self, account_id: str, region: str, asset_type: str
    ) -> AsyncIterator[list[dict[str, Any]]]:
        items = [
            {"id": f"{region}/{asset_type}-{n}", "name": f"{asset_type} {n}", "tags": {"n": n}}
            for n in range(self.PER_TYPE)
        ]
        for start in range(0, len(items), 2):
            yield items[start : start + 2]


@asynccontextmanager
async def mycloud_sdk() -> AsyncIterator[Namespace]:
    """``mycloud``: a :class:`FakeCloud`, the "SDK" the provider sample calls."""
    yield {"mycloud": FakeCloud()}


@dataclass(frozen=True)
class Session:
    user: str
    teams: tuple[str, ...]


class Sessions:
    """A host's session store: the cookie ``sid`` value :attr:`SID` is alice's, of team-a."""

    SID = "session-of-alice"

    async def lookup(self, sid: str | None) -> Session | None:
        return Session("alice", ("team-a",)) if sid == self.SID else None


@asynccontextmanager
async def my_sessions() -> AsyncIterator[Namespace]:
    """``my_sessions``: a :class:`Sessions`."""
    yield {"my_sessions": Sessions()}


PRELUDES: Mapping[str, Callable[[], AbstractAsyncContextManager[Namespace]]] = {
    "host_app": host_app,
    "settings": settings,
    "cam": cam,
    "host_runtime": host_runtime,
    "hello": hello,
    "host_files": host_files,
    "mycloud_sdk": mycloud_sdk,
    "my_sessions": my_sessions,
}


# -- checks: what a sample built must work ---------------------------------------------------


def _classes(defined: Namespace, *attributes: str) -> list[type]:
    found = [
        value
        for value in defined.values()
        if isinstance(value, type) and all(hasattr(value, name) for name in attributes)
    ]
    assert found, f"the sample defines no class with {', '.join(attributes)}"
    return found


async def _run_in(runtime: cam_tasks.CamTasks, task_type: str, params: Any) -> cam_tasks.Task:
    task = await runtime.service.submit(task_type, params)
    return await eventually(
        lambda: runtime.service.get(task.id), lambda found: found.status.value in FINISHED
    )


async def runs_executors(namespace: Namespace, defined: Namespace) -> None:
    """Every executor class the sample defines runs a task (:data:`SAMPLE_PARAMS`) to
    ``completed`` in a ``CamTasks`` of the example configuration."""
    for executor_class in _classes(defined, "type", "params_model", "execute"):
        executor = executor_class()
        async with cam_tasks.CamTasks(sample_settings(), executors=[executor]) as runtime:
            task = await _run_in(runtime, executor.type, SAMPLE_PARAMS)
        assert task.status.value == "completed", task


async def runs_executor_factories(namespace: Namespace, defined: Namespace) -> None:
    """Every executor class the sample defines, given to ``CamTasks`` as a factory (the class
    itself, built with the runtime's context), runs a task (:data:`SAMPLE_PARAMS`) to
    ``completed``."""
    for executor_class in _classes(defined, "type", "params_model", "execute"):
        async with cam_tasks.CamTasks(sample_settings(), executors=[executor_class]) as runtime:
            task = await _run_in(runtime, executor_class.type, SAMPLE_PARAMS)
        assert task.status.value == "completed", task


async def refused_at_registration(namespace: Namespace, defined: Namespace) -> None:
    """Every executor class the sample defines is refused by ``CamTasks`` (given as an
    instance) with a ConfigurationError naming its task type."""
    for executor_class in _classes(defined, "type", "params_model", "execute"):
        named = re.escape(repr(executor_class.type))
        with pytest.raises(cam_tasks.ConfigurationError, match=named):
            cam_tasks.CamTasks(sample_settings(), executors=[executor_class()])


async def syncs_providers(namespace: Namespace, defined: Namespace) -> None:
    """Every provider class the sample defines serves a first sync of account ``123``, every
    region and asset type: it completes and adds every asset the cloud holds."""
    cloud = namespace["mycloud"]
    for provider_class in _classes(defined, "name", "asset_types", "regions", "list_assets"):
        provider = provider_class()
        async with cam_tasks.CamTasks(sample_settings(), providers=[provider]) as runtime:
            params = {
                "provider": provider.name,
                "account_id": "123",
                "asset_types": sorted(provider.asset_types),
            }
            task = await _run_in(runtime, "sync_assets", params)
        assert task.status.value == "completed", task
        expected = len(cloud.REGIONS) * len(provider.asset_types) * cloud.PER_TYPE
        assert task.result["added_count"] == task.result["total_count"] == expected, task.result


async def uses_host_database(namespace: Namespace, defined: Namespace) -> None:
    """``app`` runs as :func:`exercise` says, and a sync submitted over HTTP meanwhile is stored
    in the host's database ``client["cam"]``."""

    async def sync_is_stored_in_the_host_database(http: aiohttp.ClientSession, url: str) -> None:
        body = {"provider": "aliyun", "account_id": "123", "asset_types": ["ecs"]}
        view = await run_over_http(http, url, "/tasks/sync-assets", body)
        assert view["status"] == "completed", view
        stored = await namespace["client"]["cam"]["tasks"].find_one({"_id": view["id"]})
        assert stored is not None
        assert stored["status"] == "completed", stored

    await exercise(namespace["app"], also=sync_is_stored_in_the_host_database)


async def authenticates(namespace: Namespace, defined: Namespace) -> None:
    """``app`` refuses a request without the session cookie with the hook's 401 and challenge,
    and serves one with it as the session's principal (its tasks land in the user's team)."""
    sid = namespace["my_sessions"].SID
    async with served(namespace["app"]) as url, aiohttp.ClientSession() as http:
        async with http.get(f"{url}{API}/tasks") as response:
            assert response.status == 401, await response.text()
            assert response.headers["WWW-Authenticate"] == 'Cookie realm="console"'
        body = {"provider": "aliyun", "account_id": "123", "asset_types": ["ecs"]}
        async with http.post(
            f"{url}{API}/tasks/sync-assets", json=body, cookies={"sid": sid}
        ) as response:
            answer = await response.json()
            assert response.status == 202, answer
        async with http.get(
            f"{url}{API}/tasks/{answer['data']['task_id']}", cookies={"sid": sid}
        ) as response:
            view = (await response.json())["data"]
    assert (view["created_by"], view["project_id"]) == ("alice", "team-a"), view


CHECKS: Mapping[str, Callable[[Namespace, Namespace], Awaitable[None]]] = {
    "runs_executors": runs_executors,
    "runs_executor_factories": runs_executor_factories,
    "refused_at_registration": refused_at_registration,
    "syncs_providers": syncs_providers,
    "uses_host_database": uses_host_database,
    "authenticates": authenticates,
}
