"""The OpenAPI document describes the API that is served: every route of the router and nothing
else, with the host's own task types, as valid OpenAPI 3.1, and real answers match it."""

from __future__ import annotations

import base64
import builtins
import hashlib
import re
from collections.abc import AsyncIterator
from typing import Any

import jsonschema
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator
from pydantic import BaseModel, ConfigDict, Field

import cam_tasks
from cam_tasks.config import load_settings
from cam_tasks.domain import ManualClock
from cam_tasks.executor import TaskContext
from cam_tasks.repository.memory import MemoryTaskRepository
from cam_tasks.service import TaskService
from cam_tasks.web import allow_anonymous, create_api
from cam_tasks.web.openapi import (
    documented_routes,
    error_codes,
    openapi_document,
    served_routes,
)
from cam_tasks.web.operations import Operation, Reply, documented, operation_of
from tests.security.support import ADMIN, api_app, authenticator, bearer
from tests.test_end_to_end import settings as example_settings
from tests.web.helpers import PREFIX, START, Client, make_registry


class ExportParams(BaseModel):
    """Export a page of assets to a file of the host's."""

    model_config = ConfigDict(extra="forbid")

    account_id: str = Field(min_length=1)
    page_size: int = Field(default=100, ge=1, le=1000)


class ExportAssetsExecutor:
    """A host's own task type, registered through ``cam_tasks.setup``."""

    type = "export_assets"
    params_model: builtins.type[BaseModel] = ExportParams

    async def execute(self, params: ExportParams, ctx: TaskContext) -> Any:
        return {"rows": 0}


@pytest.fixture
async def host() -> AsyncIterator[tuple[Client, web.Application]]:
    app = web.Application()
    cam_tasks.setup(app, example_settings(), executors=[ExportAssetsExecutor()])
    async with TestClient(TestServer(app)) as client:
        yield client, app


