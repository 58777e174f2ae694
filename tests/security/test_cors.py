"""CORS: off by default; with origins configured, exactly those origins, never any origin with
credentials; preflights need no token, everything else still does."""

from __future__ import annotations

from typing import Any

import pytest

from cam_tasks.config import load_settings
from cam_tasks.domain import ConfigurationError, ManualClock
from cam_tasks.repository.memory import MemoryTaskRepository
from cam_tasks.service import TaskService
from cam_tasks.web import allow_anonymous, check_origins, create_api
from tests.security.support import ALICE, bearer
from tests.web.helpers import PREFIX, START, Client, MakeClient, assert_error, make_registry

CONSOLE = "https://console.example.com"
EVIL = "https://evil.example.net"


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "Authorization, Content-Type",
    }


async def serve(make_secure_client: MakeClient, **options: Any) -> Client:
    service = TaskService(MemoryTaskRepository(), make_registry(), clock=ManualClock(START))
    return await make_secure_client(service, **options)


async def test_cors_is_off_by_default(make_secure_client: MakeClient) -> None:
    client = await serve(make_secure_client)
    response = await client.get(f"{PREFIX}/tasks", headers={"Origin": CONSOLE, **bearer(ALICE)})
    assert response.status == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    # No preflight handler either: the OPTIONS request is just another unauthenticated one.
    response = await client.options(f"{PREFIX}/tasks", headers=preflight(CONSOLE))
    await assert_error(response, 401, "unauthorized")


async def test_a_listed_origin_passes_its_preflight_without_a_token(
    make_secure_client: MakeClient,
) -> None:
    client = await serve(make_secure_client, cors_origins=[CONSOLE])
    response = await client.options(f"{PREFIX}/tasks", headers=preflight(CONSOLE))
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == CONSOLE
    assert response.headers["Access-Control-Allow-Methods"] == "POST"
    allowed = {
        h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert allowed == {"authorization", "content-type"}
    assert "Access-Control-Allow-Credentials" not in response.headers


async def test_an_unlisted_origin_is_refused(make_secure_client: MakeClient) -> None:
    client = await serve(make_secure_client, cors_origins=[CONSOLE])
    response = await client.options(f"{PREFIX}/tasks", headers=preflight(EVIL))
    await assert_error(response, 403, "forbidden")
    assert "Access-Control-Allow-Origin" not in response.headers
    response = await client.get(f"{PREFIX}/tasks", headers={"Origin": EVIL, **bearer(ALICE)})
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_a_listed_origin_reads_answers_and_errors_but_still_needs_a_token(
    make_secure_client: MakeClient,
) -> None:
    client = await serve(make_secure_client, cors_origins=[CONSOLE])
    ok = await client.get(f"{PREFIX}/tasks", headers={"Origin": CONSOLE, **bearer(ALICE)})
    assert ok.status == 200
    assert ok.headers["Access-Control-Allow-Origin"] == CONSOLE
    assert "X-Request-ID" in ok.headers["Access-Control-Expose-Headers"]
    refused = await client.get(f"{PREFIX}/tasks", headers={"Origin": CONSOLE})
    await assert_error(refused, 401, "unauthorized")
    assert refused.headers["Access-Control-Allow-Origin"] == CONSOLE  # the page can read why


async def test_credentials_are_allowed_only_for_listed_origins(
    make_secure_client: MakeClient,
) -> None:
    client = await serve(make_secure_client, cors_origins=[CONSOLE], cors_allow_credentials=True)
    response = await client.options(f"{PREFIX}/tasks", headers=preflight(CONSOLE, "GET"))
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert response.headers["Access-Control-Allow-Origin"] == CONSOLE


def test_any_origin_with_credentials_is_refused() -> None:
    service = TaskService(MemoryTaskRepository(), make_registry(), clock=ManualClock(START))
    with pytest.raises(ValueError, match="cannot be combined"):
        create_api(
            service,
            authenticate=allow_anonymous(),
            cors_origins=["*"],
            cors_allow_credentials=True,
        )
    with pytest.raises(ConfigurationError, match="cannot be combined"):
        load_settings(cors={"origins": ["*"], "allow_credentials": True})


@pytest.mark.parametrize(
    "origins",
    [["https://console.example.com/"], ["console.example.com"], ["*", CONSOLE], ["ftp://x"]],
)
def test_malformed_origins_are_refused(origins: list[str]) -> None:
    with pytest.raises(ValueError, match="origin"):
        check_origins(origins, allow_credentials=False)


def test_well_formed_origins_pass() -> None:
    origins = [CONSOLE, "http://localhost:5173"]
    assert check_origins(origins, allow_credentials=True) == tuple(origins)
    assert check_origins(["*"], allow_credentials=False) == ("*",)
