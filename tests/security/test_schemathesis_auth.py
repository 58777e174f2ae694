"""Schemathesis with authentication configured: bearer tokens only (no anonymous use), fuzzing
as an operator of one project.

With the token, no operation ever answers a 5xx, and every answer is as documented (403 for
the admin-only schedule routes included). Without it, every operation but the public document
and its page answers 401 with a challenge, whatever else is wrong with the request.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

import cam_tasks
from cam_tasks.config import load_settings
from tests.support.threaded_server import ThreadedServer
from tests.web.fuzz import (
    CALL_TIMEOUT_S,
    Seeds,
    configured,
    conformance_checks,
    document_of,
    make_app,
    seed,
    use_seeds,
)
from tests.web.helpers import PREFIX

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "operator-token-0123456789abcdef"
AUTHORIZATION = {"Authorization": f"Bearer {TOKEN}"}
#: Requests per operation without the token: each is refused before anything is parsed.
MAX_EXAMPLES_WITHOUT_TOKEN = 5


def secured_settings() -> cam_tasks.Settings:
    """The example configuration (memory store, provider ``aliyun``) with bearer tokens only."""
    return load_settings(
        ROOT / "config.example.toml",
        auth={
            "allow_anonymous": False,
            "tokens": {"console": {"token": TOKEN, "role": "operator", "projects": ["team-a"]}},
        },
        queue={"progress_interval_s": 0.02, "heartbeat_interval_s": 0.5},
        providers={
            "static": [
                {"name": "aliyun", "inventory": "builtin:sample_inventory.toml", "latency_s": 0.02}
            ]
        },
    )


DOCUMENT = document_of(make_app(secured_settings()))
SEEDS = Seeds()
with_token = configured(schemathesis.openapi.from_dict(DOCUMENT))
use_seeds(with_token, SEEDS)
without_token = configured(
    schemathesis.openapi.from_dict(DOCUMENT), max_examples=MAX_EXAMPLES_WITHOUT_TOKEN
)
use_seeds(without_token, SEEDS)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with ThreadedServer(lambda: make_app(secured_settings())) as url:
        served = requests.get(f"{url}{PREFIX}/openapi.json", timeout=CALL_TIMEOUT_S)
        assert served.json() == DOCUMENT  # public: no token needed
        seed(f"{url}{PREFIX}", AUTHORIZATION, SEEDS)
        yield f"{url}{PREFIX}"


@with_token.parametrize()
@settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_with_a_token_nothing_is_a_server_error(case: Any, base_url: str) -> None:
    case.call_and_validate(
        base_url=base_url,
        headers=AUTHORIZATION,
        checks=conformance_checks(),
        timeout=CALL_TIMEOUT_S,
    )


@without_token.parametrize()
@settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_without_a_token_every_protected_operation_answers_401(case: Any, base_url: str) -> None:
    case.headers = {
        name: value
        for name, value in (case.headers or {}).items()
        if name.lower() != "authorization"
    }
    response = case.call(base_url=base_url, timeout=CALL_TIMEOUT_S)
    public = case.operation.definition.raw.get("security") == []
    if public and case.method.upper() == case.operation.method.upper():
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 401, f"{case.method} {case.formatted_path}: {response.text}"
        # schemathesis gives headers lowercased, as lists of values
        (challenge,) = response.headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="cam_tasks"')
    case.validate_response(response, checks=conformance_checks())
