"""Every documented error of the API: its status, its envelope, and that it changed nothing.

Each answer is checked by ``assert_error``: the error envelope, a request id, and no traceback,
file path, class name or driver message in the body.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import logging
import pkgutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from pymongo import AsyncMongoClient

import cam_tasks.web
from cam_tasks.domain import MAX_PAGE_SIZE, CamTasksError, ManualClock, Task
from cam_tasks.executor import ExecutorRegistry
from cam_tasks.repository.memory import MemoryTaskRepository
from cam_tasks.repository.mongo import MongoTaskRepository
from cam_tasks.service import TaskService
from cam_tasks.web import allow_anonymous, create_api
from tests.web.helpers import (
    PREFIX,
    START,
    Api,
    DiscoverExecutor,
    EchoExecutor,
    MakeClient,
    assert_error,
    assert_success,
    make_registry,
)

ECHO = {"type": "echo", "params": {"text": "x"}}


async def submit(api: Api) -> str:
    response = await api.client.post(f"{PREFIX}/tasks", json=ECHO)
    assert response.status == 202
    return str((await response.json())["data"]["task_id"])


# -- 400 malformed JSON, query or header ---------------------------------------------------------


@pytest.mark.parametrize("raw", [b"{", b"", b"   ", b'{"type": "echo",}', b'{"text": "\xff"}'])
async def test_malformed_json_is_a_400_and_stores_nothing(api: Api, raw: bytes) -> None:
    response = await api.client.post(
        f"{PREFIX}/tasks", data=raw, headers={"Content-Type": "application/json"}
    )
    data = await assert_error(response, 400, "bad_request")
    assert data["details"][0]["loc"] == ["body"]
    assert await api.stored() == 0


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("status=done", ["query", "status", 0]),
        ("status=pending,", ["query", "status", 1]),
        ("limit=0", ["query", "limit"]),
        (f"limit={MAX_PAGE_SIZE + 1}", ["query", "limit"]),
        ("limit=ten", ["query", "limit"]),
        ("offset=-1", ["query", "offset"]),
        ("offset=99999999999999999999999", ["query", "offset"]),
        ("type=", ["query", "type"]),
        ("status=pending&status=running", ["query", "status"]),
        ("limit=1&limit=2", ["query", "limit"]),
    ],
)
async def test_a_malformed_list_query_is_a_400(api: Api, query: str, loc: list[Any]) -> None:
    response = await api.client.get(f"{PREFIX}/tasks?{query}")
    data = await assert_error(response, 400, "bad_request")
    assert loc in [detail["loc"] for detail in data["details"]]


@pytest.mark.parametrize(
    ("query", "unknown"),
    [
        ("sort=-created_at", ["sort"]),
        ("status[$ne]=pending", ["status[$ne]"]),
        ("type[$regex]=.*&owner=me&limit=1", ["owner", "type[$regex]"]),
    ],
)
async def test_unknown_query_keys_are_a_400_naming_them(
    api: Api, query: str, unknown: list[str]
) -> None:
    await submit(api)
    response = await api.client.get(f"{PREFIX}/tasks?{query}")
    data = await assert_error(response, 400, "bad_request")
    assert data["details"][0]["unknown"] == unknown


@pytest.mark.parametrize("key", ["k" * 201, "tab\there"])
async def test_a_malformed_idempotency_key_header_is_a_400(api: Api, key: str) -> None:
    response = await api.client.post(f"{PREFIX}/tasks", json=ECHO, headers={"Idempotency-Key": key})
    await assert_error(response, 400, "bad_request")
    assert await api.stored() == 0


# The header's rule (above), for the body: "tab\there" and "k" * 201 are refused in both forms.
@pytest.mark.parametrize(
    "key", ["nul\x00here", "new\nline", "bidi\u202eoverride", "tab\there", "k" * 201, ""]
)
async def test_an_invalid_idempotency_key_in_the_body_is_a_422_like_the_header(
    api: Api, key: str
) -> None:
    response = await api.client.post(f"{PREFIX}/tasks", json={**ECHO, "idempotency_key": key})
    data = await assert_error(response, 422, "validation_error")
    assert [detail["loc"] for detail in data["details"]] == [["idempotency_key"]]
    assert await api.stored() == 0


async def test_an_invalid_idempotency_key_in_a_batch_is_located_by_its_index(api: Api) -> None:
    batch = [{**ECHO, "idempotency_key": "fine"}, {**ECHO, "idempotency_key": "bad\x00"}]
    response = await api.client.post(f"{PREFIX}/tasks", json=batch)
    data = await assert_error(response, 422, "validation_error")
    assert [detail["loc"] for detail in data["details"]] == [[1, "idempotency_key"]]
    assert await api.stored() == 0


# -- 404 / 405 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/tasks/missing"),
        ("POST", "/tasks/missing/cancel"),
        ("POST", "/tasks/missing/retry"),
        ("DELETE", "/tasks/missing"),
    ],
)
async def test_an_unknown_task_is_a_404(api: Api, method: str, path: str) -> None:
    data = await assert_error(await api.client.request(method, f"{PREFIX}{path}"), 404, "not_found")
    assert data["details"] == [{"task_id": "missing"}]


@pytest.mark.parametrize("path", ["/nowhere", "/tasks/x/y/z", "", "/"])
async def test_an_unknown_route_is_a_404(api: Api, path: str) -> None:
    await assert_error(await api.client.get(f"{PREFIX}{path}"), 404, "not_found")


@pytest.mark.parametrize(("method", "path"), [("PUT", "/tasks"), ("PATCH", "/tasks/abc")])
async def test_a_wrong_method_is_a_405_with_allow(api: Api, method: str, path: str) -> None:
    response = await api.client.request(method, f"{PREFIX}{path}")
    data = await assert_error(response, 405, "method_not_allowed")
    allowed = set(response.headers["Allow"].split(","))
    assert "GET" in allowed
    assert data["details"] == [{"allowed_methods": sorted(allowed)}]


# -- 409 illegal transitions ---------------------------------------------------------------------


async def test_deleting_an_active_task_is_a_409_naming_its_status(api: Api) -> None:
    task_id = await submit(api)
    data = await assert_error(await api.client.delete(f"{PREFIX}/tasks/{task_id}"), 409, "conflict")
    assert data["details"] == [{"task_id": task_id, "status": "pending", "action": "delete"}]
    assert await api.stored() == 1


async def test_retrying_a_pending_task_is_a_409(api: Api) -> None:
    task_id = await submit(api)
    response = await api.client.post(f"{PREFIX}/tasks/{task_id}/retry")
    data = await assert_error(response, 409, "conflict")
    assert data["details"][0]["status"] == "pending"


async def test_cancelling_a_finished_task_is_a_409(api: Api) -> None:
    task_id = await submit(api)
    claimed = await api.repository.claim(
        types={"echo"}, owner="w1", now=api.clock.now(), lease_s=60
    )
    assert claimed is not None
    await api.repository.complete(claimed.lease, now=api.clock.now(), result="x")
    response = await api.client.post(f"{PREFIX}/tasks/{task_id}/cancel")
    data = await assert_error(response, 409, "conflict")
    assert data["details"][0]["status"] == "completed"


# -- 408 / 413 / 415 -----------------------------------------------------------------------------


async def test_a_body_over_the_limit_is_a_413(api: Api) -> None:
    body = {"type": "echo", "params": {"text": "x" * 2000}}
    await assert_error(
        await api.client.post(f"{PREFIX}/tasks", json=body), 413, "payload_too_large"
    )
    assert await api.stored() == 0


async def test_a_chunked_body_over_the_limit_is_a_413(api: Api) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"type": "echo", "params": {"text": "'
        for _ in range(20):
            yield b"x" * 100
        yield b'"}}'

    response = await api.client.post(
        f"{PREFIX}/tasks", data=chunks(), headers={"Content-Type": "application/json"}
    )
    await assert_error(response, 413, "payload_too_large")
    assert await api.stored() == 0


@pytest.mark.parametrize("declared", [None, "200"], ids=["chunked", "content-length"])
async def test_a_body_that_stops_arriving_is_a_408(
    make_client: MakeClient, declared: str | None
) -> None:
    service = TaskService(MemoryTaskRepository(), make_registry(), clock=ManualClock(START))
    client = await make_client(service, body_read_timeout_s=0.2)
    stalled = asyncio.Event()  # set only once the answer is in: the rest never comes before

    async def dribble() -> AsyncIterator[bytes]:
        yield b'{"type": "echo", "params": {"text": "'
        await stalled.wait()

    headers = {"Content-Type": "application/json"}
    if declared is not None:
        headers["Content-Length"] = declared
    try:
        response = await client.post(f"{PREFIX}/tasks", data=dribble(), headers=headers)
        data = await assert_error(response, 408, "request_timeout")
    finally:
        stalled.set()
    assert data["details"] == [{"timeout_s": 0.2, "received_bytes": 37}]
    assert sum((await service.counts()).values()) == 0


def test_the_body_read_timeout_must_be_positive() -> None:
    service = TaskService(MemoryTaskRepository(), make_registry(), clock=ManualClock(START))
    with pytest.raises(ValueError, match="body_read_timeout_s"):
        create_api(service, authenticate=allow_anonymous(), body_read_timeout_s=0)


async def test_a_body_exactly_at_the_limit_is_accepted(api: Api) -> None:
    head, tail = b'{"type": "echo", "params": {"text": "', b'"}}'
    raw = head + b"x" * (1024 - len(head) - len(tail)) + tail
    assert len(raw) == 1024
    response = await api.client.post(
        f"{PREFIX}/tasks", data=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status == 202


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
async def test_a_body_that_is_not_json_is_a_415(api: Api, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await api.client.post(
        f"{PREFIX}/tasks/sync-assets", data=b'{"provider": "p"}', headers=headers
    )
    await assert_error(response, 415, "unsupported_media_type")
    assert await api.stored() == 0


async def test_json_with_a_charset_and_a_suffix_type_is_accepted(api: Api) -> None:
    for content_type in ("application/json; charset=UTF-8", "application/vnd.cam+json"):
        response = await api.client.post(
            f"{PREFIX}/tasks",
            data=b'{"type": "echo", "params": {"text": "x"}}',
            headers={"Content-Type": content_type},
        )
        assert response.status == 202, content_type


# -- 422 invalid parameters or unknown type ------------------------------------------------------


@pytest.mark.parametrize("path", ["/tasks", "/tasks/sync-assets", "/tasks/discover-assets"])
@pytest.mark.parametrize("body", [[1, 2], "text", 42, None])
async def test_a_body_that_is_not_an_object_is_a_422(api: Api, path: str, body: Any) -> None:
    response = await api.client.post(
        f"{PREFIX}{path}", data=orjson.dumps(body), headers={"Content-Type": "application/json"}
    )
    data = await assert_error(response, 422, "validation_error")
    assert data["details"] == [
        {"loc": ["body"], "msg": "Input should be a JSON object", "type": "model_type"}
    ]
    assert await api.stored() == 0


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"type": "echo", "params": {"text": ""}}, ["params", "text"]),
        ({"type": "echo", "params": {"text": "x", "secret": 1}}, ["params", "secret"]),
        ({"type": "echo", "params": []}, ["params"]),
        ({"params": {"text": "x"}}, ["type"]),
        ({**ECHO, "colour": "red"}, ["colour"]),
        ({**ECHO, "priority": "top"}, ["priority"]),
        ({**ECHO, "priority": 9}, ["priority"]),
        ({**ECHO, "max_retries": "3"}, ["max_retries"]),
        ({**ECHO, "max_retries": -1}, ["max_retries"]),
        ({**ECHO, "max_retries": 2**64 - 1}, ["max_retries"]),
        ({**ECHO, "run_at": "tomorrow"}, ["run_at"]),
        ({**ECHO, "params": None}, ["params"]),
        ({**ECHO, "timeout_s": 0}, ["timeout_s"]),
        ({**ECHO, "delay_s": -5}, ["delay_s"]),
        ({**ECHO, "run_at": "2026-03-01T12:00:00"}, ["run_at"]),
        ({**ECHO, "run_at": "2026-03-01T12:00:00Z", "delay_s": 1}, ["delay_s"]),
        ({**ECHO, "idempotency_key": ""}, ["idempotency_key"]),
    ],
)
async def test_invalid_submissions_are_a_422_with_field_details(
    api: Api, body: dict[str, Any], loc: list[Any]
) -> None:
    response = await api.client.post(f"{PREFIX}/tasks", json=body)
    data = await assert_error(response, 422, "validation_error")
    assert loc in [detail["loc"] for detail in data["details"]]
    assert all({"loc", "msg", "type"} <= set(detail) for detail in data["details"])
    assert await api.stored() == 0
    assert api.notifier.submitted == []


async def test_invalid_params_on_a_dedicated_route_are_located_in_the_body(api: Api) -> None:
    response = await api.client.post(
        f"{PREFIX}/tasks/sync-assets", json={"provider": "p", "asset_types": [], "extra": 1}
    )
    data = await assert_error(response, 422, "validation_error")
    locs = sorted(tuple(d["loc"]) for d in data["details"])
    assert locs == [("account_id",), ("asset_types",), ("extra",)]
    assert await api.stored() == 0


async def test_a_bodys_idempotency_key_is_the_tasks_and_the_header_keys_the_rest(api: Api) -> None:
    # The header is the key of a task that names none of its own (so no request the document
    # allows is refused for giving both).
    own = await api.client.post(
        f"{PREFIX}/tasks", json={**ECHO, "idempotency_key": "a"}, headers={"Idempotency-Key": "b"}
    )
    first = (await assert_success(own, 202))["task_id"]
    assert (await api.service.get(first)).idempotency_key == "a"
    again = await api.client.post(f"{PREFIX}/tasks", json={**ECHO, "idempotency_key": "a"})
    assert (await assert_success(again, 202))["task_id"] == first
    keyed = await api.client.post(f"{PREFIX}/tasks", json=ECHO, headers={"Idempotency-Key": "b"})
    second = (await assert_success(keyed, 202))["task_id"]
    assert second != first
    assert (await api.service.get(second)).idempotency_key == "b"
    assert await api.stored() == 2


async def test_an_unknown_type_is_a_422_listing_the_known_ones(api: Api) -> None:
    response = await api.client.post(f"{PREFIX}/tasks", json={"type": "nope", "params": {}})
    data = await assert_error(response, 422, "unknown_task_type")
    assert data["details"][0]["loc"] == ["type"]
    assert data["details"][0]["known"] == ["discover_assets", "echo", "sync_assets"]
    assert await api.stored() == 0


async def test_a_dedicated_route_without_its_executor_is_a_422(make_client: MakeClient) -> None:
    registry = ExecutorRegistry([EchoExecutor(), DiscoverExecutor()])
    service = TaskService(MemoryTaskRepository(), registry, clock=ManualClock())
    client = await make_client(service)
    response = await client.post(
        f"{PREFIX}/tasks/sync-assets", json={"provider": "p", "asset_types": ["e"], "account_id": 1}
    )
    await assert_error(response, 422, "unknown_task_type")


# -- 429 queue full ------------------------------------------------------------------------------


async def test_a_full_queue_is_a_429_with_retry_after(make_client: MakeClient) -> None:
    repository = MemoryTaskRepository()
    service = TaskService(
        repository,
        make_registry(),
        clock=ManualClock(START),
        max_pending=1,
        queue_full_retry_after_s=2.5,
    )
    client = await make_client(service)
    assert (await client.post(f"{PREFIX}/tasks", json=ECHO)).status == 202

    response = await client.post(f"{PREFIX}/tasks", json=ECHO)

    data = await assert_error(response, 429, "queue_full")
    assert response.headers["Retry-After"] == "3"
    assert data["details"] == [{"retry_after_s": 2.5}]
    assert sum((await service.counts()).values()) == 1


# -- 503 database unavailable --------------------------------------------------------------------


@pytest.fixture
async def unreachable_service() -> AsyncIterator[TaskService]:
    # Port 1 on loopback: nothing listens, so server selection fails after 200 ms.
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200"
    )
    repository = MongoTaskRepository(client["cam_tasks_unreachable"])
    yield TaskService(repository, make_registry(), clock=ManualClock(START))
    await client.close()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/tasks", ECHO),
        ("POST", "/tasks/discover-assets", {"provider": "p", "account_id": 1}),
        ("GET", "/tasks/abc", None),
        ("GET", "/tasks", None),
        ("POST", "/tasks/abc/cancel", None),
        ("DELETE", "/tasks/abc", None),
    ],
)
async def test_an_unreachable_database_is_a_503(
    make_client: MakeClient,
    unreachable_service: TaskService,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    client = await make_client(unreachable_service)
    response = await client.request(method, f"{PREFIX}{path}", json=body)
    data = await assert_error(response, 503, "database_unavailable")
    assert data["details"] == []
    # A submit may have been stored before the store stopped answering: say how to retry it.
    assert "safe to retry only with an Idempotency-Key" in (await response.json())["msg"]


# -- 500 anything else ---------------------------------------------------------------------------


class ExplodingRepository(MemoryTaskRepository):
    """A repository with a bug: reads fail with an exception nobody anticipated."""

    async def get(self, task_id: str) -> Task:
        raise RuntimeError('secret password in File "/srv/app/cam_tasks/repository/x.py"')


async def test_an_unexpected_error_is_a_generic_500_logged_with_the_request_id(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    service = TaskService(ExplodingRepository(), make_registry(), clock=ManualClock(START))
    client = await make_client(service)

    with caplog.at_level(logging.ERROR, logger="cam_tasks.web"):
        response = await client.get(f"{PREFIX}/tasks/abc", headers={"X-Request-ID": "req-500"})

    data = await assert_error(response, 500, "internal_error")
    assert "secret" not in await response.text()
    assert data["details"] == [{"request_id": "req-500"}]
    assert response.headers["X-Request-ID"] == "req-500"
    [record] = [r for r in caplog.records if r.name.startswith("cam_tasks.web")]
    assert getattr(record, "request_id", None) == "req-500"
    assert record.exc_info is not None


# -- one exception tree --------------------------------------------------------------------------

WEB_MODULES = [
    importlib.import_module(module.name)
    for module in pkgutil.iter_modules(cam_tasks.web.__path__, "cam_tasks.web.")
]


def test_every_error_the_web_layer_defines_is_a_documented_cam_tasks_error() -> None:
    defined = [
        cls
        for module in WEB_MODULES
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == module.__name__ and issubclass(cls, BaseException)
    ]
    assert {cls.__name__ for cls in defined} >= {
        "ApiError",
        "AuthenticationError",
        "RateLimitedError",
    }
    for cls in defined:
        assert issubclass(cls, CamTasksError), cls
        assert cls.__doc__, cls
        # Drawn in the web branch of the tree (cam_tasks.web.errors' docstring).
        assert f"── {cls.__name__} " in (cam_tasks.web.errors.__doc__ or ""), cls


def test_nothing_in_the_web_layer_raises_the_bare_root() -> None:
    for module in WEB_MODULES:
        tree = ast.parse(Path(module.__file__ or "").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and node.exc is not None:
                raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                assert not (isinstance(raised, ast.Name) and raised.id == "CamTasksError"), (
                    f"{module.__name__} line {node.lineno} raises the bare CamTasksError"
                )


@pytest.mark.parametrize("path", ["/tasks/sync-assets", "/tasks/discover-assets"])
@pytest.mark.parametrize("method", ["OPTIONS", "PUT", "PATCH"])
async def test_a_fixed_path_allows_only_its_own_methods(api: Api, method: str, path: str) -> None:
    # /tasks/{task_id} matches these paths too; its GET and DELETE are not theirs.
    response = await api.client.request(method, f"{PREFIX}{path}")
    data = await assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "POST"
    assert data["details"] == [{"allowed_methods": ["POST"]}]
