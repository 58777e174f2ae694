"""Embedding cam_tasks into an existing aiohttp service, with an executor of your own.

Run it:  .venv/bin/python examples/embed_app.py   (then see the README's curl calls, with
         POST /api/v1/cam/tasks {"type": "export_assets", "params": {...}})
"""

from __future__ import annotations

import asyncio
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

import cam_tasks
from cam_tasks import PermanentError, TaskContext


class ExportParams(BaseModel):
    """What a client may ask for; unknown fields are refused with a 422."""

    model_config = ConfigDict(extra="forbid")

    account_id: str
    format: Literal["csv", "json"] = "csv"
    pages: int = Field(default=5, ge=1, le=100)


class ExportAssetsExecutor:
    """A task type of the host service: export an account's assets, page by page."""

    type = "export_assets"
    params_model = ExportParams
    max_retries = 2  # default for tasks of this type
    timeout_s = 600.0

    async def execute(self, params: ExportParams, ctx: TaskContext) -> dict[str, object]:
        if params.account_id == "0":
            raise PermanentError("account 0 cannot be exported")
        rows = 0
        for page in range(1, params.pages + 1):
            await asyncio.sleep(0.05)  # stands in for the real work of one page
            rows += 100
            ctx.report(
                message=f"Exported page {page}/{params.pages}", step=page, total_steps=params.pages
            )
        return {"rows": rows, "format": params.format, "file": f"/exports/{ctx.task_id}.csv"}


async def hello(request: web.Request) -> web.Response:
    return web.json_response({"service": "cam", "tasks": "/api/v1/cam/tasks"})


def create_app(settings: cam_tasks.Settings | None = None) -> web.Application:
    app = web.Application()
    app.router.add_get("/", hello)  # the host's own routes stay as they are
    cam_tasks.setup(app, settings, executors=[ExportAssetsExecutor()])
    return app


if __name__ == "__main__":
    # Open to whoever reaches it, for trying the example on your machine; a real host passes
    # setup(..., authenticate=its_own_hook) or configures [auth] tokens (docs/security.md).
    web.run_app(create_app(cam_tasks.load_settings(auth={"allow_anonymous": True})), port=8002)
