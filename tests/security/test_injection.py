"""Injection: whatever a client puts in a query string, a path or a body, of any route, the API
answers without a server error, and no ``$`` key a client sent ever reaches the database as an
operator.

Hypothesis generates the requests: operator documents (``{"$ne": null}``, ``{"$where": …}``),
bracketed and repeated query keys (``status[$ne]=x``), arrays, huge and negative numbers, ids
that are not ids, and arbitrary unicode. The whole composition serves them (``cam_tasks.setup``
with every route anyone mounted), on mongomock behind a recording database that keeps every
filter and ``$match`` sent and every document inserted.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import AsyncMongoClient, monitoring

import cam_tasks
from cam_tasks.domain import TaskFilter, TaskStatus
from cam_tasks.repository.mongo import MongoTaskRepository
from cam_tasks.repository.mongo.queries import filter_to_query
from tests.conftest import WIRE_URI
from tests.security.conftest import Stack
from tests.security.support import (
    ADMIN,
    ALICE,
    REPOSITORY_OPERATORS,
    RecordingDatabase,
    Route,
    api_app,
    authenticator,
    bearer,
    dollar_keys,
    foreign_operators,
    request,
    routes_of,
)
from tests.web.helpers import PREFIX, START, EchoExecutor

OPERATORS = [
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$in",
    "$nin",
    "$eq",
    "$exists",
    "$type",
    "$where",
    "$regex",
    "$expr",
    "$function",
    "$or",
    "$and",
    "$not",
    "$elemMatch",
    "$jsonSchema",
    "$text",
    "$set",
    "$unset",
]
FIELDS = [
    "type",
    "status",
    "offset",
    "limit",
    "updated_since",
    "wait_s",
    "active",
    "params",
    "created_by",
    "project_id",
    "_id",
    "name",
    "expression",
    "provider",
    "account_id",
    "asset_types",
    "regions",
    "text",
    "priority",
    "run_at",
    "delay_s",
    "max_retries",
    "timeout_s",
    "idempotency_key",
]
HUGE_NUMBERS = [10**9, 10**30, 2**63, 2**64 - 1, -(2**63) - 1, 1e308, -1, 0]

numbers = st.one_of(st.sampled_from(HUGE_NUMBERS), st.integers(), st.floats(allow_nan=False))
texts = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["echo", "sync_assets", "pending", "", "null", "*", ".*", "\u0000", "é"]),
    st.sampled_from(OPERATORS),
)
keys = st.one_of(st.sampled_from(OPERATORS), st.sampled_from(FIELDS), st.text(max_size=10))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, texts),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)
operator_documents = st.dictionaries(st.sampled_from(OPERATORS), json_values, min_size=1)
bodies = st.one_of(
    # Shaped like a submission, with operators where values belong.
    st.fixed_dictionaries(
        {"type": st.one_of(st.sampled_from(["echo", "sync_assets"]), texts, operator_documents)},
        optional={
            "params": st.one_of(
                st.dictionaries(keys, st.one_of(json_values, operator_documents), max_size=5),
                json_values,
            ),
            "status": st.one_of(operator_documents, texts),
            "priority": st.one_of(numbers, texts, operator_documents),
            "created_by": st.one_of(texts, operator_documents),
            "name": st.one_of(texts, operator_documents),
            "expression": st.one_of(texts, operator_documents),
            "provider": st.one_of(texts, operator_documents),
            "account_id": st.one_of(texts, numbers, operator_documents),
            "asset_types": st.one_of(st.lists(texts, max_size=3), operator_documents),
        },
    ),
    st.dictionaries(keys, json_values, max_size=6),
    json_values,
)
query_keys = st.one_of(
    st.sampled_from(FIELDS),
    st.builds(lambda f, o: f"{f}[{o}]", st.sampled_from(FIELDS), st.sampled_from(OPERATORS)),
    st.builds(lambda f: f"{f}[]", st.sampled_from(FIELDS)),
    st.text(min_size=1, max_size=12),
)
query_values = st.one_of(
    texts,
    numbers.map(str),
    operator_documents.map(json.dumps),
    st.sampled_from(["pending,running", "pending,", ",", "1e3", "0x10", "NaN", "true"]),
)
path_values = st.one_of(
    st.just("<existing>"),
    st.just("<existing>"),
    st.sampled_from(["$ne", '{"$ne": null}', "a" * 300, "..", "%00", "nightly", "-1", "x y"]),
    st.text(min_size=1, max_size=40),
)


def client_dollar_keys(*parts: Any) -> set[str]:
    """Every ``$`` word a client put anywhere in what it sent."""
    found: set[str] = set()
    for part in parts:
        text = part if isinstance(part, str) else json.dumps(part, default=str)
        found.update(word for word in OPERATORS if word in text)
    return found


async def _task_of_alice(stack: Stack) -> str:
    response = await stack.client.post(
        f"{PREFIX}/tasks",
        json={"type": "echo", "params": {"text": "x"}, "delay_s": 3600},
        headers=bearer(ALICE),
    )
    assert response.status == 202
    return str((await response.json())["data"]["task_id"])


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_no_client_input_becomes_an_operator_or_a_server_error(
    stack: Stack, data: st.DataObject
) -> None:
    routes = routes_of(api_app(stack.host, PREFIX))
    route: Route = data.draw(st.sampled_from(routes), label="route")
    existing = await _task_of_alice(stack)
    values = {name: data.draw(path_values, label=name) for name in ("task_id", "name")}
    long_polls = any(v == "<existing>" for v in values.values())
    path = route.path(
        **{name: existing if v == "<existing>" else quote(v, safe="") for name, v in values.items()}
    )
    pairs = data.draw(
        st.one_of(st.just([]), st.lists(st.tuples(query_keys, query_values), max_size=5)),
        label="query",
    )
    principal = data.draw(st.sampled_from([ALICE, ADMIN]), label="principal")
    if long_polls:  # a long poll on a real task would wait its full time: not what is tested
        pairs = [(k, v) for k, v in pairs if k != "wait_s"]
    body = data.draw(bodies, label="body") if route.has_body else None
    stack.database.recording.clear()

    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
    url = f"{path}?{query}" if query else path
    raw = None if body is None else json.dumps(body).encode()
    status, _, answer = await request(
        stack.client, route.method, url, headers=bearer(principal), data=raw
    )

    where = f"{route.method} {url} {raw!r}"
    assert status < 500, f"{where} -> {status} {answer[:300]!r}"
    lists = route.template == f"{PREFIX}/tasks" and route.method == "GET"
    if lists and any("[" in k for k, _ in pairs):
        assert status == 400, where
    # Operators only a client could have written: those the repositories never use.
    client_only = client_dollar_keys(values, pairs, body) - REPOSITORY_OPERATORS
    for operation, sent in stack.database.recording.filters:
        assert not foreign_operators(sent), f"{where}: {operation} {sent}"
        used = {path.rsplit(".", 1)[-1] for path in dollar_keys(sent)}
        assert not used & client_only, f"{where}: {operation} {sent}"
    for document in stack.database.recording.inserted:
        assert not list(dollar_keys(document)), f"{where}: inserted {document}"


async def test_a_classic_operator_body_and_query_are_refused(stack: Stack) -> None:
    response = await stack.client.get(
        f"{PREFIX}/tasks?status[$ne]=pending&type[$regex]=.*", headers=bearer(ALICE)
    )
    assert response.status == 400
    response = await stack.client.post(
        f"{PREFIX}/tasks", json={"type": {"$ne": None}, "params": {}}, headers=bearer(ALICE)
    )
    assert response.status == 422
    response = await stack.client.post(
        f"{PREFIX}/tasks",
        json={"type": "echo", "params": {"text": {"$gt": ""}}},
        headers=bearer(ALICE),
    )
    assert response.status == 422
    assert stack.database.recording.inserted == []


@pytest.mark.parametrize(
    "query",
    [
        {"status": {"$where": "sleep(100)"}},
        {"$or": [{"status": "pending"}]},
        {"status": {"$in": [{"$gt": ""}]}},
        {"created_by": {"$ne": None}, "x": {"$regex": ".*"}},
        {"type": {"nested": {"$gt": ""}}},
    ],
)
def test_the_detector_sees_operators_a_client_shaped(query: dict[str, Any]) -> None:
    assert foreign_operators(query)


async def test_the_detector_accepts_what_the_repositories_send(mongomock_db: Any) -> None:
    database = RecordingDatabase(mongomock_db)
    repository = MongoTaskRepository(database)
    await repository.initialize()
    query = TaskFilter(
        types=frozenset({"echo", "sync_assets"}),
        statuses=frozenset({TaskStatus.PENDING}),
        created_by="alice",
        project_ids=frozenset({"project-a"}),
        updated_since=START,
    )
    await repository.list(query, offset=0, limit=10)
    await repository.count_by_status(query)
    sent = database.recording.filters
    assert [name for name, _ in sent] == ["count_documents", "aggregate"]
    assert sent[0][1] == filter_to_query(query)
    assert all(not foreign_operators(filters) for _, filters in sent)


class CommandRecorder(monitoring.CommandListener):
    """Every filter a command carries on the wire, and every document it inserts."""

    def __init__(self) -> None:
        self.filters: list[tuple[str, Any]] = []
        self.inserted: list[Any] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command, name = event.command, event.command_name
        if name in ("find", "count"):
            self.filters.append((name, command.get("filter", command.get("query", {}))))
        elif name == "findAndModify":
            self.filters.append((name, command.get("query", {})))
        elif name in ("delete", "update"):
            for statement in command.get(f"{name}s", []):
                self.filters.append((name, statement.get("q", {})))
        elif name == "aggregate":
            for stage in command.get("pipeline", []):
                if "$match" in stage:
                    self.filters.append((name, stage["$match"]))
        elif name == "insert":
            self.inserted.extend(command.get("documents", []))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


ATTACKS: list[tuple[str, str, Any]] = [
    ("GET", "/tasks?status[$ne]=pending", None),
    ("GET", "/tasks?type[$regex]=.*&limit=1", None),
    ("GET", "/tasks?type=%7B%22%24ne%22%3A%20null%7D", None),
    ("GET", "/tasks?status=pending&status=running", None),
    ("GET", f"/tasks?limit={10**9}", None),
    ("GET", "/tasks?offset=-1", None),
    ("GET", "/tasks/%24ne", None),
    ("GET", "/tasks/%7B%22%24gt%22%3A%22%22%7D", None),
    ("POST", "/tasks/%24where/cancel", None),
    ("DELETE", "/tasks/a%00b", None),
    ("POST", "/tasks", {"type": {"$ne": None}, "params": {}}),
    ("POST", "/tasks", {"type": "echo", "params": {"text": {"$gt": ""}}}),
    ("POST", "/tasks", {"type": "echo", "params": {"text": "x", "q": {"$where": "1"}}}),
    ("POST", "/tasks", {"type": "echo", "params": {"text": "x"}, "created_by": {"$ne": 1}}),
    ("POST", "/tasks", {"type": "echo", "params": {"text": "x", "n": 2**64 - 1}}),
    ("POST", "/tasks/sync-assets", {"provider": {"$ne": None}, "account_id": {"$gt": ""}}),
    ("POST", "/tasks", {"type": "echo", "params": {"text": "x"}, "idempotency_key": "k"}),
    ("GET", "/tasks", None),
]


@pytest.mark.wire
async def test_on_the_wire_no_client_operator_reaches_the_server() -> None:
    if not WIRE_URI:
        pytest.skip("MONGODB_URI is not set (scripts/test starts a wire server and sets it)")
    recorder = CommandRecorder()
    client: Any = AsyncMongoClient(
        WIRE_URI, serverSelectionTimeoutMS=5000, tz_aware=True, event_listeners=[recorder]
    )
    database = client[f"cam_tasks_security_{uuid.uuid4().hex[:12]}"]
    host = web.Application()
    cam_tasks.setup(
        host,
        cam_tasks.Settings(),
        executors=[EchoExecutor()],
        database=database,
        authenticate=authenticator(),
    )
    try:
        async with TestClient(TestServer(host)) as http:
            recorder.filters.clear()
            for method, path, body in ATTACKS:
                raw = None if body is None else json.dumps(body).encode()
                status, _, answer = await request(
                    http, method, f"{PREFIX}{path}", headers=bearer(ALICE), data=raw
                )
                assert status < 500, f"{method} {path}: {status} {answer[:200]!r}"
    finally:
        await client.drop_database(database.name)
        await client.close()
    assert recorder.filters
    for operation, sent in recorder.filters:
        assert not foreign_operators(sent), f"{operation} {sent}"
    for document in recorder.inserted:
        assert not list(dollar_keys(document)), document
