"""Running the docs' ``js`` blocks in a real headless Chromium against the live service.

Each block defines one function ``NAME(apiBase, taskId, onChange)`` that follows a task and
resolves with its final view, and ends with a usage comment ``// NAME("/api/v1/cam", taskId,
...)``. The test submits a sync on the service, opens the service's dashboard (``/cam/``) in
the browser, so that ``apiBase`` is same-origin as for any page of the host, and runs the
block there with ``execute_async_script``, calling ``NAME`` with the usage comment's
``apiBase``, the task's id and an ``onChange`` that records every view. The function must
resolve with the task ``completed``, having reported views whose progress never goes back and
whose last one is that final state; the browser console must show no error.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp

from tests.docs.blocks import Block
from tests.docs.service import API, Service

SCRIPT_TIMEOUT_S = 30.0

_FUNCTION = re.compile(
    r"^(?:async\s+)?function\s+(\w+)\s*\(\s*apiBase\s*,\s*taskId\s*,\s*onChange\s*\)", re.MULTILINE
)

_HARNESS = """
const [apiBase, taskId, done] = arguments;
%(code)s
const views = [];
%(name)s(apiBase, taskId, (view) => views.push(view)).then(
  (final) => done({final, views, error: null}),
  (error) => done({final: null, views, error: String(error)}),
);
"""


async def run_js(block: Block, service: Service, browser: Any) -> None:
    declared = _FUNCTION.search(block.code)
    assert declared, "a JS sample defines `function NAME(apiBase, taskId, onChange)`"
    name = declared[1]
    usage = re.search(rf'^//\s*{name}\("([^"]+)",\s*taskId,', block.code, re.MULTILINE)
    assert usage, f'a JS sample ends with a usage comment: // {name}("/api/...", taskId, ...)'
    api_base = usage[1]
    assert api_base == API, f"the usage comment's apiBase {api_base!r} is not the API's {API!r}"

    body = {"provider": "aliyun", "account_id": "123", "asset_types": ["ecs", "rds"]}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{service.url}{API}/tasks/sync-assets", json=body) as response,
    ):
        assert response.status == 202, await response.text()
        task_id = (await response.json())["data"]["task_id"]

    await asyncio.to_thread(browser.set_script_timeout, SCRIPT_TIMEOUT_S)
    await asyncio.to_thread(browser.get, f"{service.url}/cam/")  # the dashboard: same origin
    script = _HARNESS % {"code": block.code, "name": name}
    outcome = await asyncio.to_thread(browser.execute_async_script, script, api_base, task_id)

    assert outcome["error"] is None, outcome
    final, views = outcome["final"], outcome["views"]
    assert (final["id"], final["status"]) == (task_id, "completed"), final
    assert views, "onChange was never called"
    assert views[-1]["status"] == "completed", views
    progress = [view["progress"] for view in views]
    assert progress == sorted(progress), progress
    logs = await asyncio.to_thread(browser.get_log, "browser")
    assert [entry for entry in logs if entry.get("level") == "SEVERE"] == []
