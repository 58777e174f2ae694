"""Limits: each abuse gets its documented answer, and serving abuse does not grow the process.

| abuse                                   | answer                                   |
|-----------------------------------------|------------------------------------------|
| body over ``max_body_bytes``            | 413 payload_too_large                    |
| ``params`` deeper / more members        | 422 validation_error (too_deep / …keys)  |
| ``limit=10**9`` and other bad queries   | 400 bad_request                          |
| submits over a principal's rate         | 429 rate_limited + Retry-After           |
| pending tasks over a principal's cap    | 429 queue_full + Retry-After             |
| credentials in ``params``               | 422 validation_error (secret_field)      |
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from cam_tasks.domain import InvalidParamsError, ManualClock, Principal, Role
from cam_tasks.repository.memory import MemoryTaskRepository
from cam_tasks.service import TaskService
from cam_tasks.web import ApiLimits, RequestLimiter
from cam_tasks.web.limits import (
    RateLimitedError,
    SubmitRateLimiter,
    check_params,
    is_secret_name,
)
from tests.security.conftest import SecureApi
from tests.security.support import ALICE, BOB, bearer
from tests.web.helpers import PREFIX, START, MakeClient, assert_error, make_registry


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- body size and params shape -------------------------------------------------------------------


async def test_an_oversized_body_is_a_413(api: SecureApi) -> None:
    body = {"type": "echo", "params": {"text": "x" * 5000}}
    response = await api.client.post(f"{PREFIX}/tasks", json=body, headers=bearer(ALICE))
    data = await assert_error(response, 413, "payload_too_large")
    assert data["details"] == [{"max_bytes": 4096}]
    assert sum((await api.service.counts()).values()) == 0


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/tasks", {"type": "echo", "params": {"text": "x", "deep": nested(12)}}, "params"),
        ("/tasks/sync-assets", {"provider": "p", "deep": nested(12)}, "deep"),
    ],
)
async def test_deeply_nested_params_are_a_422(
    api: SecureApi, path: str, body: dict[str, Any], loc: str
) -> None:
    response = await api.client.post(f"{PREFIX}{path}", json=body, headers=bearer(ALICE))
    data = await assert_error(response, 422, "validation_error")
    [problem] = data["details"]
    assert problem["type"] == "too_deep"
    assert loc in problem["loc"]
    assert sum((await api.service.counts()).values()) == 0


async def test_params_with_too_many_members_are_a_422(make_secure_client: MakeClient) -> None:
    service = TaskService(MemoryTaskRepository(), make_registry(), clock=ManualClock(START))
    client = await make_secure_client(service, limits=ApiLimits(params_max_keys=50))
    body = {"type": "echo", "params": {"text": "x", "many": list(range(60))}}
    response = await client.post(f"{PREFIX}/tasks", json=body, headers=bearer(ALICE))
    data = await assert_error(response, 422, "validation_error")
    assert [d["type"] for d in data["details"]] == ["too_many_keys"]


@pytest.mark.parametrize(
    ("params", "kind"),
    [
        ({"text": "x", "filter": {"$where": "sleep(1000)"}}, "reserved_key"),
        ({"text": "x", "k\u0000ey": 1}, "reserved_key"),
        ({"text": "x", "n": 2**63}, "int_out_of_range"),
        ({"text": "x", "n": [2**64 - 1]}, "int_out_of_range"),
        ({"text": "x", "password": "hunter2"}, "secret_field"),
        ({"text": "x", "auth": {"AccessKeySecret": "s"}}, "secret_field"),
        ({"text": "x", "accounts": [{"db_password": "s"}]}, "secret_field"),
    ],
)
async def test_params_a_store_cannot_hold_safely_are_a_422(
    api: SecureApi, params: dict[str, Any], kind: str
) -> None:
    response = await api.client.post(
        f"{PREFIX}/tasks", json={"type": "echo", "params": params}, headers=bearer(ALICE)
    )
    data = await assert_error(response, 422, "validation_error")
    assert kind in [d["type"] for d in data["details"]]
    assert "hunter2" not in await response.text()
    assert sum((await api.service.counts()).values()) == 0


async def test_credentials_are_refused_on_the_dedicated_routes_too(api: SecureApi) -> None:
    body = {"provider": "p", "account_id": "1", "asset_types": ["ecs"], "secret_key": "s"}
    response = await api.client.post(
        f"{PREFIX}/tasks/sync-assets", json=body, headers=bearer(ALICE)
    )
    data = await assert_error(response, 422, "validation_error")
    assert {"loc": ["secret_key"], "type": "secret_field"}.items() <= data["details"][0].items()


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("Password", True),
        ("db-password", True),
        ("AccessKeySecret", True),
        ("aws_secret_access_key", True),
        ("access_key", True),
        ("api_key", True),
        ("privateKey", True),
        ("session_token", True),
        ("credentials", True),
        ("pwd", True),
        ("account_id", False),
        ("AccessKeyId", False),
        ("provider", False),
        ("regions", False),
        ("asset_types", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_the_shape_check_is_iterative_and_bounded() -> None:
    check_params(nested(10), max_depth=10, max_keys=100)
    with pytest.raises(InvalidParamsError) as caught:
        check_params(nested(100_000), max_depth=10, max_keys=100)  # no RecursionError
    assert [d["type"] for d in caught.value.details] == ["too_deep"]
    check_params("not a container", max_depth=1, max_keys=1)


# -- queries ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        f"limit={10**9}",
        f"offset={10**30}",
        "limit=1e3",
        "type=no_such_type",
        "status[$ne]=x",
        "type[]=echo",
        "limit=1&limit=2",
    ],
)
async def test_bad_list_queries_are_a_400(api: SecureApi, query: str) -> None:
    response = await api.client.get(f"{PREFIX}/tasks?{query}", headers=bearer(ALICE))
    await assert_error(response, 400, "bad_request")


@pytest.mark.parametrize("task_id", ["%24ne", "a" * 129, "caf%C3%A9", "-x", "a%20b", "%00"])
async def test_malformed_task_ids_are_a_400(api: SecureApi, task_id: str) -> None:
    response = await api.client.get(f"{PREFIX}/tasks/{task_id}", headers=bearer(ALICE))
    data = await assert_error(response, 400, "bad_request")
    assert data["details"][0]["loc"] == ["path", "task_id"]


# -- rate and pending caps ------------------------------------------------------------------------


async def test_a_burst_over_the_rate_is_a_429_until_the_bucket_refills(
    make_secure_client: MakeClient,
) -> None:
    clock = FakeMonotonic()
    limiter = RequestLimiter(ApiLimits(submit_rate_per_s=0.5, submit_burst=3), clock=clock)
    service = TaskService(MemoryTaskRepository(), make_registry(), clock=ManualClock(START))
    client = await make_secure_client(service, limits=limiter)
    body = {"type": "echo", "params": {"text": "x"}}

    statuses = [
        (await client.post(f"{PREFIX}/tasks", json=body, headers=bearer(ALICE))).status
        for _ in range(3)
    ]
    refused = await client.post(f"{PREFIX}/tasks", json=body, headers=bearer(ALICE))

    assert statuses == [202, 202, 202]
    data = await assert_error(refused, 429, "rate_limited")
    assert refused.headers["Retry-After"] == "2"  # one token at 0.5/s
    assert data["details"] == [{"retry_after_s": 2.0}]
    # Another principal has its own bucket; retries count as submits.
    assert (await client.post(f"{PREFIX}/tasks", json=body, headers=bearer(BOB))).status == 202
    assert (await client.post(f"{PREFIX}/tasks/x/retry", headers=bearer(ALICE))).status == 429
    clock.now += 2.0
    assert (await client.post(f"{PREFIX}/tasks", json=body, headers=bearer(ALICE))).status == 202
    assert sum((await service.counts()).values()) == 5


async def test_a_principals_pending_cap_is_a_429_with_retry_after(
    make_secure_client: MakeClient,
) -> None:
    service = TaskService(
        MemoryTaskRepository(),
        make_registry(),
        clock=ManualClock(START),
        max_pending_per_principal=2,
        queue_full_retry_after_s=7,
    )
    client = await make_secure_client(service)
    body = {"type": "echo", "params": {"text": "x"}}
    for _ in range(2):
        assert (
            await client.post(f"{PREFIX}/tasks", json=body, headers=bearer(ALICE))
        ).status == 202

    refused = await client.post(f"{PREFIX}/tasks", json=body, headers=bearer(ALICE))

    await assert_error(refused, 429, "queue_full")
    assert refused.headers["Retry-After"] == "7"
    assert (await client.post(f"{PREFIX}/tasks", json=body, headers=bearer(BOB))).status == 202


def test_the_rate_limiter_forgets_the_least_recent_principal_beyond_its_bound() -> None:
    clock = FakeMonotonic()
    limiter = SubmitRateLimiter(1.0, 1, max_tracked=3, clock=clock)
    for name in ("a", "b", "c", "d"):
        limiter.take(name)
    assert len(limiter) == 3
    limiter.take("a")  # forgotten, so it starts with a full bucket again
    with pytest.raises(RateLimitedError) as caught:
        limiter.take("d")
    assert caught.value.retry_after_s == pytest.approx(1.0)


@pytest.mark.parametrize(
    "options",
    [
        {"submit_rate_per_s": 0},
        {"submit_rate_per_s": float("inf")},
        {"submit_burst": 0},
        {"params_max_depth": 0},
        {"params_max_keys": 0},
        {"max_tracked_principals": 0},
    ],
)
def test_nonsense_limits_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        ApiLimits(**options)


# -- memory ----------------------------------------------------------------------------------


def rss_bytes() -> int:
    status = Path("/proc/self/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1)) * 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
async def test_serving_abuse_keeps_memory_flat(make_secure_client: MakeClient) -> None:
    async def everyone(request: web.Request) -> Principal:
        # A host hook with unbounded identities: the rate limiter must not grow with them.
        name = request.headers.get("X-User", "nobody")
        return Principal(name=name, projects=("p",), role=Role.OPERATOR)

    limiter = RequestLimiter(
        ApiLimits(submit_rate_per_s=0.001, submit_burst=1, max_tracked_principals=100),
        clock=FakeMonotonic(),
    )
    service = TaskService(MemoryTaskRepository(), make_registry(), clock=ManualClock(START))
    client = await make_secure_client(
        service, authenticate=everyone, limits=limiter, max_body_bytes=64 * 1024
    )
    oversized = b'{"type": "echo", "params": {"text": "' + b"x" * (128 * 1024) + b'"}}'
    deep = {"type": "echo", "params": {"text": "x", "deep": nested(500)}}

    async def round_of_abuse(n: int) -> None:
        who = {"X-User": f"user-{n}"}
        json_type = {"Content-Type": "application/json", **who}
        assert (await client.post(f"{PREFIX}/tasks", data=oversized, headers=json_type)).status in (
            413,
            429,
        )
        who = {"X-User": f"deep-{n}"}
        assert (await client.post(f"{PREFIX}/tasks", json=deep, headers=who)).status == 422
        assert (await client.post(f"{PREFIX}/tasks", json=deep, headers=who)).status == 429
        response = await client.get(f"{PREFIX}/tasks?limit={10**9}", headers=who)
        assert response.status == 400

    for n in range(100):  # warm up: caches, buffers, the allocator's arenas
        await round_of_abuse(n)
    before = rss_bytes()
    for n in range(100, 700):
        await round_of_abuse(n)
    grown = rss_bytes() - before

    assert len(limiter.rate or ()) <= 100
    assert sum((await service.counts()).values()) == 0
    assert grown < 32 * 1024 * 1024, f"RSS grew by {grown / 2**20:.1f} MiB"
