"""Health probes and the metrics scrape, as a load balancer and Prometheus see them: mounted by
``cam_tasks.setup`` on the host app, outside the API prefix and its authentication."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

import cam_tasks
from cam_tasks.config import load_settings
from cam_tasks.domain import DatabaseUnavailableError
from cam_tasks.repository import MemoryTaskRepository
from cam_tasks.web import health_routes, metrics_routes
from tests.support.waiting import eventually
from tests.web.helpers import PREFIX, EchoExecutor

Client = TestClient[web.Request, web.Application]
TOKEN = "ops-token-0123456789abcdef"


def settings(**sections: Any) -> cam_tasks.Settings:
    defaults: dict[str, Any] = {
        "mongo": {"uri": "memory://"},
        "queue": {"poll_interval_s": 0.05, "progress_interval_s": 0.02},
        "auth": {"tokens": {"ops": {"token": TOKEN, "role": "admin"}}},
    }
    return load_settings(**{**defaults, **sections})


@pytest.fixture
async def serve() -> AsyncIterator[Any]:
    """Start a host app with ``cam_tasks.setup`` (memory store, an echo executor)."""
    async with AsyncExitStack() as stack:

        async def start(**sections: Any) -> tuple[Client, cam_tasks.CamTasks]:
            app = web.Application()
            runtime = cam_tasks.setup(app, settings(**sections), executors=[EchoExecutor()])
            client = await stack.enter_async_context(TestClient(TestServer(app)))
            return client, runtime

        yield start


# -- liveness and readiness ------------------------------------------------------------------------


async def test_live_answers_while_the_process_serves_http(serve: Any) -> None:
    client, _ = await serve()

    response = await client.get("/health/live")

    assert response.status == 200
    assert await response.json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


async def test_ready_when_the_database_answers_and_the_dispatcher_runs(serve: Any) -> None:
    client, _ = await serve()

    response = await client.get("/health/ready")

    assert response.status == 200
    assert await response.json() == {
        "status": "ok",
        "checks": {"database": {"ok": True}, "dispatcher": {"ok": True}},
    }


async def test_not_ready_once_the_dispatcher_stops(serve: Any) -> None:
    client, runtime = await serve()
    await runtime.dispatcher.close()  # what a graceful stop does first

    response = await client.get("/health/ready")

    assert response.status == 503
    body = await response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["dispatcher"] == {"ok": False, "reason": "not running"}
    assert body["checks"]["database"] == {"ok": True}


async def test_probes_and_metrics_need_no_token_while_the_api_does(serve: Any) -> None:
    client, _ = await serve()

    assert (await client.get("/health/ready")).status == 200
    assert (await client.get("/metrics")).status == 200
    authorized = {"Authorization": f"Bearer {TOKEN}"}
    for path in ("/tasks", "/tasks/stats", "/queue/stats"):  # statistics are API: guarded
        assert (await client.get(f"{PREFIX}{path}")).status == 401
        assert (await client.get(f"{PREFIX}{path}", headers=authorized)).status == 200


async def test_monitoring_settings_turn_the_endpoints_off_or_move_the_metrics(
    serve: Any,
) -> None:
    off, _ = await serve(monitoring={"health": False, "metrics": False})
    moved, _ = await serve(monitoring={"metrics_path": "/internal/metrics"})

    assert (await off.get("/health/live")).status == 404
    assert (await off.get("/metrics")).status == 404
    assert (await moved.get("/metrics")).status == 404
    assert (await moved.get("/internal/metrics")).status == 200


# -- readiness checks, one by one ------------------------------------------------------------------


async def ready_with(**checks: Any) -> tuple[int, dict[str, Any]]:
    app = web.Application()
    app.add_routes(health_routes(checks, timeout_s=0.05))
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/health/ready")
        return response.status, await response.json()


async def test_each_failing_check_is_named_with_its_reason() -> None:
    async def ok() -> str | None:
        return None

    async def down() -> str | None:
        return "unreachable"

    async def hangs() -> str | None:
        await asyncio.Event().wait()
        return None

    async def broken() -> str | None:
        raise RuntimeError("secret internals")

    status, body = await ready_with(database=down, dispatcher=ok, cache=hangs, other=broken)

    assert status == 503
    assert body == {
        "status": "unavailable",
        "checks": {
            "database": {"ok": False, "reason": "unreachable"},
            "dispatcher": {"ok": True},
            "cache": {"ok": False, "reason": "no answer within 0.05 s"},
            "other": {"ok": False, "reason": "check failed"},
        },
    }


class UnreachableStore(MemoryTaskRepository):
    """Pings the way an unreachable database does (the driver's errors become
    DatabaseUnavailableError at the repository boundary, tested there)."""

    async def ping(self) -> None:
        raise DatabaseUnavailableError("database unavailable: ServerSelectionTimeoutError")


async def test_the_runtime_checks_the_store_and_its_dispatcher() -> None:
    runtime = cam_tasks.CamTasks(settings())
    checks = runtime.readiness_checks()
    assert await checks["database"]() is None
    assert await checks["dispatcher"]() == "not running"  # not started yet

    runtime.tasks.inner = UnreachableStore()

    assert await checks["database"]() == "unreachable"
    await runtime.close()


# -- the scrape ---------------------------------------------------------------------------------


async def test_the_scrape_counts_what_the_api_did(serve: Any) -> None:
    client, _ = await serve()
    authorized = {"Authorization": f"Bearer {TOKEN}"}
    submitted = await client.post(
        f"{PREFIX}/tasks", json={"type": "echo", "params": {"text": "hi"}}, headers=authorized
    )
    task_id = (await submitted.json())["data"]["task_id"]

    async def status() -> str:
        response = await client.get(f"{PREFIX}/tasks/{task_id}", headers=authorized)
        return str((await response.json())["data"]["status"])

    await eventually(status, lambda value: value == "completed")

    response = await client.get("/metrics")

    assert response.status == 200
    assert response.content_type == "text/plain"
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(await response.text())
        for sample in family.samples
    }
    assert (
        samples[("cam_tasks_tasks_submitted_total", (("queue", "default"), ("type", "echo")))] == 1
    )
    assert (
        samples[("cam_tasks_tasks_completed_total", (("queue", "default"), ("type", "echo")))] == 1
    )
    assert samples[("cam_tasks_tasks", (("status", "pending"),))] == 0
    assert samples[("cam_tasks_workers", ())] == 5
    assert samples[("cam_tasks_dispatcher_running", ())] == 1
    assert samples[("cam_tasks_database_up", ())] == 1


async def test_a_scraper_asking_for_openmetrics_gets_it() -> None:
    class Fixed:
        async def render(self, accept: str) -> tuple[bytes, str]:
            return accept.encode(), "application/openmetrics-text; version=1.0.0; charset=utf-8"

    app = web.Application()
    app.add_routes(metrics_routes(Fixed(), path="/m"))
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/m", headers={"Accept": "application/openmetrics-text"})
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        assert await response.text() == "application/openmetrics-text"
