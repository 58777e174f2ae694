"""Schemathesis against the API's own OpenAPI document, served live.

The whole composition (``cam_tasks.setup`` with the example configuration on the memory store,
workers running, a host executor of its own) is served on the loopback from a thread. The
document it serves is checked to be the one built here at collection, which schemathesis turns
into one test per operation; each sends a bounded number of generated requests, valid and
invalid, to the live server (real tasks and the schedule included: see tests/web/fuzz.py), and
every answer must pass :func:`~tests.web.fuzz.agreement_checks`: conformance, the document
and the server agreeing on which requests are valid and which methods a path allows (for every
operation: schedules and submits included), and answers within the response-time limit (but a
long poll's deliberate wait).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from tests.support.threaded_server import ThreadedServer
from tests.test_end_to_end import settings as example_settings
from tests.web.fuzz import (
    CALL_TIMEOUT_S,
    Seeds,
    agreement_checks,
    configured,
    document_of,
    make_app,
    seed,
    use_seeds,
)
from tests.web.helpers import PREFIX

# Built at collection, without serving: schemathesis makes one test per operation of a schema
# it has at collection (its fixture-based loader does not work with pytest 9).
DOCUMENT = document_of(make_app(example_settings()))
SEEDS = Seeds()
schema = configured(schemathesis.openapi.from_dict(DOCUMENT))
use_seeds(schema, SEEDS)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with ThreadedServer(lambda: make_app(example_settings())) as url:
        served = requests.get(f"{url}{PREFIX}/openapi.json", timeout=CALL_TIMEOUT_S)
        assert served.json() == DOCUMENT
        seed(f"{url}{PREFIX}", {}, SEEDS)
        yield f"{url}{PREFIX}"


@schema.parametrize()
@settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case: Any, base_url: str) -> None:
    case.call_and_validate(base_url=base_url, checks=agreement_checks(case), timeout=CALL_TIMEOUT_S)
