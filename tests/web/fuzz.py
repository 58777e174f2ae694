"""What the schemathesis runs share: the served composition, its OpenAPI document, resources
seeded before fuzzing, and the hooks that let generated requests reach them.

Generated ids name nothing, so on their own they only ever meet 400 and 404. So before fuzzing
the server is given tasks in each state (completed, failed, cancelled, pending) and has the
example configuration's schedule; the hooks make a path parameter one of those as often as
one of hypothesis's own, so real task views, cancels, retries, deletes, event streams and
schedule changes are checked against the document too. Two bounds keep every call short:
event streams are only opened on finished tasks (a pending task's stream would stay open), and a
long poll waits at most :data:`LONG_POLL_CAP_S`.
"""

from __future__ import annotations

import builtins
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from aiohttp import web
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

import cam_tasks
from cam_tasks.config import Settings
from cam_tasks.domain.schedule import CRON_ALIASES, time_zones
from cam_tasks.executor import TaskContext
from cam_tasks.web.openapi import openapi_document
from tests.security.support import api_app
from tests.web.helpers import PREFIX

#: Generated requests per operation and phase: enough to reach every branch of the request
#: decoding, few enough to keep a whole run within seconds.
MAX_EXAMPLES = 25
#: Longest a single call may take.
CALL_TIMEOUT_S = 10.0
#: Longest long poll (``wait_s``) a fuzzed request may ask of a real task.
LONG_POLL_CAP_S = 0.2
#: The schedule of the example configuration, and how to declare it again.
SCHEDULE = "nightly-aliyun-sync"
SCHEDULE_DECLARATION: Mapping[str, Any] = {
    "expression": "30 2 * * *",
    "timezone": "Asia/Shanghai",
    "type": "sync_assets",
    "params": {"provider": "aliyun", "account_id": "123", "asset_types": ["ecs", "rds"]},
}


