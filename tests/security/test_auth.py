"""Authentication: every route of the API answers only a valid credential, and the ways the API
can be mounted all fail closed."""

from __future__ import annotations

import hashlib
import logging

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

import cam_tasks
from cam_tasks.config import load_settings
from cam_tasks.domain import ANONYMOUS, ConfigurationError, ManualClock, Principal, Role
from cam_tasks.repository.memory import MemoryTaskRepository
from cam_tasks.service import TaskService
from cam_tasks.web import (
    AuthenticationError,
    BearerTokenAuthenticator,
    allow_anonymous,
    authentication_middleware,
    create_api,
    principal_of,
    token_digest,
)
from tests.security.conftest import SecureApi, Stack
from tests.security.support import (
    ADMIN,
    ALICE,
    PUBLIC_TEMPLATES,
    TOKEN_OF,
    VERA,
    Route,
    api_app,
    authenticator,
    bearer,
    request,
    routes_of,
)
from tests.web.helpers import PREFIX, START, MakeClient, assert_error, make_registry

#: A credential of each kind the matrix tries; ``valid`` is the admin's token.
CREDENTIALS = {
    "none": {},
    "malformed": {"Authorization": "Basic cm9vdDpzZWNyZXQ="},
    "wrong": {"Authorization": "Bearer not-a-known-token-0123456789"},
    "valid": bearer(ADMIN),
}
MALFORMED = [
    "Bearer",
    "Bearer ",
    "Bearer  " + TOKEN_OF["root"],
    "Bearer " + TOKEN_OF["root"] + " extra",
    "Bearer tok\ten",
    "Token " + TOKEN_OF["root"],
    TOKEN_OF["root"],
    "Bearer é" + TOKEN_OF["root"],
]


async def _existing_task(stack: Stack) -> str:
    response = await stack.client.post(
        f"{PREFIX}/tasks", json={"type": "echo", "params": {"text": "x"}}, headers=bearer(ADMIN)
    )
    assert response.status == 202, await response.text()
    return str((await response.json())["data"]["task_id"])


async def test_every_route_answers_only_a_valid_token(stack: Stack) -> None:
    routes = routes_of(api_app(stack.host, PREFIX))
    # Read from the router, not written down: whatever anyone adds is in the matrix.
    assert Route("POST", f"{PREFIX}/tasks") in routes
    assert Route("GET", f"{PREFIX}/tasks/{{task_id}}") in routes
    public = [route for route in routes if route.template in PUBLIC_TEMPLATES]
    assert {route.template for route in public} == PUBLIC_TEMPLATES
    task_id = await _existing_task(stack)
    checked = 0
    for route in routes:
        path = route.path(task_id=task_id)
        for kind, headers in CREDENTIALS.items():
            body = b"{}" if route.has_body else None
            status, response_headers, raw = await request(
                stack.client, route.method, path, headers=headers, data=body
            )
            where = f"{route.method} {path} with {kind} credentials"
            assert response_headers.get("X-Request-ID"), where
            if route in public:  # the OpenAPI document and its page, whatever is presented
                assert status == 200, f"{where}: {status} {raw[:200]!r}"
                continue
            if kind == "valid":
                assert status not in (401, 403), f"{where}: {status} {raw[:200]!r}"
                assert status < 500, f"{where}: {status} {raw[:200]!r}"
                continue
            assert status == 401, f"{where}: {status} {raw[:200]!r}"
            assert response_headers["WWW-Authenticate"].startswith('Bearer realm="cam_tasks"')
            if route.method != "HEAD":
                envelope = orjson.loads(raw)
                assert envelope["code"] == 401
                assert envelope["data"]["error"] == "unauthorized"
            checked += 1
    assert checked == 3 * (len(routes) - len(public))


async def test_unknown_routes_do_not_reveal_themselves_without_a_token(stack: Stack) -> None:
    for path in ("/nowhere", "/tasks/x/y/z", "/admin"):
        response = await stack.client.get(f"{PREFIX}{path}")
        await assert_error(response, 401, "unauthorized")
        response = await stack.client.get(f"{PREFIX}{path}", headers=bearer(ADMIN))
        await assert_error(response, 404, "not_found")


@pytest.mark.parametrize("value", MALFORMED)
async def test_malformed_authorization_is_a_401_naming_invalid_token(
    api: SecureApi, value: str
) -> None:
    response = await api.client.get(f"{PREFIX}/tasks", headers={"Authorization": value})
    await assert_error(response, 401, "unauthorized")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_two_authorization_headers_are_refused(api: SecureApi) -> None:
    token = bearer(ADMIN)["Authorization"]
    headers = [("Authorization", token), ("Authorization", token)]
    response = await api.client.get(f"{PREFIX}/tasks", headers=headers)
    await assert_error(response, 401, "unauthorized")


