"""The queue routes: the cluster's queues and pausing them.

- ``GET /queues``: ``data.queues``, every declared queue with its per-process ``concurrency``,
  whether it is ``paused``, and its ``pending`` / ``running`` tasks in the store (every
  instance; only the caller's projects);
- ``POST /queues/{name}/pause`` and ``/resume``: store the flag every instance's dispatcher
  reads each poll interval (a paused queue's pending tasks are claimed by no instance; running
  ones finish). Needs operate; 404 for an undeclared queue.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web
from pydantic import BaseModel, Field

from cam_tasks.service import QueueInfo, QueueService
from cam_tasks.web.auth import principal_of
from cam_tasks.web.envelope import success_response
from cam_tasks.web.operations import Operation, Reply, documented
from cam_tasks.web.requests import reject_query

__all__ = ["QUEUES_KEY", "QueueListView", "QueueView", "queue_routes"]

#: The :class:`QueueService` the handlers call.
QUEUES_KEY: Final = web.AppKey("cam_tasks.queues", QueueService)

queue_routes = web.RouteTableDef()


class QueueView(BaseModel):
    name: str
    concurrency: int = Field(description="Worker slots each process serving it gives it.")
    paused: bool = Field(description="Paused queues are claimed by no instance.")
    pending: int = Field(description="Pending tasks in the store (every instance).")
    running: int = Field(description="Running tasks in the store (every instance).")

    @classmethod
    def of(cls, queue: QueueInfo) -> QueueView:
        return cls(
            name=queue.name,
            concurrency=queue.concurrency,
            paused=queue.paused,
            pending=queue.pending,
            running=queue.running,
        )


class QueueListView(BaseModel):
    queues: list[QueueView]


def _no_query(request: web.Request) -> None:
    reject_query(request)


@queue_routes.get("/queues")
@documented(
    Operation(
        "list_queues",
        "queues",
        "List the queues",
        "Every declared queue (and any queue still holding tasks) by name: concurrency, "
        "paused flag, pending and running tasks across all instances (the caller's projects). "
        "Takes no query (400).",
        (Reply(200, "The queues.", QueueListView),),
        errors=frozenset({400, 503}),
    )
)
async def list_queues(request: web.Request) -> web.Response:
    """Every queue with its flag and counts: ``data: {queues}``."""
    _no_query(request)
    queues = await request.app[QUEUES_KEY].list(principal=principal_of(request))
    view = QueueListView(queues=[QueueView.of(queue) for queue in queues])
    return success_response(view.model_dump(mode="json"))


async def _set(request: web.Request, *, paused: bool) -> web.Response:
    _no_query(request)
    service = request.app[QUEUES_KEY]
    name, principal = request.match_info["name"], principal_of(request)
    if paused:
        queue = await service.pause(name, principal=principal)
    else:
        queue = await service.resume(name, principal=principal)
    return success_response(QueueView.of(queue).model_dump(mode="json"))


@queue_routes.post("/queues/{name}/pause")
@documented(
    Operation(
        "pause_queue",
        "queues",
        "Pause a queue cluster-wide",
        "Stored: every instance stops claiming the queue's pending tasks within its poll "
        "interval; running tasks finish. Idempotent. Needs operate (403); 404 for an "
        "undeclared queue.",
        (Reply(200, "The queue, paused.", QueueView),),
        errors=frozenset({400, 403, 404, 503}),
    )
)
async def pause_queue(request: web.Request) -> web.Response:
    """Pause the queue: 200 with it."""
    return await _set(request, paused=True)


@queue_routes.post("/queues/{name}/resume")
@documented(
    Operation(
        "resume_queue",
        "queues",
        "Resume a paused queue",
        "Every instance claims from it again within its poll interval. Idempotent. Needs "
        "operate (403); 404 for an undeclared queue.",
        (Reply(200, "The queue, resumed.", QueueView),),
        errors=frozenset({400, 403, 404, 503}),
    )
)
async def resume_queue(request: web.Request) -> web.Response:
    """Resume the queue: 200 with it."""
    return await _set(request, paused=False)
