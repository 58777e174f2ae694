"""Shared pieces of the web tests: test executors, a recording notifier, envelope checks."""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from pydantic import BaseModel, ConfigDict, Field

from cam_tasks.domain import ManualClock, Task
from cam_tasks.executor import ExecutorRegistry, TaskContext
from cam_tasks.repository.memory import MemoryTaskRepository
from cam_tasks.service import TaskService

PREFIX = "/api/v1/cam"
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


class EchoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    times: int = Field(default=1, ge=1)


class EchoExecutor:
    type = "echo"
    params_model: builtins.type[BaseModel] = EchoParams

    async def execute(self, params: EchoParams, ctx: TaskContext) -> Any:
        return params.text * params.times


class SyncParams(BaseModel):
    """Shaped like the built-in sync_assets params; the real executor is tested elsewhere."""

    model_config = ConfigDict(extra="forbid")

    provider: str = Field(min_length=1)
    account_id: str | int
    asset_types: list[str] = Field(min_length=1)
    regions: list[str] | None = None


class SyncExecutor:
    type = "sync_assets"
    params_model: builtins.type[BaseModel] = SyncParams

    async def execute(self, params: SyncParams, ctx: TaskContext) -> Any:
        return {"total_count": 0}


class DiscoverParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str = Field(min_length=1)
    account_id: str | int
    regions: list[str] | None = None


class DiscoverExecutor:
    type = "discover_assets"
    params_model: builtins.type[BaseModel] = DiscoverParams

    async def execute(self, params: DiscoverParams, ctx: TaskContext) -> Any:
        return {"total_count": 0}


class RecordingNotifier:
    def __init__(self) -> None:
        self.submitted: list[str] = []
        self.cancelled: list[str] = []

    def task_submitted(self, task: Task) -> None:
        self.submitted.append(task.id)

    def cancel_requested(self, task_id: str) -> None:
        self.cancelled.append(task_id)


def make_registry() -> ExecutorRegistry:
    return ExecutorRegistry([EchoExecutor(), SyncExecutor(), DiscoverExecutor()])


@dataclass
class Api:
    client: Client
    service: TaskService
    repository: MemoryTaskRepository
    clock: ManualClock
    notifier: RecordingNotifier

    async def stored(self) -> int:
        return sum((await self.service.counts()).values())


async def assert_error(response: ClientResponse, status: int, error: str) -> dict[str, Any]:
    """The response is the error envelope for ``status``/``error``, carries a request id, and
    leaks nothing of the server's internals. Returns the envelope's ``data``."""
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/json"
    assert response.headers.get("X-Request-ID")
    for leak in ("Traceback", 'File "', ".py", "Error:", "pymongo", "ServerSelection"):
        assert leak not in text, f"{leak!r} leaked into: {text}"
    body = await response.json()
    assert set(body) == {"code", "msg", "data"}
    assert body["code"] == status
    assert isinstance(body["msg"], str)
    assert body["msg"]
    assert set(body["data"]) == {"error", "details"}
    assert body["data"]["error"] == error
    assert isinstance(body["data"]["details"], list)
    return dict(body["data"])


async def assert_success(response: ClientResponse, status: int = 200) -> Any:
    """The response is the success envelope with ``status``; returns its ``data``."""
    text = await response.text()
    assert response.status == status, text
    assert response.headers.get("X-Request-ID")
    body = await response.json()
    assert set(body) == {"code", "msg", "data"}
    assert (body["code"], body["msg"]) == (0, "success")
    return body["data"]
