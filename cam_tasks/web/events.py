"""``GET /tasks/{id}/events``: a task's changes as server-sent events (aiohttp-sse).

Events, each carrying the task view as JSON (the ``data`` of ``GET /tasks/{id}``, rendered by
the same :func:`~cam_tasks.web.views.task_view`):

- ``status``: the lifecycle changed: status, attempt, a cancel request, the schedule or the
  start/end times. The first event of a stream is always one (the state as the client finds it);
- ``progress``: only progress changed (``progress``, ``message``, ``step``, ``total_steps``,
  ``step_name``);
- ``done``: once, after the ``status`` event of a terminal state; the stream then ends.

Event ids name the state the client has after the event: ``<S>-<P>`` where ``S`` and ``P`` are
short digests of the lifecycle and progress fields of the view, and ``<S>-<P>-done`` for
``done``. On reconnect (``Last-Event-ID``) the server compares them with the task as stored now,
on whatever instance, and sends only what differs: nothing is sent twice, and the client always
catches up with the current state. States that were superseded before the server read them
(while disconnected, or between two reads) are not replayed: the store keeps only the latest
state, so the stream carries states, not every transition (``attempts`` and ``history`` in the
view tell what happened in between). A reconnect after ``done`` to an unchanged task answers
``204``, which tells an ``EventSource`` to stop reconnecting.

Keep-alive comment lines (``: ping``) go out every ``keepalive_s``; a stream whose client went
away ends within one interval. The stream also ends when the application shuts down (the client
reconnects, to this or another instance, and resumes), and when the store cannot be read (the
client's reconnect then gets the error as a normal JSON answer).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from aiohttp import web
from aiohttp_sse import EventSourceResponse

from cam_tasks.domain import CamTasksError, Task
from cam_tasks.service.watch import TaskSubscription
from cam_tasks.web.auth import principal_of
from cam_tasks.web.errors import REQUEST_ID_HEADER, REQUEST_ID_KEY
from cam_tasks.web.keys import SERVICE_KEY, WATCHER_KEY
from cam_tasks.web.operations import Content, Operation, Reply, documented
from cam_tasks.web.requests import task_id_of
from cam_tasks.web.schemas import TaskView
from cam_tasks.web.views import task_view

__all__ = [
    "DEFAULT_KEEPALIVE_S",
    "KEEPALIVE_S_KEY",
    "RECONNECT_MS",
    "StreamPosition",
    "events_of",
    "routes",
]

logger = logging.getLogger(__name__)

#: Seconds between keep-alive comments: well under the idle timeouts of common proxies (60 s).
DEFAULT_KEEPALIVE_S: Final = 15.0
#: Seconds between keep-alive comments of this API's streams.
KEEPALIVE_S_KEY: Final = web.AppKey("cam_tasks.sse_keepalive_s", float)
#: Reconnection delay suggested to the client with the first event (``retry:``), in ms.
RECONNECT_MS: Final = 1000

_LIFECYCLE_FIELDS: Final = (
    "status",
    "attempts",
    "cancel_requested",
    "run_at",
    "started_at",
    "completed_at",
    "error",
)
_PROGRESS_FIELDS: Final = ("progress", "message", "step", "total_steps", "step_name")
EVENT_ID_PATTERN = re.compile(r"([0-9a-f]{16})-([0-9a-f]{16})(-done)?")

routes = web.RouteTableDef()


def _digest(view: Mapping[str, Any], fields: Sequence[str], *extra: Any) -> str:
    payload = orjson.dumps([[view.get(name) for name in fields], *extra])
    return hashlib.blake2b(payload, digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class StreamPosition:
    """What a client has seen of a task: the lifecycle and progress digests of the last state
    it received, and whether it received ``done`` for it."""

    lifecycle: str
    progress: str
    done: bool = False

    @classmethod
    def of(cls, view: Mapping[str, Any]) -> StreamPosition:
        history = view.get("history") or ()
        return cls(_digest(view, _LIFECYCLE_FIELDS, len(history)), _digest(view, _PROGRESS_FIELDS))

    @classmethod
    def parse(cls, event_id: str | None) -> StreamPosition | None:
        """The position an event id names; None for no id or one this server never sent."""
        match = EVENT_ID_PATTERN.fullmatch(event_id or "")
        if match is None:
            return None
        return cls(match.group(1), match.group(2), match.group(3) is not None)

    @property
    def event_id(self) -> str:
        return f"{self.lifecycle}-{self.progress}" + ("-done" if self.done else "")


def events_of(
    seen: StreamPosition | None, view: Mapping[str, Any]
) -> tuple[list[tuple[str, str]], StreamPosition]:
    """The events (name, id) that bring a client at ``seen`` to the state ``view`` shows, and
    its position after them."""
    now = StreamPosition.of(view)
    events: list[tuple[str, str]] = []
    if seen is None or seen.lifecycle != now.lifecycle:
        events.append(("status", now.event_id))
    elif seen.progress != now.progress:
        events.append(("progress", now.event_id))
    if view.get("status") in {"completed", "failed", "cancelled"}:
        if seen is not None and seen.done and not events:  # it has this state's ``done``
            return [], seen
        now = StreamPosition(now.lifecycle, now.progress, done=True)
        events.append(("done", now.event_id))
    return events, now


@routes.get("/tasks/{task_id}/events")
@documented(
    Operation(
        "task_events",
        "tasks",
        "Follow a task as server-sent events",
        "Events: `status` (first, then when the lifecycle changes), `progress` (only progress "
        "changed) and `done` (once, after a terminal `status`; the stream then ends); every "
        "server-sent event's `data` is the task view (`TaskView`). "
        "Ids name the state the client has; `Last-Event-ID` resumes without repeating or "
        "losing the current state. Keep-alive comments every 15 s. See docs/frontend.md.",
        (
            Reply(
                200,
                "The event stream: each event's `data` is the task view as JSON.",
                TaskView,
                content=Content.EVENT_STREAM,
                events=("status", "progress", "done"),
            ),
            Reply(
                204,
                "The client already has the `done` event of the task's current state: "
                "an EventSource stops reconnecting.",
                content=Content.EMPTY,
            ),
        ),
        errors=frozenset({404, 503}),
        headers=("Last-Event-ID",),
    )
)
async def task_events(request: web.Request) -> web.StreamResponse:
    """Stream the task's changes until it ends (see the module docstring). 404 for an unknown
    task and 204 after ``done``, both answered before any streaming."""
    task_id = task_id_of(request)
    # 404 unless the caller may see it (a task's project never changes: checking once is enough).
    await request.app[SERVICE_KEY].get(task_id, principal=principal_of(request))
    seen = StreamPosition.parse(request.headers.get("Last-Event-ID"))
    async with request.app[WATCHER_KEY].subscribe(task_id) as subscription:
        # Errors up to here (404, 503) are ordinary JSON answers: nothing is streamed yet.
        task = await subscription.next()
        if task is None:  # the application is shutting down
            raise web.HTTPServiceUnavailable()
        view = task_view(request, task)
        events, position = events_of(seen, view)
        if not events and position.done:  # the client already has ``done`` of this state
            return web.Response(status=204)
        stream = EventSourceResponse(
            ping_interval=request.app[KEEPALIVE_S_KEY],
            # The error middleware only stamps responses that are not yet sent.
            headers={REQUEST_ID_HEADER: request[REQUEST_ID_KEY]},
        )
        await stream.prepare(request)
        async with stream:
            try:
                await _stream(request, stream, subscription, seen, view)
            except (ConnectionResetError, TimeoutError):
                # The client went away or stopped reading: nobody is left to tell.
                logger.debug("event stream client gone", extra={"task_id": task_id})
            except Exception:
                # Headers are sent: no error answer is possible any more. End the stream; the
                # client's reconnect gets whatever error there is as a normal answer.
                logger.exception(
                    "event stream failed",
                    extra={"task_id": task_id, "request_id": request[REQUEST_ID_KEY]},
                )
    return stream


async def _stream(
    request: web.Request,
    stream: EventSourceResponse,
    subscription: TaskSubscription,
    seen: StreamPosition | None,
    view: dict[str, Any],
) -> None:
    retry: int | None = RECONNECT_MS
    while True:
        events, seen = events_of(seen, view)
        data = orjson.dumps(view).decode()
        for name, event_id in events:
            await stream.send(data, id=event_id, event=name, retry=retry)
            retry = None
        if seen.done:
            return
        task = await _next_state(subscription, stream, request.app[KEEPALIVE_S_KEY])
        if task is None:
            return
        view = task_view(request, task)


async def _next_state(
    subscription: TaskSubscription, stream: EventSourceResponse, keepalive_s: float
) -> Task | None:
    """The next state to look at, or None when the stream should end: the client is gone, the
    application is shutting down, the task was deleted or the store could not be read."""
    while True:
        try:
            task = await subscription.next(timeout_s=keepalive_s)
        except CamTasksError as exc:
            logger.warning("event stream ended: %s", type(exc).__name__)
            return None
        if task is not None:
            return task
        if subscription.closed or not stream.is_connected():
            return None