async def test_a_missing_token_is_a_bare_challenge(api: SecureApi) -> None:
    response = await api.client.get(f"{PREFIX}/tasks")
    data = await assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="cam_tasks"'
    assert data["details"] == []


async def test_the_scheme_is_case_insensitive(api: SecureApi) -> None:
    token = TOKEN_OF["alice"]
    for scheme in ("bearer", "BEARER", "Bearer"):
        response = await api.client.get(
            f"{PREFIX}/tasks", headers={"Authorization": f"{scheme} {token}"}
        )
        assert response.status == 200, scheme


async def test_a_viewer_may_only_read_whatever_the_route(api: SecureApi) -> None:
    # The middleware's safety net: routes that forget to check permissions are still closed.
    for method, path in [
        ("POST", "/tasks"),
        ("POST", "/tasks/abc/cancel"),
        ("DELETE", "/tasks/abc"),
        ("PUT", "/anything"),
    ]:
        response = await api.client.request(method, f"{PREFIX}{path}", headers=bearer(VERA))
        await assert_error(response, 403, "forbidden")
    assert (await api.client.get(f"{PREFIX}/tasks", headers=bearer(VERA))).status == 200


# -- the hook -------------------------------------------------------------------------------------


async def test_a_host_hook_decides_who_the_request_is(make_secure_client: MakeClient) -> None:
    async def authenticate(request: web.Request) -> Principal:
        user = request.headers.get("X-Host-User")
        if user is None:
            raise AuthenticationError("log in first", challenge='Cookie realm="host"')
        return Principal(name=user, projects=("host-project",), role=Role.OPERATOR)

    service = _service()
    client = await make_secure_client(service, authenticate=authenticate)

    refused = await client.get(f"{PREFIX}/tasks")
    data = await assert_error(refused, 401, "unauthorized")
    assert refused.headers["WWW-Authenticate"] == 'Cookie realm="host"'
    assert data == {"error": "unauthorized", "details": []}

    submitted = await client.post(
        f"{PREFIX}/tasks",
        json={"type": "echo", "params": {"text": "x"}},
        headers={"X-Host-User": "carol"},
    )
    assert submitted.status == 202
    task_id = (await submitted.json())["data"]["task_id"]
    task = await service.get(task_id)
    assert (task.created_by, task.project_id) == ("carol", "host-project")