class NoteParams(BaseModel):
    """A host's own task type: bounded, so generated params stay small."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=100)
    copies: int = Field(default=1, ge=1, le=5)


class NoteExecutor:
    type = "note"
    params_model: builtins.type[BaseModel] = NoteParams

    async def execute(self, params: NoteParams, ctx: TaskContext) -> Any:
        return {"notes": [params.text] * params.copies}


def make_app(settings: Settings) -> web.Application:
    """The host application a service embedding cam_tasks would run, with ``NoteExecutor``."""
    app = web.Application()
    cam_tasks.setup(app, settings, executors=[NoteExecutor()])
    return app


def document_of(app: web.Application) -> dict[str, Any]:
    """The OpenAPI document the API of ``app`` (set up by :func:`make_app`) serves."""
    runtime = app[cam_tasks.CAM_TASKS_KEY]
    return openapi_document(
        api_app(app, PREFIX),
        prefix=PREFIX,
        registry=runtime.registry,
        queues=runtime.service.queues,
    )


def conformance_checks() -> list[Any]:
    """The checks every answer must pass: never a 5xx, a documented status, media type and
    body, and the headers the document says are always sent."""
    from schemathesis import checks

    return [
        checks.not_a_server_error,
        checks.status_code_conformance,
        checks.content_type_conformance,
        checks.response_headers_conformance,
        checks.response_schema_conformance,
    ]


#: Longest answer allowed, for ``max_response_time``: schemathesis's default.
MAX_RESPONSE_TIME_S = 10.0


def agreement_checks(case: Any) -> list[Any]:
    """:func:`conformance_checks`, and that the document and the server agree on what is
    valid: a request the schema allows is not refused as invalid
    (``positive_data_acceptance``), one it forbids is (``negative_data_rejection``), and an
    undocumented method is a 405 whose ``Allow`` lists the documented ones
    (``unsupported_method``, ``allow_header_conformance``). Every answer comes within
    :data:`MAX_RESPONSE_TIME_S` (``max_response_time``) but a long poll's, which waits on
    purpose (``wait_s``)."""
    from schemathesis import checks

    agreement = [
        checks.negative_data_rejection,
        checks.positive_data_acceptance,
        checks.unsupported_method,
        checks.allow_header_conformance,
    ]
    if "wait_s" not in (case.query or {}):
        agreement.append(checks.max_response_time)
    return conformance_checks() + agreement


# -- seeded resources ---------------------------------------------------------------------------


@dataclass
class Seeds:
    """Resources the server holds before fuzzing. ``finished``: task ids in a terminal state;
    ``active``: pending ones (never streamed)."""

    base_url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    finished: list[str] = field(default_factory=list)
    active: list[str] = field(default_factory=list)
    schedules: list[str] = field(default_factory=list)


def _submit(base_url: str, headers: Mapping[str, str], body: Mapping[str, Any]) -> str:
    response = requests.post(
        f"{base_url}/tasks", json=body, headers=dict(headers), timeout=CALL_TIMEOUT_S
    )
    assert response.status_code == 202, response.text
    return str(response.json()["data"]["task_id"])


def _status(base_url: str, headers: Mapping[str, str], task_id: str) -> str:
    response = requests.get(
        f"{base_url}/tasks/{task_id}", headers=dict(headers), timeout=CALL_TIMEOUT_S
    )
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["status"])


def _until(base_url: str, headers: Mapping[str, str], task_id: str, status: str) -> None:
    deadline = time.monotonic() + CALL_TIMEOUT_S
    while (seen := _status(base_url, headers, task_id)) != status:
        assert time.monotonic() < deadline, f"task {task_id} is {seen}, never {status}"
        time.sleep(0.01)  # polling a condition with a deadline


_NOTE: Mapping[str, Any] = {"type": "note", "params": {"text": "seed"}}


def _completed(base_url: str, headers: Mapping[str, str]) -> str:
    task_id = _submit(base_url, headers, _NOTE)
    _until(base_url, headers, task_id, "completed")
    return task_id


def seed(base_url: str, headers: Mapping[str, str], seeds: Seeds) -> None:
    """Give the server (its API at ``base_url``) a task in each state, as the principal of
    ``headers``, and record them in ``seeds``."""
    completed = _submit(base_url, headers, _NOTE)
    failing = {  # a region the sample account does not have: fails at once, for good
        "provider": "aliyun",
        "account_id": "123",
        "asset_types": ["ecs"],
        "regions": ["nowhere-1"],
    }
    failed = _submit(base_url, headers, {"type": "sync_assets", "params": failing})
    later = {"type": "note", "params": {"text": "later"}, "delay_s": 3600.0}
    cancelled = _submit(base_url, headers, later)
    response = requests.post(
        f"{base_url}/tasks/{cancelled}/cancel", headers=dict(headers), timeout=CALL_TIMEOUT_S
    )
    assert response.status_code == 200, response.text
    pending = _submit(base_url, headers, later)
    _until(base_url, headers, completed, "completed")
    _until(base_url, headers, failed, "failed")
    seeds.base_url, seeds.headers = base_url, headers
    seeds.finished[:] = [completed, failed, cancelled]
    seeds.active[:] = [pending]
    seeds.schedules[:] = [SCHEDULE]


def use_seeds(schema: Any, seeds: Seeds) -> None:
    """Hooks on ``schema``: path parameters are drawn from ``seeds`` as well as generated, and
    long polls are capped."""

    def known_resources(context: Any, path_parameters: dict[str, Any] | None) -> Any:
        if not isinstance(path_parameters, dict):  # negative generation may leave them out
            return st.just(path_parameters)
        choices = [path_parameters]
        if "task_id" in path_parameters:
            streams = context.operation.path.endswith("/events")
            ids = seeds.finished if streams else [*seeds.finished, *seeds.active]
            choices += [{**path_parameters, "task_id": task_id} for task_id in ids]
        if "name" in path_parameters:
            choices += [{**path_parameters, "name": name} for name in seeds.schedules]
        return st.sampled_from(choices)

    def short_long_polls(context: Any, query: dict[str, Any] | None) -> dict[str, Any] | None:
        if not isinstance(query, dict) or "wait_s" not in query:
            return query
        try:
            wait_s = float(query["wait_s"])
        except (TypeError, ValueError):
            return query  # not a number: refused at once
        if math.isnan(wait_s) or wait_s <= LONG_POLL_CAP_S:
            return query
        return {**query, "wait_s": LONG_POLL_CAP_S}

    def restore_seeds(context: Any, case: Any, response: Any) -> None:
        # A fuzzed DELETE may remove a seed: put one back for the operations after.
        if case.method.upper() != "DELETE" or response.status_code != 200:
            return
        parameters = case.path_parameters or {}
        task_id, name = parameters.get("task_id"), parameters.get("name")
        if task_id in seeds.finished:
            index = seeds.finished.index(task_id)
            seeds.finished[index] = _completed(seeds.base_url, seeds.headers)
        if name in seeds.schedules:
            restored = requests.post(
                f"{seeds.base_url}/schedules",
                json={**SCHEDULE_DECLARATION, "name": name},
                headers=dict(seeds.headers),
                timeout=CALL_TIMEOUT_S,
            )
            assert restored.status_code == 201, restored.text

    schema.hook("flatmap_path_parameters")(known_resources)
    schema.hook("map_query")(short_long_polls)
    schema.hook("after_call")(restore_seeds)


def cron_expressions() -> st.SearchStrategy[str]:
    """Valid cron expressions: an alias, or five fields each ``*``, a value in range, a range
    or a step (what the ``cron`` format of the document names)."""

    def field_of(low: int, high: int) -> st.SearchStrategy[str]:
        value = st.integers(low, high)
        return st.one_of(
            st.just("*"),
            value.map(str),
            st.tuples(value, value).map(lambda r: f"{min(r)}-{max(r)}"),
            st.integers(1, high).map(lambda step: f"*/{step}"),
        )

    fields = st.tuples(
        field_of(0, 59), field_of(0, 23), field_of(1, 28), field_of(1, 12), field_of(0, 7)
    ).map(" ".join)
    return st.one_of(st.sampled_from(sorted(CRON_ALIASES)), fields)


def configured(schema: Any, *, max_examples: int = MAX_EXAMPLES) -> Any:
    """``schema`` with bounded, reproducible generation; strings of the ``cron`` format are
    drawn from :func:`cron_expressions`, those of the ``time-zone`` format from the zones the
    server knows."""
    import schemathesis

    schemathesis.openapi.format("cron", cron_expressions())
    schemathesis.openapi.format("time-zone", st.sampled_from(time_zones()))
    schema.config.checks.max_response_time.limit = MAX_RESPONSE_TIME_S
    schema.config.generation.update(max_examples=max_examples, deterministic=True)
    return schema
