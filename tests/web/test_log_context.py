"""Every record logged while a request is served carries that request's id, and only that one."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from cam_tasks.cli import JsonFormatter
from cam_tasks.web import LogContextFilter
from tests.web.helpers import PREFIX, Api, assert_success


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog, its handler wearing the filter the CLI puts on its own."""
    context = LogContextFilter({"owner": "host:1:abc"})
    caplog.handler.addFilter(context)
    caplog.set_level(logging.INFO, logger="cam_tasks")
    yield caplog
    caplog.handler.removeFilter(context)


def submitted(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    """The "task submitted" records of the test, by task id."""
    return {r.task_id: r for r in caplog.records if r.getMessage() == "task submitted"}


async def test_records_of_a_request_carry_its_id(
    api: Api, records: pytest.LogCaptureFixture
) -> None:
    response = await api.client.post(
        f"{PREFIX}/tasks",
        json={"type": "echo", "params": {"text": "hi"}},
        headers={"X-Request-ID": "req-42"},
    )
    task_id = (await assert_success(response, 202))["task_id"]

    record = submitted(records)[task_id]
    assert record.request_id == "req-42"
    assert record.owner == "host:1:abc"
    assert response.headers["X-Request-ID"] == "req-42"


async def test_concurrent_requests_keep_their_own_ids(
    api: Api, records: pytest.LogCaptureFixture
) -> None:
    async def submit(request_id: str) -> str:
        response = await api.client.post(
            f"{PREFIX}/tasks",
            json={"type": "echo", "params": {"text": request_id}},
            headers={"X-Request-ID": request_id},
        )
        return str((await assert_success(response, 202))["task_id"])

    ids = [f"req-{n}" for n in range(8)]
    task_ids = await asyncio.gather(*(submit(request_id) for request_id in ids))

    by_task = submitted(records)
    assert [by_task[task_id].request_id for task_id in task_ids] == ids


async def test_a_generated_id_is_logged_when_the_client_sends_none(
    api: Api, records: pytest.LogCaptureFixture
) -> None:
    response = await api.client.post(
        f"{PREFIX}/tasks", json={"type": "echo", "params": {"text": "x"}}
    )
    task_id = (await assert_success(response, 202))["task_id"]

    assert submitted(records)[task_id].request_id == response.headers["X-Request-ID"]


def test_records_outside_a_request_have_no_request_id_and_keep_their_own_fields() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(LogContextFilter({"owner": "host:1:abc"}))
    logger = logging.getLogger("cam_tasks.test_log_context")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("plain")
        logger.warning("explicit", extra={"owner": "someone-else", "task_id": "t1", "attempt": 2})
    finally:
        logger.removeHandler(handler)
        logger.propagate = True

    plain, explicit = (json.loads(line) for line in stream.getvalue().splitlines())
    assert "request_id" not in plain
    assert plain["owner"] == "host:1:abc"
    assert plain["message"] == "plain"
    assert explicit["owner"] == "someone-else"  # a record's own value wins
    assert (explicit["task_id"], explicit["attempt"]) == ("t1", 2)