async def test_a_hook_that_fails_or_returns_nonsense_lets_nobody_in(
    make_secure_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(request: web.Request) -> Principal:
        raise RuntimeError("identity provider down at /srv/idp.py")

    async def nonsense(request: web.Request) -> Principal:
        return "admin"  # type: ignore[return-value]

    for hook in (broken, nonsense):
        client = await make_secure_client(_service(), authenticate=hook)
        with caplog.at_level(logging.ERROR, logger="cam_tasks.web"):
            response = await client.get(f"{PREFIX}/tasks")
        await assert_error(response, 500, "internal_error")
        assert "idp" not in await response.text()


async def test_public_paths_skip_authentication_and_nothing_else(
    make_secure_client: MakeClient,
) -> None:
    client = await make_secure_client(_service(), public_paths=["/tasks/{task_id}"])
    # The public route runs without a principal; its handler needs one, so it still refuses.
    response = await client.get(f"{PREFIX}/tasks/abc")
    await assert_error(response, 401, "unauthorized")
    assert (await client.get(f"{PREFIX}/tasks")).status == 401


async def test_public_paths_must_be_absolute() -> None:
    with pytest.raises(ValueError, match="must start with /"):
        authentication_middleware(allow_anonymous(), public_paths=["health"])


def test_principal_of_a_request_without_one_refuses() -> None:
    with pytest.raises(AuthenticationError):
        principal_of(make_mocked_request("GET", "/"))


# -- the bearer-token authenticator ---------------------------------------------------------------


async def test_tokens_may_be_given_as_digests() -> None:
    token = "a-token-kept-only-as-a-digest"
    authenticate = BearerTokenAuthenticator(token_sha256={token_digest(token): ALICE})
    ok = make_mocked_request("GET", "/", headers={"Authorization": f"Bearer {token}"})
    assert await authenticate(ok) == ALICE
    assert token_digest(token) == hashlib.sha256(token.encode()).hexdigest()
    wrong = make_mocked_request("GET", "/", headers={"Authorization": f"Bearer {token}x"})
    with pytest.raises(AuthenticationError):
        await authenticate(wrong)


async def test_anonymous_mode_of_the_token_authenticator_never_downgrades_a_bad_token() -> None:
    authenticate = BearerTokenAuthenticator({TOKEN_OF["alice"]: ALICE}, anonymous=ANONYMOUS)
    assert await authenticate(make_mocked_request("GET", "/")) == ANONYMOUS
    bad = make_mocked_request("GET", "/", headers={"Authorization": "Bearer wrong-token-123456"})
    with pytest.raises(AuthenticationError):
        await authenticate(bad)


@pytest.mark.parametrize(
    ("tokens", "digests", "message"),
    [
        ({"short": ALICE}, {}, "at least 16"),
        ({"has spaces in it, 0123456789": ALICE}, {}, "at least 16"),
        ({}, {"abc": ALICE}, "64 hex"),
        ({"same-token-0123456789": ALICE}, {token_digest("same-token-0123456789"): VERA}, "twice"),
    ],
)
def test_bad_token_configurations_are_refused(
    tokens: dict[str, Principal], digests: dict[str, Principal], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        BearerTokenAuthenticator(tokens, token_sha256=digests)


# -- mounting through setup() ---------------------------------------------------------------------


def test_mounting_the_api_without_any_authenticator_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="no authenticator"):
        cam_tasks.setup(web.Application(), cam_tasks.Settings())


async def test_allow_anonymous_opens_the_api_as_admin_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    host = web.Application()
    with caplog.at_level(logging.WARNING, logger="cam_tasks.module"):
        cam_tasks.setup(host, load_settings(auth={"allow_anonymous": True}))
    assert any("without credentials" in r.getMessage() for r in caplog.records)
    async with TestClient(TestServer(host)) as client:
        response = await client.post(
            f"{PREFIX}/tasks/discover-assets", json={"provider": "none", "account_id": "1"}
        )
        assert response.status == 422  # authenticated as anonymous; the provider is unknown
        assert (await client.get(f"{PREFIX}/tasks")).status == 200


async def test_tokens_from_the_environment_authenticate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tokens = {
        "ci": {"token": "ci-token-from-the-environment", "role": "operator", "projects": ["p"]},
        "ops": {"token_sha256": token_digest("ops-token-from-a-file-0000"), "role": "admin"},
    }
    monkeypatch.setenv("CAM_TASKS_AUTH__TOKENS", orjson.dumps(tokens).decode())
    settings = load_settings()
    assert "ci-token-from-the-environment" not in repr(settings)
    host = web.Application()
    cam_tasks.setup(host, settings)
    async with TestClient(TestServer(host)) as client:
        assert (await client.get(f"{PREFIX}/tasks")).status == 401
        for token in ("ci-token-from-the-environment", "ops-token-from-a-file-0000"):
            response = await client.get(
                f"{PREFIX}/tasks", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status == 200, token


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        ({"x": {"token": "short", "role": "admin"}}, "at least 16"),
        ({"x": {"role": "admin"}}, "exactly one"),
        ({"x": {"token": "a-long-enough-token-000", "role": "operator"}}, "at least one project"),
    ],
)
def test_invalid_token_settings_are_configuration_errors(
    tokens: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        cam_tasks.setup(web.Application(), load_settings(auth={"tokens": tokens}))


def _service() -> TaskService:
    clock = ManualClock(START)
    return TaskService(MemoryTaskRepository(clock=clock), make_registry(), clock=clock)


@pytest.mark.parametrize("prefix", ["/api/v1/cam", ""])
async def test_a_public_path_is_served_without_a_token_wherever_the_api_is_mounted(
    prefix: str,
) -> None:
    async def version(request: web.Request) -> web.Response:
        return web.json_response({"version": cam_tasks.__version__})

    api = create_api(_service(), authenticate=authenticator(), public_paths=["/version"])
    api.router.add_get("/version", version)
    host = web.Application()
    outer = web.Application()
    outer.add_subapp(prefix or "/v", api)
    host.add_subapp("/outer", outer)
    base = f"/outer{prefix or '/v'}"
    async with TestClient(TestServer(host)) as client:
        assert (await client.get(f"{base}/version")).status == 200
        await assert_error(await client.get(f"{base}/tasks"), 401, "unauthorized")
        assert (await client.get(f"{base}/tasks", headers=bearer(ADMIN))).status == 200
