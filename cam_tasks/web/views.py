"""How a task is answered: its view, rendered by one function, and its location.

:func:`task_view` is the only renderer of a task: ``GET /tasks/{id}``, every answer that
returns a task, list pages and the event stream's ``data`` all go through it, so they show the
same fields in the same form. It builds the JSON of :class:`~cam_tasks.web.schemas.TaskView`
(the view's OpenAPI schema) directly with :meth:`TaskView.dump`.
"""

from __future__ import annotations

import re
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


#: Task ids that ``url_for`` puts in a path as they are (unreserved characters only): those
#: the service makes (hex digits) are.
_PLAIN_ID: Final = re.compile(r"[A-Za-z0-9_-]+")


def task_location(request: web.Request, task_id: str) -> str:
    """The path of the task ``task_id`` (``GET /tasks/{task_id}``)."""
    # Built from this app's router, so it carries whatever prefix the host mounted us under.
    resource = request.app.router[TASK_ROUTE]
    if _PLAIN_ID.fullmatch(task_id):
        # What url_for gives, without building and quoting a URL on every submit.
        before, _, after = resource.canonical.partition("{task_id}")
        return f"{before}{task_id}{after}"
    return str(resource.url_for(task_id=task_id))
