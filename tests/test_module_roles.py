"""Process roles of the composition root: API only, served queues, which built-ins register."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import cam_tasks
from cam_tasks.config import load_settings
from cam_tasks.domain import ConfigurationError, ScheduleNotFoundError, TaskStatus, new_task
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parent.parent
API = "/api/v1/cam"
SYNC = {"provider": "aliyun", "account_id": "123", "asset_types": ["ecs"]}


def settings(**sections: Any) -> cam_tasks.Settings:
    return load_settings(
        ROOT / "config.example.toml",
        queue={"progress_interval_s": 0.02, "poll_interval_s": 0.05},
        providers={"static": [{"name": "aliyun", "inventory": "builtin:sample_inventory.toml"}]},
        **sections,
    )


async def serve(app: web.Application) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def api_only() -> AsyncIterator[tuple[TestClient[Any, Any], cam_tasks.CamTasks]]:
    app = web.Application()
    runtime = cam_tasks.setup(app, settings(), workers=False)
    client = await serve(app)
    try:
        yield client, runtime
    finally:
        await client.close()


async def test_an_api_only_process_validates_and_stores_but_runs_nothing(api_only) -> None:
    client, runtime = api_only
    bad = await client.post(f"{API}/tasks/sync-assets", json={**SYNC, "asset_types": "ecs"})
    assert bad.status == 422
    assert (await bad.json())["data"]["error"] == "validation_error"

    accepted = await client.post(f"{API}/tasks/sync-assets", json=SYNC)
    assert accepted.status == 202
    task_id = (await accepted.json())["data"]["task_id"]
    stored = await runtime.tasks.get(task_id)
    assert stored.status is TaskStatus.PENDING
    # Started with the app, yet neither the dispatcher nor the scheduler runs.
    assert runtime.workers is False
    assert not runtime.dispatcher.running
    assert not runtime.scheduler.running
    assert runtime.dispatcher.stats().busy_workers == 0


async def test_an_api_only_process_is_ready_without_a_dispatcher(api_only) -> None:
    client, _ = api_only
    response = await client.get("/health/ready")
    assert response.status == 200
    assert (await response.json())["checks"] == {"database": {"ok": True}}


async def test_the_setting_makes_an_api_only_process_and_the_argument_wins() -> None:
    off = settings(server={"workers": False})
    assert cam_tasks.CamTasks(off).workers is False
    assert cam_tasks.CamTasks(off, workers=True).workers is True
    assert cam_tasks.CamTasks(settings()).workers is True


async def test_a_process_with_workers_reports_its_dispatcher_in_readiness() -> None:
    app = web.Application()
    cam_tasks.setup(app, settings())
    client = await serve(app)
    try:
        body = await (await client.get("/health/ready")).json()
        assert body["checks"]["dispatcher"] == {"ok": True}
    finally:
        await client.close()


def test_served_queues_are_every_declared_queue_unless_selected() -> None:
    declared = {"queues": {"default": {"concurrency": 3}, "exports": {"concurrency": 7}}}
    assert cam_tasks.CamTasks(settings(**declared)).served_queues == {"default": 3, "exports": 7}
    picked = settings(**declared, worker={"queues": ["exports"]})
    assert cam_tasks.CamTasks(picked).served_queues == {"exports": 7}


def test_selecting_an_undeclared_queue_is_a_configuration_error() -> None:
    wrong = settings(worker={"queues": ["default", "exprots"]})
    with pytest.raises(ConfigurationError, match="'exprots' are not declared"):
        cam_tasks.CamTasks(wrong)


def test_builtin_executors_register_as_configured() -> None:
    assert cam_tasks.CamTasks(settings()).registry.types == {"sync_assets", "discover_assets"}
    only = settings(executors={"builtin": ["discover_assets"]})
    assert cam_tasks.CamTasks(only).registry.types == {"discover_assets"}
    assert cam_tasks.CamTasks(settings(executors={"builtin": []})).registry.types == frozenset()


async def test_a_process_registering_one_type_answers_422_for_another() -> None:
    app = web.Application()
    cam_tasks.setup(app, settings(executors={"builtin": ["discover_assets"]}), workers=False)
    client = await serve(app)
    try:
        response = await client.post(f"{API}/tasks/sync-assets", json=SYNC)
        assert response.status == 422
        assert (await response.json())["data"]["error"] == "unknown_task_type"
        generic = await client.post(f"{API}/tasks", json={"type": "sync_assets", "params": SYNC})
        assert generic.status == 422
    finally:
        await client.close()


async def test_a_process_registering_one_type_never_claims_another() -> None:
    runtime = cam_tasks.CamTasks(settings(executors={"builtin": ["discover_assets"]}))
    async with runtime:
        now = datetime.now(UTC)
        # Stored first, so a process that claimed any type would take it first.
        foreign = await runtime.tasks.insert(
            new_task(task_type="sync_assets", params=SYNC, now=now)
        )
        own = await runtime.service.submit(
            "discover_assets", {"provider": "aliyun", "account_id": "123"}
        )
        done = await eventually(
            lambda: runtime.tasks.get(own.id), lambda task: task.status.is_terminal
        )
        assert done.status is TaskStatus.COMPLETED
        assert (await runtime.tasks.get(foreign.id)).status is TaskStatus.PENDING


async def test_a_schedule_of_a_builtin_left_out_is_left_to_the_processes_that_register_it() -> None:
    # config.example.toml declares the sync_assets schedule "nightly-aliyun-sync".
    runtime = cam_tasks.CamTasks(settings(executors={"builtin": ["discover_assets"]}))
    async with runtime:
        with pytest.raises(ScheduleNotFoundError):
            await runtime.schedules.get("nightly-aliyun-sync")
    everything = cam_tasks.CamTasks(settings())
    async with everything:
        assert (await everything.schedules.get("nightly-aliyun-sync")).type == "sync_assets"


async def test_a_schedule_of_a_type_nobody_provides_still_stops_the_start() -> None:
    typo = {"name": "typo", "expression": "@daily", "type": "sync_asset"}
    runtime = cam_tasks.CamTasks(settings(schedules=[typo]))
    with pytest.raises(ConfigurationError, match="schedule 'typo'"):
        await runtime.start()
    await runtime.close()
