"""create_api: the API as an aiohttp sub-application, ready for a host to mount."""

from __future__ import annotations

from aiohttp import web

from cam_tasks.service import TaskService
from cam_tasks.web.errors import error_middleware
from cam_tasks.web.routes import MAX_BODY_BYTES_KEY, SERVICE_KEY, routes

__all__ = ["DEFAULT_MAX_BODY_BYTES", "create_api"]

DEFAULT_MAX_BODY_BYTES = 1_048_576


def create_api(
    service: TaskService, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> web.Application:
    """The task API over ``service``, meant to be mounted by a host application::

        host_app.add_subapp("/api/v1/cam", create_api(service))

    Paths inside it are relative (``/tasks``…); ``Location`` headers carry the mount prefix.
    Request bodies larger than ``max_body_bytes`` are refused with 413 (the host app's
    ``client_max_size`` does not apply to a sub-app's own reading). The app neither starts nor
    stops the service: its owner (the composition root) does. ValueError when
    ``max_body_bytes < 1``.
    """
    if max_body_bytes < 1:
        raise ValueError("max_body_bytes must be >= 1")
    app = web.Application(middlewares=[error_middleware])
    app[SERVICE_KEY] = service
    app[MAX_BODY_BYTES_KEY] = max_body_bytes
    app.add_routes(routes)
    return app
