"""Where a task is: its Location is the path url_for gives, for every task id."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from cam_tasks.web.views import TASK_ROUTE, task_location


async def _answer(_request: web.Request) -> web.Response:
    return web.Response()


@pytest.mark.parametrize("prefix", ["/api/v1/cam", "/jobs", "/with space"])
@pytest.mark.parametrize(
    "task_id", ["0f1e2d3c4b5a69788796a5b4c3d2e1f0", "A_b-9", "a:b.c", "x.y", "..", "é"]
)
def test_a_location_is_the_path_url_for_gives(prefix: str, task_id: str) -> None:
    api = web.Application()
    api.router.add_get("/tasks/{task_id}", _answer, name=TASK_ROUTE)
    host = web.Application()
    host.add_subapp(prefix, api)
    request = make_mocked_request("GET", "/", app=api)

    expected = str(api.router[TASK_ROUTE].url_for(task_id=task_id))
    assert task_location(request, task_id) == expected
    assert expected.startswith(f"{prefix}/tasks/")
