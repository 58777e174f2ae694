"""How a task is answered: its view, rendered by one function, and its location.

:func:`task_view` is the only renderer of a task: ``GET /tasks/{id}``, every answer that
returns a task, list pages and the event stream's ``data`` all go through it, so they show the
same fields in the same form. It builds the JSON of :class:`~cam_tasks.web.schemas.TaskView`
(the view's OpenAPI schema) directly with :meth:`TaskView.dump`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from aiohttp import web

from cam_tasks.domain import Task
from cam_tasks.web.keys import SERVICE_KEY
from cam_tasks.web.schemas import TaskView

__all__ = ["TASK_ROUTE", "task_location", "task_view", "task_views"]

#: The name of the ``GET /tasks/{task_id}`` route (for :func:`task_location`).
TASK_ROUTE: Final = "cam_tasks.task"


def task_view(request: web.Request, task: Task, *, now: datetime | None = None) -> dict[str, Any]:
    """``task`` as the API shows it (``TaskView``'s JSON), as of ``now`` (default: the
    service's clock now; ``duration`` and ``eta_s`` of a running task depend on it)."""
    if now is None:
        now = request.app[SERVICE_KEY].clock.now()
    return TaskView.dump(task, now=now)


def task_views(request: web.Request, tasks: Iterable[Task]) -> list[dict[str, Any]]:
    """The views of ``tasks``, all as of one instant (a list page is one snapshot)."""
    now = request.app[SERVICE_KEY].clock.now()
    return [task_view(request, task, now=now) for task in tasks]


def task_location(request: web.Request, task_id: str) -> str:
    """The path of the task ``task_id`` (``GET /tasks/{task_id}``)."""
    # Built from this app's router, so it carries whatever prefix the host mounted us under.
    return str(request.app.router[TASK_ROUTE].url_for(task_id=task_id))
