"""The task routes: list, get (with long poll), cancel, retry and delete, each handler with its
OpenAPI description. The submit routes are :mod:`cam_tasks.web.submit_routes`.

Handlers turn HTTP into service calls and service results into envelopes. Every refusal is an
exception (:class:`ApiError` for malformed HTTP, the service's own errors otherwise) answered by
the error middleware, so no handler builds an error response itself. Requests are decoded by
:mod:`cam_tasks.web.requests`; tasks are rendered by :func:`cam_tasks.web.views.task_view`.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from cam_tasks.domain import Task
from cam_tasks.service import TaskService
from cam_tasks.web.auth import principal_of
from cam_tasks.web.conditional import CACHE_CONTROL, if_none_match, matches, opaque_tag
from cam_tasks.web.envelope import json_response, success_response
from cam_tasks.web.errors import ApiError
from cam_tasks.web.keys import SERVICE_KEY, WATCHER_KEY
from cam_tasks.web.limits import LIMITER_KEY
from cam_tasks.web.operations import Content, Operation, Reply, documented
from cam_tasks.web.requests import parse_query, task_id_of
from cam_tasks.web.schemas import (
    LIST_QUERY_KEYS,
    TASK_QUERY_KEYS,
    ListTasksQuery,
    TaskListView,
    TaskProgressView,
    TaskQuery,
    TaskResultView,
    TaskView,
)
from cam_tasks.web.tagged_views import TAGGED_VIEWS_KEY, Rendering
from cam_tasks.web.views import TASK_ROUTE, task_location, task_view, task_views

__all__ = ["routes"]

routes = web.RouteTableDef()

_TASK_ERRORS = frozenset({404, 409, 503})


def _service(request: web.Request) -> TaskService:
    return request.app[SERVICE_KEY]


@routes.get("/tasks")
@documented(
    Operation(
        "list_tasks",
        "tasks",
        "List tasks, newest first",
        "Filters combine; `status` takes one status or a comma-separated list; `created_by` "
        "one principal's name (`schedule:<name>` for a schedule's tasks); `updated_since` "
        "returns only the tasks written at or after that instant (RFC 3339 with an offset; "
        "write `+` as `%2B`). Unknown, repeated or bracketed keys are a 400.",
        (Reply(200, "One page of tasks and how many matched.", TaskListView),),
        errors=frozenset({503}),
        query=ListTasksQuery,
        task_type_query=frozenset({"type"}),
    )
)
async def list_tasks(request: web.Request) -> web.Response:
    """Filter and page tasks, newest first: ``data: {tasks, total}``."""
    query = parse_query(request, ListTasksQuery, LIST_QUERY_KEYS)
    service = _service(request)
    if query.type is not None and query.type not in service.registry:
        raise ApiError(
            400,
            "bad_request",
            "malformed query",
            [
                {
                    "loc": ["query", "type"],
                    "msg": "no executor is registered for this task type",
                    "type": "unknown_task_type",
                    "known": sorted(service.registry.types),
                }
            ],
        )
    page = await service.list(
        query.to_filter(), offset=query.offset, limit=query.limit, principal=principal_of(request)
    )
    # TaskListView's JSON, built directly (see TaskView.dump).
    return success_response({"tasks": task_views(request, page.tasks), "total": page.total})


@routes.get("/tasks/{task_id}", name=TASK_ROUTE)
@documented(
    Operation(
        "get_task",
        "tasks",
        "Get one task",
        "With a weak `ETag`; `If-None-Match` answers 304 while it still matches. `wait_s` makes "
        "it a long poll: the answer comes as soon as the task differs from the client's "
        "`If-None-Match` (without one: from the task as it was when the request arrived), or "
        "after `wait_s` (304 if the client's tag still matches).",
        (
            Reply(
                200,
                "The task.",
                TaskView,
                headers={"ETag": True, "Cache-Control": True},
            ),
            Reply(
                304,
                "Not modified: the client's ETag still matches.",
                content=Content.EMPTY,
                headers={"ETag": True, "Cache-Control": True},
            ),
        ),
        errors=frozenset({404, 503}),
        query=TaskQuery,
        headers=("If-None-Match",),
    )
)
async def get_task(request: web.Request) -> web.Response:
    """One task, with a weak ``ETag``; ``If-None-Match`` answers 304 while it still matches.

    ``wait_s`` (0 < N <= 60) makes it a long poll: the answer comes as soon as the task differs
    from the client's ``If-None-Match`` (without one: from the task as it was when the request
    arrived), or after ``wait_s`` with the task as it is then (304 if the client's tag still
    matches).
    """
    return await _conditional_read(request, None)


#: What the polling reads render: the task view cut to the polling model's fields.
_PROGRESS_FIELDS = tuple(TaskProgressView.model_fields)
_RESULT_FIELDS = tuple(TaskResultView.model_fields)
#: The query of a read without one (frozen: shared by every such read).
_NO_QUERY: Final = TaskQuery()


async def _conditional_read(request: web.Request, rendering: Rendering) -> web.Response:
    """Answer the task of the request's path rendered as ``rendering``, with the weak ``ETag``
    of that rendering, ``If-None-Match`` (304) and the ``wait_s`` long poll: the rules of
    ``GET /tasks/{id}``, applied to what ``rendering`` shows, so a poll of a part of a task
    wakes only when that part changes.

    The tag is compared before anything is rendered: :class:`TaggedViews` keeps it per visible
    state of the task, so a 304 costs the read of the task and no view."""
    task_id = task_id_of(request)
    # Most reads have no query: skip validating an empty one.
    query = parse_query(request, TaskQuery, TASK_QUERY_KEYS) if request.query_string else _NO_QUERY
    client_tags = if_none_match(request.headers.get("If-None-Match"))
    views = request.app[TAGGED_VIEWS_KEY]
    task = await _service(request).get(task_id, principal=principal_of(request))
    etag = views.etag(task, rendering)
    if query.wait_s is not None and (client_tags is None or matches(etag, client_tags)):
        known = client_tags if client_tags is not None else frozenset({opaque_tag(etag)})

        def changed(candidate: Task) -> bool:
            return not matches(views.etag(candidate, rendering), known)

        task = await request.app[WATCHER_KEY].wait(task_id, until=changed, timeout_s=query.wait_s)
        etag = views.etag(task, rendering)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if matches(etag, client_tags):
        return web.Response(status=304, headers=headers)
    return json_response(views.body(task, rendering), headers=headers)


def _polled(
    operation_id: str, summary: str, description: str, view: type[Any], what: str
) -> Operation:
    """The description of a small polling read, which answers like ``GET /tasks/{id}``."""
    return Operation(
        operation_id,
        "tasks",
        summary,
        description + " Same `ETag`, `If-None-Match` and `wait_s` long poll as "
        "`GET /tasks/{task_id}`, over these fields only: a long poll answers when one of them "
        "changes.",
        (
            Reply(200, what, view, headers={"ETag": True, "Cache-Control": True}),
            Reply(
                304,
                "Not modified: the client's ETag still matches.",
                content=Content.EMPTY,
                headers={"ETag": True, "Cache-Control": True},
            ),
        ),
        errors=frozenset({404, 503}),
        query=TaskQuery,
        headers=("If-None-Match",),
    )


@routes.get("/tasks/{task_id}/progress")
@documented(
    _polled(
        "get_task_progress",
        "Get a task's progress",
        "A small payload for progress bars: status, `progress` (percent), `message`, `step`, "
        "`total_steps`, `step_name` and `eta_s`.",
        TaskProgressView,
        "The task's progress.",
    )
)
async def get_task_progress(request: web.Request) -> web.Response:
    """A task's progress fields (``TaskProgressView``), conditional and long-pollable like
    ``GET /tasks/{id}``."""
    return await _conditional_read(request, _PROGRESS_FIELDS)


@routes.get("/tasks/{task_id}/result")
@documented(
    _polled(
        "get_task_result",
        "Get a task's result",
        "How the task ended: status, `result`, `error` and `completed_at` (`result` and "
        "`error` are null until then). With `wait_s`, wait for the end without the progress "
        "updates in between.",
        TaskResultView,
        "The task's outcome so far.",
    )
)
async def get_task_result(request: web.Request) -> web.Response:
    """A task's outcome fields (``TaskResultView``), conditional and long-pollable like
    ``GET /tasks/{id}``."""
    return await _conditional_read(request, _RESULT_FIELDS)


@routes.post("/tasks/{task_id}/cancel")
@documented(
    Operation(
        "cancel_task",
        "tasks",
        "Cancel a task",
        "A pending task is cancelled at once; a running one is asked to stop "
        "(`cancel_requested`) and ends `cancelled` within one heartbeat. 409 once it ended.",
        (Reply(200, "The task after the request.", TaskView),),
        errors=_TASK_ERRORS,
    )
)
async def cancel_task(request: web.Request) -> web.Response:
    """Cancel a pending task, or ask a running one to stop: 200 with the task."""
    task = await _service(request).cancel(task_id_of(request), principal=principal_of(request))
    return success_response(task_view(request, task))


@routes.post("/tasks/{task_id}/retry")
@documented(
    Operation(
        "retry_task",
        "tasks",
        "Re-run a failed or cancelled task",
        "The task runs again from a fresh start; its history is kept. 409 unless it failed or "
        "was cancelled.",
        (Reply(202, "The task, pending again.", TaskView, headers={"Location": True}),),
        errors=_TASK_ERRORS | {429},
    )
)
async def retry_task(request: web.Request) -> web.Response:
    """Re-run a failed or cancelled task: 202 with the task (pending again) + Location."""
    principal = principal_of(request)
    request.app[LIMITER_KEY].submitted(principal.name)
    task = await _service(request).retry(task_id_of(request), principal=principal)
    return success_response(
        task_view(request, task), status=202, headers={"Location": task_location(request, task.id)}
    )


@routes.delete("/tasks/{task_id}")
@documented(
    Operation(
        "delete_task",
        "tasks",
        "Delete a finished task",
        "409 while it is pending or running.",
        (Reply(200, "Deleted: `data` is null."),),
        errors=_TASK_ERRORS,
    )
)
async def delete_task(request: web.Request) -> web.Response:
    """Delete a finished task: 200 with ``data: null`` (409 while pending or running)."""
    await _service(request).delete(task_id_of(request), principal=principal_of(request))
    return success_response(None)
