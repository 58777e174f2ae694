"""The server side of B5: the cam_tasks API and a bare aiohttp reference in one process.

``python -m benchmarks.http_server --port P`` serves on 127.0.0.1 only:

- ``/api/v1/cam/...``: ``CamTasks`` built from config.example.toml on ``memory://`` (provider
  ``aliyun`` over the packaged sample inventory, no simulated latency), mounted as a sub-app the
  way ``cam_tasks.setup`` mounts it. One ``sync_assets`` task is run to completion first, so
  ``GET /tasks/{id}`` serves a finished task with a real result and history. The dispatcher is
  then stopped: submits are measured without executions sharing the server's CPU.
- ``/ref/task``: a bare handler answering the same JSON document (serialised by orjson on
  every request); ``/ref/submit``: a bare handler that parses the JSON body and answers 202 with
  the same envelope shape and a Location header.

Access logs are off for both (a host decides its own). Prints ``READY <task_id>`` once serving;
runs until terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from cam_tasks import CamTasks, TaskStatus, load_settings

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "/api/v1/cam"
SYNC_PARAMS = {"provider": "aliyun", "account_id": "123", "asset_types": ["ecs", "rds"]}


async def _finished_task(runtime: CamTasks) -> str:
    task = await runtime.service.submit("sync_assets", SYNC_PARAMS)
    for _ in range(3000):
        current = await runtime.service.get(task.id)
        if current.status.is_terminal:
            assert current.status is TaskStatus.COMPLETED, current
            return task.id
        await asyncio.sleep(0.01)
    raise RuntimeError("the sample sync did not finish")


def _reference_routes(document: dict[str, Any]) -> web.RouteTableDef:
    routes = web.RouteTableDef()

    @routes.get("/ref/task")
    async def get_task(request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(document), content_type="application/json")

    @routes.post("/ref/submit")
    async def submit(request: web.Request) -> web.Response:
        orjson.loads(await request.read())
        task_id = str(uuid.uuid4())
        data = {"task_id": task_id, "message": "task submitted"}
        return web.Response(
            body=orjson.dumps({"code": 0, "msg": "success", "data": data}),
            status=202,
            content_type="application/json",
            headers={"Location": f"/ref/tasks/{task_id}"},
        )

    return routes


async def serve(port: int) -> None:
    settings = load_settings(
        ROOT / "config.example.toml",
        providers={
            "static": [
                {"name": "aliyun", "inventory": "builtin:sample_inventory.toml", "latency_s": 0}
            ]
        },
    )
    runtime = CamTasks(settings)
    await runtime.start()
    task_id = await _finished_task(runtime)
    await runtime.dispatcher.close()

    app = web.Application()
    app.add_subapp(settings.api.prefix, runtime.create_api())
    document: dict[str, Any] = {}
    app.add_routes(_reference_routes(document))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    async with aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{port}{PREFIX}/tasks/{task_id}"
        async with session.get(url) as response:
            document.update(orjson.loads(await response.read()))
    print(f"READY {task_id}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    await runner.cleanup()
    await runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("cam_tasks").setLevel(logging.ERROR)
    try:
        import uvloop  # what `cam-tasks serve` runs on when installed
    except ImportError:
        asyncio.run(serve(args.port))
    else:
        uvloop.run(serve(args.port))


if __name__ == "__main__":
    main()
