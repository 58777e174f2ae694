"""The whole stack as a frontend sees it: submit over HTTP, poll progress, read the result."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import cam_tasks
from cam_tasks.config import load_settings
from tests.support.network import free_port
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parent.parent
API = "/api/v1/cam"


def settings(**queue: Any) -> cam_tasks.Settings:
    return load_settings(
        ROOT / "config.example.toml",
        queue={"progress_interval_s": 0.02, "heartbeat_interval_s": 0.5, **queue},
        providers={
            "static": [
                {"name": "aliyun", "inventory": "builtin:sample_inventory.toml", "latency_s": 0.02}
            ]
        },
    )


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    app = web.Application()
    cam_tasks.setup(app, settings())
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def poll_to_the_end(client: TestClient[Any, Any], task_id: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    async def probe() -> dict[str, Any]:
        response = await client.get(f"{API}/tasks/{task_id}")
        assert response.status == 200
        body = await response.json()
        seen.append(body["data"])
        return body["data"]

    await eventually(probe, lambda t: t["status"] in ("completed", "failed", "cancelled"))
    return seen


async def test_a_frontend_follows_a_sync_from_submit_to_result(client) -> None:
    response = await client.post(
        f"{API}/tasks/sync-assets",
        json={"provider": "aliyun", "account_id": "123", "asset_types": ["ecs", "rds"]},
    )
    assert response.status == 202
    body = await response.json()
    assert body["code"] == 0
    assert body["msg"] == "success"
    task_id = body["data"]["task_id"]
    assert response.headers["Location"].endswith(f"{API}/tasks/{task_id}")

    seen = await poll_to_the_end(client, task_id)
    final = seen[-1]
    assert final["status"] == "completed", final
    assert final["progress"] == 100
    percents = [view["progress"] for view in seen]
    assert percents == sorted(percents)  # never goes back
    messages = {view["message"] for view in seen if view["status"] == "running"}
    assert any(m.startswith("Syncing region ") for m in messages), messages
    result = final["result"]
    for key in ("total_count", "added_count", "updated_count", "unchanged_count", "removed_count"):
        assert isinstance(result[key], int)
    assert result["total_count"] == result["added_count"] > 0
    assert final["started_at"] is not None
    assert final["completed_at"] is not None
    assert final["duration"] >= 0

    # A second sync of the same scope finds everything unchanged.
    again = await client.post(
        f"{API}/tasks/sync-assets",
        json={"provider": "aliyun", "account_id": "123", "asset_types": ["ecs", "rds"]},
    )
    second = (await poll_to_the_end(client, (await again.json())["data"]["task_id"]))[-1]
    assert second["result"]["unchanged_count"] == result["total_count"]
    assert second["result"]["added_count"] == 0


async def test_discover_assets_runs_to_completion(client) -> None:
    response = await client.post(
        f"{API}/tasks/discover-assets", json={"provider": "aliyun", "account_id": "123"}
    )
    assert response.status == 202
    task_id = (await response.json())["data"]["task_id"]
    final = (await poll_to_the_end(client, task_id))[-1]
    assert final["status"] == "completed", final
    assert final["result"]["total_count"] > 0
    assert "cn-shenzhen" in final["result"]["regions"]


async def test_list_cancel_and_delete_over_http(client) -> None:
    ids = []
    for account in ("123", "124", "125"):  # one sync per account: the same one would join
        response = await client.post(
            f"{API}/tasks/sync-assets",
            json={"provider": "aliyun", "account_id": account, "asset_types": ["ecs"]},
        )
        ids.append((await response.json())["data"]["task_id"])
    listed = await (await client.get(f"{API}/tasks?type=sync_assets&limit=2")).json()
    assert listed["data"]["total"] == 3
    assert [t["id"] for t in listed["data"]["tasks"]] == ids[::-1][:2]  # newest first

    cancel = await client.post(f"{API}/tasks/{ids[0]}/cancel")
    assert cancel.status in (200, 409)  # 409 when it already finished
    for task_id in ids:
        await poll_to_the_end(client, task_id)
        deleted = await client.delete(f"{API}/tasks/{task_id}")
        assert deleted.status == 200
        assert (await client.get(f"{API}/tasks/{task_id}")).status == 404


async def test_the_embedding_example_runs_its_own_executor() -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import embed_app
    finally:
        sys.path.remove(str(ROOT / "examples"))
    app = embed_app.create_app(settings())
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/")).status == 200  # the host's own route still works
        response = await client.post(
            f"{API}/tasks",
            json={"type": "export_assets", "params": {"account_id": "9", "pages": 3}},
        )
        assert response.status == 202, await response.text()
        task_id = (await response.json())["data"]["task_id"]
        final = (await poll_to_the_end(client, task_id))[-1]
        assert final["status"] == "completed"
        assert final["result"]["rows"] == 300
        assert final["message"] == "Exported page 3/3"

        bad = await client.post(
            f"{API}/tasks", json={"type": "export_assets", "params": {"pages": 0}}
        )
        assert bad.status == 422
        details = (await bad.json())["data"]["details"]
        assert {tuple(d["loc"][-1:]) for d in details} >= {("account_id",), ("pages",)}


async def test_cam_tasks_serve_runs_the_sample_sync_and_stops_on_sigterm() -> None:
    port = free_port()
    env = {**os.environ, "CAM_TASKS_SERVER__PORT": str(port)}
    config = str(ROOT / "config.example.toml")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cam_tasks.cli",
        "serve",
        "--config",
        config,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}{API}"
    try:
        async with aiohttp.ClientSession() as session:

            async def answers() -> bool:
                try:
                    async with session.get(f"{base}/tasks") as response:
                        return response.status == 200
                except aiohttp.ClientConnectionError:
                    assert process.returncode is None, "cam-tasks serve exited"
                    return False

            await eventually(answers, bool, timeout_s=30, interval_s=0.1)
            async with session.post(
                f"{base}/tasks/sync-assets",
                json={"provider": "aliyun", "account_id": "123", "asset_types": ["ecs"]},
            ) as response:
                assert response.status == 202
                task_id = (await response.json())["data"]["task_id"]

            async def status() -> str:
                async with session.get(f"{base}/tasks/{task_id}") as response:
                    return str((await response.json())["data"]["status"])

            final = await eventually(
                status, lambda s: s not in ("pending", "running"), timeout_s=30
            )
            assert final == "completed"
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        output = (await asyncio.wait_for(process.communicate(), 30))[0].decode()
    assert process.returncode == 0, output
    assert "memory://" in output  # it says clearly that nothing survives a restart
    assert "Traceback" not in output
