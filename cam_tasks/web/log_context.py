"""The request id in every log record of its request: a logging filter that copies it (and
fixed process fields such as ``owner``) onto records.

The error middleware gives each request its id (:data:`~cam_tasks.web.errors.REQUEST_ID_KEY`)
and puts it in :data:`current_request_id` while the handler runs. A context variable follows
the handler's awaits and the asyncio tasks it starts, and no other request's, so every record
logged on the request's behalf can carry it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiohttp import web
from aiohttp.typedefs import Handler

from cam_tasks.web.errors import REQUEST_ID_KEY, current_request_id

__all__ = ["LogContextFilter", "current_request_id", "request_id_middleware"]


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Expose the request's id to logging for the duration of the handler.

    :func:`~cam_tasks.web.errors.error_middleware` does this itself (``create_api`` installs
    only that one); this is for a host that sets ``REQUEST_ID_KEY`` itself."""
    token = current_request_id.set(request.get(REQUEST_ID_KEY))
    try:
        return await handler(request)
    finally:
        current_request_id.reset(token)


class LogContextFilter(logging.Filter):
    """Adds ``request_id`` (from :data:`current_request_id`) and ``fields`` (fixed values of
    this process, e.g. ``owner``) to every record that does not carry them already.

    Attach it to a handler: it never drops a record.
    """

    def __init__(self, fields: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.fields = dict(fields or {})

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = current_request_id.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        for name, value in self.fields.items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True