@pytest.fixture
async def document(host: tuple[Client, web.Application]) -> dict[str, Any]:
    client, _ = host
    response = await client.get(f"{PREFIX}/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    return dict(await response.json())


def operations_of(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }


def router_routes(app: web.Application) -> set[tuple[str, str]]:
    """Every (method, path relative to the API prefix) of the API's router, read from it at test
    time, but the HEAD twins aiohttp adds to GET routes."""
    found = set()
    for route in api_app(app, PREFIX).router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        canonical = route.resource.canonical
        assert canonical.startswith(PREFIX), canonical
        found.add((route.method, canonical.removeprefix(PREFIX)))
    return found


# -- the document -------------------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    OpenAPIV31SpecValidator(document).validate()
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_every_route_of_the_router_is_in_the_document(
    host: tuple[Client, web.Application], document: dict[str, Any]
) -> None:
    _, app = host
    served = router_routes(app)
    assert ("POST", "/tasks") in served  # the walk reads the real router
    assert ("GET", "/tasks/{task_id}/events") in served
    assert ("GET", "/openapi.json") in served
    assert served - operations_of(document) == set()


def test_every_documented_operation_is_served(
    host: tuple[Client, web.Application], document: dict[str, Any]
) -> None:
    _, app = host
    assert operations_of(document) - router_routes(app) == set()
    # In the full composition every route's handler carries its description: none is missing.
    described = {
        (method, path) for method, path, _ in documented_routes(api_app(app, PREFIX), PREFIX)
    }
    assert described == router_routes(app)


def test_a_handler_carries_one_description_per_method() -> None:
    one = Operation("one", "tasks", "One", "", (Reply(200, "ok"),))
    other = Operation("other", "tasks", "Other", "", (Reply(200, "ok"),))

    @documented(one, method="PATCH")
    @documented(other, method="put")
    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    assert operation_of(handler, "PATCH") is one
    assert operation_of(handler, "PUT") is other
    assert operation_of(handler, "GET") is None
    with pytest.raises(ValueError, match="already documented for PUT"):
        documented(one, method="PUT")(handler)


def test_every_operation_documents_success_and_errors(document: dict[str, Any]) -> None:
    public = {"/openapi.json", "/docs"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            statuses = set(operation["responses"])
            assert any(status.startswith("2") for status in statuses), where
            assert "500" in statuses, where
            assert operation["operationId"], where
            assert operation["summary"], where
            if path in public:
                assert operation["security"] == [], where
            else:
                assert "401" in statuses, where
            if "requestBody" in operation:
                assert {"400", "413", "415", "422"} <= statuses, where
            for status, response in operation["responses"].items():
                headers = resolve(document, response)["headers"]
                assert headers["X-Request-ID"]["required"] is True, f"{where} {status}"


def test_unauthenticated_and_throttled_answers_carry_their_headers(
    document: dict[str, Any],
) -> None:
    responses = document["components"]["responses"]
    assert responses["Unauthorized"]["headers"]["WWW-Authenticate"]["required"] is True
    assert responses["TooManyRequests"]["headers"]["Retry-After"]["required"] is True
    submit = document["paths"]["/tasks/sync-assets"]["post"]["responses"]
    assert submit["202"]["headers"]["Location"]["required"] is True
    assert "429" in submit
    get = document["paths"]["/tasks/{task_id}"]["get"]["responses"]
    assert get["200"]["headers"]["ETag"]["required"] is True
    assert get["304"]["headers"]["ETag"]["required"] is True
    assert "content" not in get["304"]


def test_error_codes_come_from_the_error_table(document: dict[str, Any]) -> None:
    assert error_codes(422) == ["unknown_task_type", "validation_error"]
    assert error_codes(429) == ["queue_full", "rate_limited"]
    assert error_codes(500) == ["internal_error"]
    narrowed = document["components"]["responses"]["UnprocessableContent"]["content"]
    schema = narrowed["application/json"]["schema"]
    assert schema["properties"]["code"] == {
        "type": "integer",
        "const": 422,
        "description": "The HTTP status.",
    }
    assert schema["properties"]["data"]["properties"]["error"]["enum"] == error_codes(422)


def test_bearer_tokens_are_documented_and_anonymous_use_allowed_for(
    document: dict[str, Any],
) -> None:
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert document["security"] == [{"bearerAuth": []}, {}]


def test_queries_are_typed_and_bounded(document: dict[str, Any]) -> None:
    parameters = {p["name"]: p for p in document["paths"]["/tasks"]["get"]["parameters"]}
    assert set(parameters) == {
        "type",
        "status",
        "created_by",
        "offset",
        "limit",
        "updated_since",
        "queue",
    }
    assert parameters["created_by"]["schema"].items() >= {"type": "string", "minLength": 1}.items()
    assert parameters["limit"]["schema"].items() >= {"minimum": 1, "maximum": 200}.items()
    assert parameters["status"]["style"] == "form"
    assert parameters["status"]["explode"] is False
    assert parameters["updated_since"]["schema"]["format"] == "date-time"
    wait = document["paths"]["/tasks/{task_id}"]["get"]["parameters"]
    wait_s = next(p for p in wait if p["name"] == "wait_s")["schema"]
    assert (wait_s["exclusiveMinimum"], wait_s["maximum"]) == (0, 60)
    task_id = next(p for p in wait if p["name"] == "task_id")
    assert task_id["in"] == "path"
    assert task_id["required"] is True
    assert re.fullmatch(task_id["schema"]["pattern"].strip("^$"), "0196-abc")


def test_the_event_stream_is_documented_event_by_event(document: dict[str, Any]) -> None:
    stream = document["paths"]["/tasks/{task_id}/events"]["get"]["responses"]["200"]
    event = stream["content"]["text/event-stream"]["schema"]
    assert event["properties"]["event"]["enum"] == ["status", "progress", "done"]
    assert event["properties"]["data"]["contentSchema"] == {"$ref": "#/components/schemas/TaskView"}


# -- the live executor registry -------------------------------------------------------------------


def test_a_host_executor_is_a_variant_of_the_submit_body(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    body = document["paths"]["/tasks"]["post"]["requestBody"]["content"]["application/json"]
    single, batch = body["schema"]["oneOf"]
    assert single == {"$ref": "#/components/schemas/SubmitTaskRequest"}
    assert batch["items"] == single
    assert (batch["minItems"], batch["maxItems"]) == (1, 1000)
    submit = schemas["SubmitTaskRequest"]
    mapping = submit["discriminator"]["mapping"]
    assert submit["discriminator"]["propertyName"] == "type"
    assert set(mapping) == {"sync_assets", "discover_assets", "export_assets"}
    variant = schemas[mapping["export_assets"].rsplit("/", 1)[1]]
    assert variant["properties"]["type"]["const"] == "export_assets"
    assert variant["properties"]["params"]["$ref"] == "#/components/schemas/ExportParams"
    assert "params" in variant["required"]  # ExportParams has a required field
    assert variant["additionalProperties"] is False
    params = schemas["ExportParams"]
    assert params["properties"]["page_size"].items() >= {"minimum": 1, "maximum": 1000}.items()
    assert params["description"] == "Export a page of assets to a file of the host's."
    # The other places a task type is named know it too.
    schedule = schemas["CreateScheduleRequest"]["discriminator"]["mapping"]
    assert "export_assets" in schedule
    types = next(p for p in document["paths"]["/tasks"]["get"]["parameters"] if p["name"] == "type")
    assert types["schema"]["enum"] == ["discover_assets", "export_assets", "sync_assets"]


def test_the_dedicated_routes_take_their_executors_params(document: dict[str, Any]) -> None:
    for path, model in [
        ("/tasks/sync-assets", "SyncAssetsParams"),
        ("/tasks/discover-assets", "DiscoverAssetsParams"),
    ]:
        body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"] == {"$ref": f"#/components/schemas/{model}"}
    sync = document["components"]["schemas"]["SyncAssetsParams"]
    assert set(sync["required"]) == {"provider", "account_id", "asset_types"}


async def _version(_: web.Request) -> web.Response:
    return web.json_response({"version": cam_tasks.__version__})


def _bare_api() -> tuple[web.Application, TaskService]:
    """``create_api`` over a service alone: no schedules, no statistics."""
    clock = ManualClock(START)
    service = TaskService(MemoryTaskRepository(clock=clock), make_registry(), clock=clock)
    return create_api(service, authenticate=allow_anonymous()), service


def test_only_the_routes_served_are_documented() -> None:
    api, service = _bare_api()
    api.router.add_get("/version", _version)  # a host's own, undocumented
    document = openapi_document(api, prefix="", registry=service.registry)
    paths = set(document["paths"])
    assert "/tasks" in paths
    assert not any(path.startswith(("/schedules", "/queue")) for path in paths)
    assert "/tasks/stats" not in paths
    assert "/version" not in paths
    assert ("GET", "/version") in served_routes(api, "")
    OpenAPIV31SpecValidator(document).validate()
    # A registry without the built-in executors: the dedicated routes take any object.
    assert document["components"]["schemas"]["SubmitTaskRequest"]["discriminator"]["mapping"]


# -- where it is served ---------------------------------------------------------------------------


async def test_the_document_follows_the_mount_prefix() -> None:
    host = web.Application()
    cam_tasks.setup(host, load_settings(api={"prefix": "/cam-api"}, auth={"allow_anonymous": True}))
    async with TestClient(TestServer(host)) as client:
        document = await (await client.get("/cam-api/openapi.json")).json()
        assert document["servers"][0]["url"] == "/cam-api"
        assert "/tasks" in document["paths"]
        assert document == await (await client.get("/cam-api/openapi.json")).json()


async def test_the_document_of_an_api_mounted_deeper_or_at_the_root() -> None:
    outer, host = web.Application(), web.Application()
    outer.add_subapp("/v1", _bare_api()[0])
    host.add_subapp("/outer", outer)
    async with TestClient(TestServer(host)) as client:
        document = await (await client.get("/outer/v1/openapi.json")).json()
        assert document["servers"][0]["url"] == "/outer/v1"
        assert "/tasks/{task_id}" in document["paths"]
    async with TestClient(TestServer(_bare_api()[0])) as client:
        document = await (await client.get("/openapi.json")).json()
        assert document["servers"][0]["url"] == "/"
        assert "/tasks/{task_id}" in document["paths"]


async def test_the_document_and_its_page_need_no_token(mongomock_db: Any) -> None:
    host = web.Application()
    cam_tasks.setup(host, cam_tasks.Settings(), database=mongomock_db, authenticate=authenticator())
    async with TestClient(TestServer(host)) as client:
        for path in ("/openapi.json", "/docs"):
            response = await client.get(f"{PREFIX}{path}")
            assert response.status == 200, path
            assert response.headers["X-Request-ID"]
        assert (await client.get(f"{PREFIX}/tasks")).status == 401
        assert (await client.get(f"{PREFIX}/tasks", headers=bearer(ADMIN))).status == 200


# -- real answers match it ------------------------------------------------------------------------


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node``, or what its ``$ref`` (into this document) points at."""
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


async def assert_documented(
    document: dict[str, Any], method: str, path: str, response: ClientResponse
) -> Any:
    """``response`` has a status the document lists for ``method path``, every header it says
    is always sent, and a body its schema accepts. Returns the body."""
    responses = document["paths"][path][method.lower()]["responses"]
    where = f"{method} {path} -> {response.status}"
    assert str(response.status) in responses, where
    documented = resolve(document, responses[str(response.status)])
    for name, header in documented["headers"].items():
        if header["required"]:
            assert name in response.headers, f"{where}: no {name}"
    if "content" not in documented:
        assert await response.read() == b"", where
        return None
    assert set(documented["content"]) == {response.content_type}, where
    if response.content_type != "application/json":  # the page
        assert await response.text(), where
        return None
    body = await response.json()
    schema = documented["content"][response.content_type]["schema"]
    # Its "#/components/..." references resolve against the root: give it the components.
    validator = Draft202012Validator({**schema, "components": document["components"]})
    errors = sorted(validator.iter_errors(body), key=str)
    assert not errors, f"{where}: {errors[0].message} at {list(errors[0].absolute_path)}"
    return body


async def test_real_answers_match_the_documented_schemas(
    host: tuple[Client, web.Application], document: dict[str, Any]
) -> None:
    client, _ = host

    async def check(status: int, method: str, path: str, url: str, **kwargs: Any) -> Any:
        response = await client.request(method, f"{PREFIX}{url}", **kwargs)
        assert response.status == status, f"{method} {url}: {await response.text()}"
        return await assert_documented(document, method, path, response)

    later = {"type": "export_assets", "params": {"account_id": "7"}, "delay_s": 3600.0}
    task_id = (await check(202, "POST", "/tasks", "/tasks", json=later))["data"]["task_id"]
    batch = await check(202, "POST", "/tasks", "/tasks", json=[later, later])
    assert len(batch["data"]) == 2
    await check(422, "POST", "/tasks", "/tasks", json=[{"type": "export_assets", "params": {}}])
    await check(422, "POST", "/tasks", "/tasks", json={"type": "nope"})
    await check(400, "POST", "/tasks/sync-assets", "/tasks/sync-assets", data=b"{", headers=_JSON)
    await check(415, "POST", "/tasks/sync-assets", "/tasks/sync-assets", data=b"x")
    viewed = await check(200, "GET", "/tasks/{task_id}", f"/tasks/{task_id}")
    assert viewed["data"]["status"] == "pending"
    etag = {"If-None-Match": (await client.get(f"{PREFIX}/tasks/{task_id}")).headers["ETag"]}
    await check(304, "GET", "/tasks/{task_id}", f"/tasks/{task_id}", headers=etag)
    await check(404, "GET", "/tasks/{task_id}", "/tasks/no-such-task")
    await check(400, "GET", "/tasks/{task_id}", "/tasks/%20bad%20")
    await check(200, "GET", "/tasks", "/tasks?status=pending,running&limit=5")
    await check(400, "GET", "/tasks", "/tasks?limit=0")
    await check(409, "DELETE", "/tasks/{task_id}", f"/tasks/{task_id}")  # still pending
    await check(200, "POST", "/tasks/{task_id}/cancel", f"/tasks/{task_id}/cancel")
    await check(202, "POST", "/tasks/{task_id}/retry", f"/tasks/{task_id}/retry")
    await check(200, "GET", "/tasks/stats", "/tasks/stats")
    await check(200, "GET", "/queue/stats", "/queue/stats")
    schedule = "/schedules/nightly-aliyun-sync"
    await check(200, "GET", "/schedules", "/schedules")
    await check(200, "GET", "/schedules/{name}", schedule)
    await check(202, "POST", "/schedules/{name}/run", f"{schedule}/run")
    await check(200, "POST", "/schedules/{name}/pause", f"{schedule}/pause")
    await check(409, "POST", "/schedules", "/schedules", json=_SCHEDULE)
    await check(200, "DELETE", "/schedules/{name}", schedule)
    await check(201, "POST", "/schedules", "/schedules", json=_SCHEDULE)
    await check(200, "GET", "/openapi.json", "/openapi.json")
    await check(200, "GET", "/docs", "/docs")


_SCHEDULE = {
    "name": "nightly-aliyun-sync",
    "expression": "30 2 * * *",
    "type": "export_assets",
    "params": {"account_id": "7"},
}
_JSON = {"Content-Type": "application/json"}


# -- the page -------------------------------------------------------------------------------------


async def test_the_page_is_served_self_contained(host: tuple[Client, web.Application]) -> None:
    client, _ = host
    response = await client.get(f"{PREFIX}/docs")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    # Nothing from another host: no URL with a scheme or a network path anywhere in it.
    assert not re.search(r"(?i)\b(?:https?|wss?|ftp):|//[a-z0-9.-]+\.[a-z]{2,}/|@import", page)
    links = re.findall(r"""(?i)\b(?:src|href|action)\s*=\s*["']([^"']*)["']""", page)
    assert links == ["data:,", "openapi.json"]
    policy = response.headers["Content-Security-Policy"]
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    styles = re.findall(r"<style>(.*?)</style>", page, re.S)
    assert len(scripts) == len(styles) == 1
    for kind, text in (("script", scripts[0]), ("style", styles[0])):
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"{kind}-src 'sha256-{digest}'" in policy
    assert "unsafe-inline" not in policy
    assert "connect-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_page_script_never_writes_html() -> None:
    from cam_tasks.web import docs_page

    script = (docs_page._STATIC / "api-docs.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script


@pytest.mark.parametrize(
    "schema_name", ["SubmitTaskRequest.export_assets", "UpdateScheduleRequest.same_type"]
)
async def test_priorities_are_documented_as_exactly_what_the_service_accepts(
    host: tuple[Client, web.Application], document: dict[str, Any], schema_name: str
) -> None:
    schema = document["components"]["schemas"][schema_name]["properties"]["priority"]
    accepted = [0, 3, "high", " URGENT ", "Low"]
    refused = [4, -1, "highest", ""]
    for value in accepted:
        jsonschema.validate(value, schema)
    for value in refused:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(value, schema)
    client, _ = host
    params = {"provider": "aliyun", "account_id": "123"}
    for value in accepted:  # each stored (no unique key: the same account would join one task)
        response = await client.post(
            f"{PREFIX}/tasks",
            json={"type": "discover_assets", "priority": value, "params": params, "unique_key": ""},
        )
        assert response.status == 202, await response.text()
    for value in refused:
        response = await client.post(
            f"{PREFIX}/tasks",
            json={"type": "discover_assets", "priority": value, "params": params},
        )
        assert response.status == 422, await response.text()
