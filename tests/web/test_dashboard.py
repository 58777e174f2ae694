"""The dashboard is served by the app: its page, its assets, and the headers that keep task data
from ever running as code. (tests/browser drives it in a real Chromium.)"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cam_tasks.web.dashboard import create_dashboard


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    host = web.Application()
    host.add_subapp("/cam", create_dashboard('/api/v1/"cam"<x>'))
    async with TestClient(TestServer(host)) as test_client:
        yield test_client


async def test_the_page_names_the_api_prefix_escaped(client: TestClient) -> None:
    response = await client.get("/cam/")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    assert '<meta name="cam-api" content="/api/v1/&quot;cam&quot;&lt;x&gt;">' in page
    assert '<script type="module" src="app.js"></script>' in page


async def test_the_prefix_without_a_slash_redirects_to_the_page(client: TestClient) -> None:
    response = await client.get("/cam", allow_redirects=False)
    assert response.status == 308
    assert response.headers["Location"] == "/cam/"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/cam/app.js", "text/javascript"),
        ("/cam/cron.js", "text/javascript"),
        ("/cam/app.css", "text/css"),
    ],
)
async def test_assets_are_served_with_their_types(
    client: TestClient, path: str, content_type: str
) -> None:
    response = await client.get(path)
    assert response.status == 200
    assert response.content_type == content_type
    assert await response.read()


@pytest.mark.parametrize("path", ["/cam/", "/cam/app.js", "/cam/app.css"])
async def test_every_answer_forbids_inline_script_and_framing(
    client: TestClient, path: str
) -> None:
    response = await client.get(path)
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_nothing_else_is_served(client: TestClient) -> None:
    assert (await client.get("/cam/index.html")).status == 404
    assert (await client.get("/cam/../pyproject.toml")).status == 404


def test_no_script_of_the_page_writes_html() -> None:
    from cam_tasks.web import dashboard

    modules = [name for name, kind in dashboard._ASSETS.items() if kind == "text/javascript"]
    assert "app.js" in modules
    for name in modules:
        script = (dashboard._STATIC / name).read_text(encoding="utf-8")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in script, (name, sink)
