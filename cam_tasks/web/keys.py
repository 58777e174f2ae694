"""The application keys more than one handler module reads.

Keys only one module reads live in that module (``SCHEDULES_KEY``, ``STATS_KEY``…); these are
shared by the task routes, the event stream and the documentation routes, so they live apart
from all of them and no handler module imports another.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from cam_tasks.service import TaskService
from cam_tasks.service.watch import TaskWatcher

__all__ = ["SERVICE_KEY", "WATCHER_KEY"]

#: The :class:`TaskService` the handlers call.
SERVICE_KEY: Final = web.AppKey("cam_tasks.service", TaskService)
#: The :class:`TaskWatcher` long polls and event streams wait on.
WATCHER_KEY: Final = web.AppKey("cam_tasks.watcher", TaskWatcher)
