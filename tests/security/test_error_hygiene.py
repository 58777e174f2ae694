"""Error hygiene: when the database fails or an executor fails, what reaches a client holds no
traceback, file path, class name, database message or process identity; every answer carries a
request id, and the log line of every server error names it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel, ConfigDict
from pymongo.errors import OperationFailure, ServerSelectionTimeoutError

import cam_tasks
from cam_tasks.config import QueueDefinition
from cam_tasks.domain import PermanentError
from cam_tasks.executor import TaskContext
from tests.security.support import (
    ADMIN,
    PUBLIC_TEMPLATES,
    api_app,
    authenticator,
    bearer,
    request,
    routes_of,
)
from tests.support.waiting import eventually
from tests.web.helpers import PREFIX, Client, EchoExecutor

#: What must never be in a body a client reads.
LEAKS = (
    "Traceback",
    'File "',
    ".py",
    "/srv/",
    "OperationFailure",
    "ServerSelectionTimeoutError",
    "errmsg",
    "hunter2",
    "pymongo",
    "mongomock",
)


class FaultyCollection:
    def __init__(self, inner: Any, database: FaultyDatabase) -> None:
        self._inner = inner
        self._database = database

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute
        database = self._database

        def call(*args: Any, **kwargs: Any) -> Any:
            if database.fault is not None:
                raise database.fault
            return attribute(*args, **kwargs)

        return call


class FaultyDatabase:
    """A database handle that raises ``fault`` from every collection call while it is set."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.fault: Exception | None = None

    def __getitem__(self, name: str) -> FaultyCollection:
        return FaultyCollection(self._inner[name], self)

    def get_collection(self, name: str, **options: Any) -> FaultyCollection:
        return FaultyCollection(self._inner.get_collection(name, **options), self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class FailParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    how: str


class FailingExecutor:
    """Fails the way real code does: deep in a call chain, chained to a lower-level error whose
    text holds a path and a password."""

    type = "fail"
    params_model = FailParams
    max_retries = 0

    async def execute(self, params: FailParams, ctx: TaskContext) -> Any:
        try:
            raise OSError("cannot read /srv/cam/credentials.ini: password=hunter2")
        except OSError as exc:
            if params.how == "permanent":
                raise PermanentError("account 42 cannot be reached") from exc
            raise LookupError("region cn-north-9 is unknown") from exc


@dataclass
class Faulty:
    client: Client
    host: web.Application
    runtime: cam_tasks.CamTasks
    database: FaultyDatabase


@pytest.fixture
async def faulty(mongomock_db: Any) -> AsyncIterator[Faulty]:
    database = FaultyDatabase(mongomock_db)
    host = web.Application()
    runtime = cam_tasks.setup(
        host,
        # A queue named as _every_route fills `{name}`: its pause reaches the database.
        cam_tasks.Settings(queues={"nightly": QueueDefinition()}),
        executors=[EchoExecutor(), FailingExecutor()],
        database=database,
        authenticate=authenticator(),
    )
    async with TestClient(TestServer(host)) as client:
        try:
            yield Faulty(client, host, runtime, database)
        finally:
            database.fault = None  # let the runtime stop cleanly


def assert_clean(body: bytes, where: str) -> None:
    text = body.decode(errors="replace")
    for leak in LEAKS:
        assert leak not in text, f"{where}: {leak!r} leaked into {text[:300]}"


async def _every_route(faulty: Faulty, task_id: str) -> list[tuple[str, int, Mapping[str, str]]]:
    answers = []
    for route in routes_of(api_app(faulty.host, PREFIX)):
        path = route.path(task_id=task_id, name="nightly")
        body = b'{"type": "echo", "params": {"text": "x"}}' if route.has_body else None
        status, headers, raw = await request(
            faulty.client, route.method, path, headers=bearer(ADMIN), data=body
        )
        where = f"{route.method} {path}"
        assert_clean(raw, where)
        assert headers.get("X-Request-ID"), where
        answers.append((where, status, headers))
    return answers


async def _submit(faulty: Faulty, body: dict[str, Any]) -> str:
    response = await faulty.client.post(f"{PREFIX}/tasks", json=body, headers=bearer(ADMIN))
    assert response.status == 202, await response.text()
    return str((await response.json())["data"]["task_id"])


async def test_an_unreachable_database_is_a_clean_503_on_every_route(faulty: Faulty) -> None:
    task_id = await _submit(faulty, {"type": "echo", "params": {"text": "x"}, "delay_s": 3600})
    faulty.database.fault = ServerSelectionTimeoutError("db-7.internal:27017: timed out")

    answers = await _every_route(faulty, task_id)

    # The OpenAPI document, its page and the provider list never read the database: they
    # answer as usual.
    no_database = {*PUBLIC_TEMPLATES, f"{PREFIX}/providers"}
    statuses = {status for where, status, _ in answers if where.split()[1] not in no_database}
    assert statuses <= {503, 405, 422, 400}
    assert sum(1 for _, status, _ in answers if status == 503) >= 10


async def test_a_database_error_is_a_generic_500_logged_with_its_request_id(
    faulty: Faulty, caplog: pytest.LogCaptureFixture
) -> None:
    task_id = await _submit(faulty, {"type": "echo", "params": {"text": "x"}, "delay_s": 3600})
    faulty.database.fault = OperationFailure(
        "errmsg: $where is not allowed in this context", code=2, details={"errmsg": "hunter2"}
    )

    with caplog.at_level(logging.ERROR, logger="cam_tasks.web"):
        answers = await _every_route(faulty, task_id)

    failed = [(where, headers) for where, status, headers in answers if status == 500]
    assert failed, answers
    logged = {getattr(r, "request_id", None) for r in caplog.records if r.exc_info}
    for where, headers in failed:
        assert headers["X-Request-ID"] in logged, where


async def test_a_failing_executor_shows_its_own_message_and_nothing_beneath(
    faulty: Faulty,
) -> None:
    permanent = await _submit(faulty, {"type": "fail", "params": {"how": "permanent"}})
    unexpected = await _submit(faulty, {"type": "fail", "params": {"how": "unexpected"}})

    async def view(task_id: str) -> tuple[int, dict[str, Any], bytes]:
        status, _, raw = await request(
            faulty.client, "GET", f"{PREFIX}/tasks/{task_id}", headers=bearer(ADMIN)
        )
        return status, orjson.loads(raw)["data"], raw

    for task_id, error in [
        (permanent, {"type": "PermanentError", "message": "account 42 cannot be reached"}),
        (unexpected, {"type": "LookupError", "message": "region cn-north-9 is unknown"}),
    ]:
        status, data, raw = await eventually(
            partial(view, task_id), lambda v: v[1]["status"] == "failed"
        )
        assert status == 200
        assert data["error"] == error
        assert_clean(raw, task_id)
        assert faulty.runtime.dispatcher.owner not in raw.decode()
        assert all("owner" not in attempt for attempt in data["history"])
