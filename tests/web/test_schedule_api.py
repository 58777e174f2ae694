"""The schedule endpoints, through a real server: what each answers, refuses and changes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import cam_tasks
from cam_tasks.config import load_settings
from cam_tasks.domain import ConfigurationError, ManualClock, Principal, Role
from cam_tasks.repository import MemoryScheduleRepository, MemoryTaskRepository
from cam_tasks.service import ScheduleService, TaskService
from cam_tasks.web import allow_anonymous
from tests.support.waiting import eventually
from tests.web.helpers import (
    PREFIX,
    START,
    Client,
    EchoExecutor,
    MakeClient,
    assert_error,
    assert_success,
    make_registry,
)

RFC3339_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
VIEW_FIELDS = {
    "name",
    "expression",
    "timezone",
    "type",
    "params",
    "priority",
    "priority_name",
    "active",
    "next_run_at",
    "last_run_at",
    "last_task_id",
    "last_error",
    "created_at",
    "updated_at",
}
NIGHTLY: Mapping[str, Any] = {
    "name": "nightly",
    "expression": "30 2 * * *",
    "timezone": "Asia/Shanghai",
    "type": "echo",
    "params": {"text": "hi"},
    "priority": "high",
}


@dataclass
class ScheduleApi:
    client: Client
    tasks: TaskService
    schedules: ScheduleService
    clock: ManualClock

    async def create(self, **overrides: Any) -> dict[str, Any]:
        response = await self.client.post(f"{PREFIX}/schedules", json={**NIGHTLY, **overrides})
        data: dict[str, Any] = await assert_success(response, 201)
        return data


def _services() -> tuple[TaskService, ScheduleService, ManualClock]:
    clock = ManualClock(START)  # 2026-03-01 12:00 UTC = 20:00 in Shanghai
    tasks = TaskService(MemoryTaskRepository(clock=clock), make_registry(), clock=clock)
    return tasks, ScheduleService(MemoryScheduleRepository(), tasks), clock


@pytest.fixture
async def api(make_client: MakeClient) -> ScheduleApi:
    tasks, schedules, clock = _services()
    client = await make_client(tasks, schedules=schedules, max_body_bytes=1024)
    return ScheduleApi(client, tasks, schedules, clock)


def url(*parts: str) -> str:
    return "/".join([f"{PREFIX}/schedules", *parts])


# -- create ------------------------------------------------------------------------------------


async def test_create_answers_201_with_the_schedule_and_its_location(api: ScheduleApi) -> None:
    response = await api.client.post(url(), json=NIGHTLY)
    data = await assert_success(response, 201)
    assert set(data) == VIEW_FIELDS
    assert response.headers["Location"] == url("nightly")
    assert data["name"] == "nightly"
    assert (data["expression"], data["timezone"]) == ("30 2 * * *", "Asia/Shanghai")
    assert (data["type"], data["params"]) == ("echo", {"text": "hi", "times": 1})
    assert (data["priority"], data["priority_name"], data["active"]) == (2, "high", True)
    assert data["next_run_at"] == "2026-03-01T18:30:00.000Z"  # 02:30 in Shanghai
    assert (data["last_run_at"], data["last_task_id"], data["last_error"]) == (None, None, None)
    assert RFC3339_Z.fullmatch(data["created_at"])


async def test_create_defaults_to_utc_normal_priority_and_active(api: ScheduleApi) -> None:
    body = {"name": "hourly", "expression": "@hourly", "type": "echo", "params": {"text": "x"}}
    data = await assert_success(await api.client.post(url(), json=body), 201)
    assert (data["timezone"], data["priority_name"], data["active"]) == ("UTC", "normal", True)
    assert data["next_run_at"] == "2026-03-01T13:00:00.000Z"


async def test_a_duplicate_name_is_a_409(api: ScheduleApi) -> None:
    await api.create()
    data = await assert_error(await api.client.post(url(), json=NIGHTLY), 409, "conflict")
    assert data["details"] == [{"name": "nightly"}]


@pytest.mark.parametrize(
    ("override", "loc"),
    [
        ({"expression": "30 25 * * *"}, ["expression"]),
        ({"expression": "every night"}, ["expression"]),
        ({"expression": "@reboot"}, ["expression"]),
        ({"timezone": "Asia/Atlantis"}, ["timezone"]),
        ({"name": "no spaces"}, ["name"]),
        ({"priority": "asap"}, ["priority"]),
        ({"params": {"text": ""}}, ["params", "text"]),
        ({"params": {"text": "hi", "extra": 1}}, ["params", "extra"]),
    ],
)
async def test_an_invalid_schedule_is_a_422_naming_the_field(
    api: ScheduleApi, override: dict[str, Any], loc: list[str]
) -> None:
    response = await api.client.post(url(), json={**NIGHTLY, **override})
    data = await assert_error(response, 422, "validation_error")
    assert loc in [detail["loc"] for detail in data["details"]]
    assert (await api.schedules.list())[1] == 0


async def test_an_unknown_task_type_is_a_422(api: ScheduleApi) -> None:
    response = await api.client.post(url(), json={**NIGHTLY, "type": "nope"})
    data = await assert_error(response, 422, "unknown_task_type")
    assert "echo" in data["details"][0]["known"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "n", "type": "echo"},  # no expression
        {**NIGHTLY, "cron_expr": "0 * * * *"},  # the seed's field name is not ours
        {**NIGHTLY, "active": "yes"},
        {**NIGHTLY, "params": ["text"]},
    ],
)
async def test_a_malformed_body_is_a_422(api: ScheduleApi, body: dict[str, Any]) -> None:
    await assert_error(await api.client.post(url(), json=body), 422, "validation_error")


async def test_body_errors_are_refused_like_the_task_api(api: ScheduleApi) -> None:
    response = await api.client.post(url(), data=b"{", headers={"Content-Type": "application/json"})
    await assert_error(response, 400, "bad_request")
    response = await api.client.post(url(), data=b"name=x", headers={"Content-Type": "text/plain"})
    await assert_error(response, 415, "unsupported_media_type")
    big = {**NIGHTLY, "params": {"text": "x" * 2000}}
    await assert_error(await api.client.post(url(), json=big), 413, "payload_too_large")
    await assert_error(await api.client.post(url(), json=[NIGHTLY]), 422, "validation_error")


# -- read --------------------------------------------------------------------------------------


async def test_list_pages_by_name_and_filters_by_active(api: ScheduleApi) -> None:
    for name in ("c", "a", "b"):
        await api.create(name=name)
    await api.schedules.pause("b")
    data = await assert_success(await api.client.get(url()))
    assert [s["name"] for s in data["schedules"]] == ["a", "b", "c"]
    assert data["total"] == 3
    assert set(data["schedules"][0]) == VIEW_FIELDS
    data = await assert_success(await api.client.get(url(), params={"offset": 1, "limit": 1}))
    assert ([s["name"] for s in data["schedules"]], data["total"]) == (["b"], 3)
    data = await assert_success(await api.client.get(url(), params={"active": "false"}))
    assert ([s["name"] for s in data["schedules"]], data["total"]) == (["b"], 1)


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=201", "offset=-1", "active=maybe", "name=a", "limit=1&limit=2"]
)
async def test_a_malformed_list_query_is_a_400(api: ScheduleApi, query: str) -> None:
    await assert_error(await api.client.get(f"{url()}?{query}"), 400, "bad_request")


async def test_get_answers_the_schedule_or_404(api: ScheduleApi) -> None:
    created = await api.create()
    assert await assert_success(await api.client.get(url("nightly"))) == created
    data = await assert_error(await api.client.get(url("nope")), 404, "not_found")
    assert data["details"] == [{"name": "nope"}]


# -- update ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
async def test_update_changes_the_given_fields(api: ScheduleApi, method: str) -> None:
    created = await api.create()
    body = {
        "expression": "0 9 * * *",
        "priority": "low",
        "type": created["type"],
        "params": {"text": "bye", "times": 2},
    }
    response = await api.client.request(method, url("nightly"), json=body)
    data = await assert_success(response)
    assert (data["expression"], data["priority_name"]) == ("0 9 * * *", "low")
    assert data["params"] == {"text": "bye", "times": 2}
    assert data["timezone"] == created["timezone"]  # not given: kept
    assert data["next_run_at"] == "2026-03-02T01:00:00.000Z"  # 09:00 in Shanghai, tomorrow


async def test_update_answers_404_and_422(api: ScheduleApi) -> None:
    await assert_error(await api.client.patch(url("nope"), json={"priority": 1}), 404, "not_found")
    created = await api.create()
    response = await api.client.patch(url("nightly"), json={"timezone": "Nowhere/Land"})
    await assert_error(response, 422, "validation_error")
    response = await api.client.patch(url("nightly"), json={"name": "renamed"})
    await assert_error(response, 422, "validation_error")
    assert await assert_success(await api.client.get(url("nightly"))) == created


@pytest.mark.parametrize(
    ("body", "missing"),
    [({"params": {"text": "bye"}}, "type"), ({"type": "echo"}, "params")],
)
async def test_type_and_params_change_together(
    api: ScheduleApi, body: dict[str, Any], missing: str
) -> None:
    # Params are judged against a type: the document says so (one variant without either, one
    # per type with both), and the server refuses a body with only one of them.
    created = await api.create()
    response = await api.client.patch(url("nightly"), json=body)
    data = await assert_error(response, 422, "validation_error")
    assert missing in data["details"][0]["msg"]
    assert await assert_success(await api.client.get(url("nightly"))) == created


# -- delete, pause, resume ---------------------------------------------------------------------


async def test_delete_answers_null_then_the_schedule_is_gone(api: ScheduleApi) -> None:
    await api.create()
    assert await assert_success(await api.client.delete(url("nightly"))) is None
    await assert_error(await api.client.get(url("nightly")), 404, "not_found")
    await assert_error(await api.client.delete(url("nightly")), 404, "not_found")


async def test_pause_and_resume(api: ScheduleApi) -> None:
    await api.create()
    paused = await assert_success(await api.client.post(url("nightly", "pause")))
    assert (paused["active"], paused["next_run_at"]) == (False, None)
    assert await assert_success(await api.client.post(url("nightly", "pause"))) == paused
    api.clock.advance(3 * 86400)
    resumed = await assert_success(await api.client.post(url("nightly", "resume")))
    assert (resumed["active"], resumed["next_run_at"]) == (True, "2026-03-04T18:30:00.000Z")
    for action in ("pause", "resume"):
        await assert_error(await api.client.post(url("nope", action)), 404, "not_found")


# -- run now -----------------------------------------------------------------------------------


async def test_run_fires_one_task_now_without_moving_the_timetable(api: ScheduleApi) -> None:
    created = await api.create()
    response = await api.client.post(url("nightly", "run"))
    data = await assert_success(response, 202)
    assert set(data) == {"task_id", "message"}
    assert response.headers["Location"] == f"{PREFIX}/tasks/{data['task_id']}"
    task = await assert_success(await api.client.get(response.headers["Location"]))
    assert (task["type"], task["params"], task["priority_name"]) == (
        "echo",
        {"text": "hi", "times": 1},
        "high",
    )
    assert task["created_by"] == "schedule:nightly"
    after = await assert_success(await api.client.get(url("nightly")))
    assert after["next_run_at"] == created["next_run_at"]
    assert after["last_task_id"] == data["task_id"]
    assert after["last_run_at"] == "2026-03-01T12:00:00.000Z"
    await assert_error(await api.client.post(url("nope", "run")), 404, "not_found")


# -- who may -----------------------------------------------------------------------------------


async def test_every_schedule_route_needs_an_admin(make_client: MakeClient) -> None:
    tasks, schedules, _ = _services()
    await schedules.create("nightly", expression="@daily", task_type="echo", params={"text": "x"})
    operator = Principal(name="op", projects=("p1",), role=Role.OPERATOR)
    client = await make_client(tasks, schedules=schedules, authenticate=allow_anonymous(operator))
    calls = [
        ("POST", url(), NIGHTLY),
        ("GET", url(), None),
        ("GET", url("nightly"), None),
        ("PATCH", url("nightly"), {"priority": 1}),
        ("PUT", url("nightly"), {"priority": 1}),
        ("DELETE", url("nightly"), None),
        ("POST", url("nightly", "pause"), None),
        ("POST", url("nightly", "resume"), None),
        ("POST", url("nightly", "run"), None),
    ]
    for method, path, body in calls:
        response = await client.request(method, path, json=body)
        await assert_error(response, 403, "forbidden")
    assert (await schedules.get("nightly")).active


async def test_an_api_without_schedules_has_no_schedule_routes(make_client: MakeClient) -> None:
    tasks, _, _ = _services()
    client = await make_client(tasks)
    await assert_error(await client.get(url()), 404, "not_found")


async def test_an_unsupported_method_is_a_405(api: ScheduleApi) -> None:
    await api.create()
    await assert_error(await api.client.post(url("nightly")), 405, "method_not_allowed")


# -- the whole runtime ---------------------------------------------------------------------------


def _runtime_settings(*schedules: dict[str, Any]) -> Any:
    return load_settings(
        mongo={"uri": "memory://"},
        auth={"allow_anonymous": True},
        queue={"poll_interval_s": 0.02},
        scheduler={"poll_interval_s": 0.02},
        # The manual clock lies in the past of the wall clock, which the memory store's
        # retention reads: keep finished tasks.
        tasks={"retention_s": None},
        schedules=list(schedules),
    )


async def test_declared_schedules_are_created_at_start_and_fire_through_the_dispatcher() -> None:
    clock = ManualClock(START)
    declared = {
        "name": "minutely",
        "expression": "* * * * *",
        "type": "echo",
        "params": {"text": "tick"},
        "priority": "urgent",
    }
    app = web.Application()
    runtime = cam_tasks.setup(
        app, _runtime_settings(declared), executors=[EchoExecutor()], clock=clock
    )
    async with TestClient(TestServer(app)) as client:
        listed = await assert_success(await client.get(url()))
        assert [s["name"] for s in listed["schedules"]] == ["minutely"]
        assert listed["schedules"][0]["next_run_at"] == "2026-03-01T12:01:00.000Z"
        assert runtime.schedules is not None  # the Python API of the same

        clock.set(START + timedelta(minutes=1))
        runtime.scheduler.schedules_changed()

        async def view() -> dict[str, Any]:
            data: dict[str, Any] = await assert_success(await client.get(url("minutely")))
            return data

        fired = await eventually(view, lambda s: s["last_task_id"] is not None)
        assert fired["next_run_at"] == "2026-03-01T12:02:00.000Z"
        task_url = f"{PREFIX}/tasks/{fired['last_task_id']}"

        async def task() -> dict[str, Any]:
            data: dict[str, Any] = await assert_success(await client.get(task_url))
            return data

        done = await eventually(task, lambda t: t["status"] == "completed")
        assert (done["result"], done["priority_name"]) == ("tick", "urgent")


async def test_a_restart_updates_declared_schedules_and_keeps_an_operator_pause() -> None:
    from mongomock_motor import AsyncMongoMockClient

    database: Any = AsyncMongoMockClient()["declared"]
    declared = {"name": "report", "expression": "@daily", "type": "echo", "params": {"text": "a"}}
    async with cam_tasks.CamTasks(
        _runtime_settings(declared), executors=[EchoExecutor()], database=database
    ) as first:
        await first.schedules.pause("report")
    changed = {**declared, "expression": "@hourly", "params": {"text": "b"}}
    async with cam_tasks.CamTasks(
        _runtime_settings(changed), executors=[EchoExecutor()], database=database
    ) as second:
        schedule = await second.schedules.get("report")
    assert (schedule.expression, schedule.params["text"], schedule.active) == (
        "@hourly",
        "b",
        False,
    )


@pytest.mark.parametrize(
    ("schedules", "message"),
    [
        (
            [{"name": "x", "expression": "@daily", "type": "echo", "params": {"text": "a"}}] * 2,
            "declared twice",
        ),
        (
            [{"name": "x", "expression": "daily", "type": "echo", "params": {"text": "a"}}],
            "'x' in the settings is invalid",
        ),
        ([{"name": "x", "expression": "@daily", "type": "nope"}], "'x' in the settings"),
    ],
)
async def test_an_invalid_declared_schedule_stops_the_start(
    schedules: list[dict[str, Any]], message: str
) -> None:
    runtime = cam_tasks.CamTasks(_runtime_settings(*schedules), executors=[EchoExecutor()])
    try:
        with pytest.raises(ConfigurationError, match=message):
            await runtime.start()
    finally:
        await runtime.close()
