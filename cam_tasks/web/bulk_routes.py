"""The bulk task routes: act on every task a filter matches, within the caller's projects.

- ``POST /tasks/retry``: re-run the failed/cancelled matches;
- ``POST /tasks/cancel``: cancel the pending/running matches (running ones within a heartbeat);
- ``DELETE /tasks``: delete the finished matches (at least one criterion).

Each takes the same JSON filter (:class:`BulkFilterRequest`; no body: the empty filter) and
answers ``data: {count}``.
Viewers get 403; a status the action cannot apply to, or an empty DELETE filter, 422. These
are plain routes, so aiohttp matches them before ``/tasks/{task_id}…`` of the same method.
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from cam_tasks.domain import QUEUE_NAME_PATTERN, InvalidParamsError, TaskFilter, TaskStatus
from cam_tasks.executor import validation_details
from cam_tasks.web.auth import principal_of
from cam_tasks.web.envelope import success_response
from cam_tasks.web.keys import SERVICE_KEY
from cam_tasks.web.operations import Operation, Reply, documented
from cam_tasks.web.requests import read_json_object
from cam_tasks.web.schemas import MAX_TYPE_LENGTH, UtcInstant

__all__ = [
    "BulkCountView",
    "BulkFilterRequest",
    "CancelFilterRequest",
    "PurgeFilterRequest",
    "RetryFilterRequest",
    "bulk_routes",
    "purge_routes",
]

#: ``POST /tasks/retry`` and ``POST /tasks/cancel``.
bulk_routes = web.RouteTableDef()
#: ``DELETE /tasks``, in a table of its own: aiohttp gives a route the previous route's resource
#: only when their paths are the same and it was the last one added, so ``create_api`` adds this
#: table between ``POST /tasks`` and ``GET /tasks``, keeping the three methods on one resource
#: (CORS answers preflights per resource: a second ``/tasks`` resource would go unanswered).
purge_routes = web.RouteTableDef()

_ERRORS = frozenset({403, 422, 503})


class BulkFilterRequest(BaseModel):
    """Which tasks a bulk action applies to: criteria combine (and); ``status`` is one status
    or a list of distinct ones, among those the action applies to; times are RFC 3339 with an
    offset (a window that ends before it starts matches nothing). Only the caller's projects
    are touched."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str | None = Field(default=None, min_length=1, max_length=MAX_TYPE_LENGTH)
    queue: str | None = Field(default=None, pattern=QUEUE_NAME_PATTERN)
    status: frozenset[TaskStatus] | None = Field(default=None, min_length=1)
    error_type: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_TYPE_LENGTH,
        description="The type of the task's last error (`timeout`, an exception class name…).",
    )
    finished_before: UtcInstant | None = Field(
        default=None, description="Finished strictly before this instant."
    )
    finished_after: UtcInstant | None = Field(
        default=None, description="Finished at or after this instant."
    )

    @field_validator("status", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and len(set(map(str, value))) != len(value):
            raise ValueError("statuses must be distinct")
        return value

    def to_filter(self) -> TaskFilter:
        return TaskFilter(
            types=None if self.type is None else frozenset({self.type}),
            queues=None if self.queue is None else frozenset({self.queue}),
            statuses=self.status,
            error_types=None if self.error_type is None else frozenset({self.error_type}),
            finished_before=self.finished_before,
            finished_after=self.finished_after,
        )


class RetryFilterRequest(BulkFilterRequest):
    """The filter of ``POST /tasks/retry``: failed or cancelled tasks."""

    status: frozenset[Literal[TaskStatus.FAILED, TaskStatus.CANCELLED]] | None = Field(
        default=None, min_length=1
    )


class CancelFilterRequest(BulkFilterRequest):
    """The filter of ``POST /tasks/cancel``: pending or running tasks."""

    status: frozenset[Literal[TaskStatus.PENDING, TaskStatus.RUNNING]] | None = Field(
        default=None, min_length=1
    )


def _values_only(schema: dict[str, Any]) -> None:
    """The document of a filter whose criteria are values, never null, at least one of them."""
    schema["minProperties"] = 1
    for prop in schema.get("properties", {}).values():
        options = prop.get("anyOf")
        if options is not None:
            kept = [option for option in options if option.get("type") != "null"]
            if len(kept) == 1:
                prop.pop("anyOf")
                prop.update(kept[0])
            else:
                prop["anyOf"] = kept
        if prop.get("default", 0) is None:
            del prop["default"]


class PurgeFilterRequest(BulkFilterRequest):
    """The filter of ``DELETE /tasks``: finished tasks, and at least one criterion (a clean-up
    of everything is never one request away); criteria are values, never null."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_values_only)

    status: (
        frozenset[Literal[TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED]] | None
    ) = Field(default=None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if isinstance(value, dict):
            nulls = sorted(name for name, item in value.items() if item is None)
            if nulls:
                raise ValueError(f"leave criteria out rather than send null: {', '.join(nulls)}")
        return value


class BulkCountView(BaseModel):
    count: int = Field(ge=0, description="How many tasks the action changed.")


async def _filter(
    request: web.Request, model: type[BulkFilterRequest] = BulkFilterRequest
) -> TaskFilter:
    # No body at all is the empty filter (many clients send none with DELETE); a body must be
    # a JSON object.
    body = await read_json_object(request) if request.body_exists else {}
    try:
        return model.model_validate(body).to_filter()
    except ValidationError as exc:
        raise InvalidParamsError("invalid filter", validation_details(exc)) from None


def _answer(count: int) -> web.Response:
    return success_response(BulkCountView(count=count).model_dump(mode="json"))


@bulk_routes.post("/tasks/retry")
@documented(
    Operation(
        "retry_tasks",
        "tasks",
        "Re-run every failed or cancelled task a filter matches",
        "Each match runs again from a fresh start, as `POST /tasks/{id}/retry` would. `status` "
        "may name only `failed` / `cancelled` (both when absent). Needs operate (403 for a "
        "viewer); only the caller's projects are touched.",
        (Reply(200, "How many tasks were re-queued.", BulkCountView),),
        errors=_ERRORS,
        body=RetryFilterRequest,
        body_required=False,
    )
)
async def retry_tasks(request: web.Request) -> web.Response:
    """Retry the failed/cancelled matches: ``data: {count}``."""
    query = await _filter(request, RetryFilterRequest)
    service = request.app[SERVICE_KEY]
    return _answer(await service.retry_many(query, principal=principal_of(request)))


@bulk_routes.post("/tasks/cancel")
@documented(
    Operation(
        "cancel_tasks",
        "tasks",
        "Cancel every pending or running task a filter matches",
        "Pending matches are cancelled at once, running ones asked to stop (they end "
        "`cancelled` within one heartbeat). `status` may name only `pending` / `running`. "
        "Needs operate (403 for a viewer); only the caller's projects are touched.",
        (Reply(200, "How many tasks were cancelled or asked to stop.", BulkCountView),),
        errors=_ERRORS,
        body=CancelFilterRequest,
        body_required=False,
    )
)
async def cancel_tasks(request: web.Request) -> web.Response:
    """Cancel the pending/running matches: ``data: {count}``."""
    query = await _filter(request, CancelFilterRequest)
    service = request.app[SERVICE_KEY]
    return _answer(await service.cancel_many(query, principal=principal_of(request)))


@purge_routes.delete("/tasks")
@documented(
    Operation(
        "delete_tasks",
        "tasks",
        "Delete every finished task a filter matches",
        "On-demand clean-up: at least one criterion is required (422 for `{}`); active tasks "
        "are never deleted; `status` may name only `completed` / `failed` / `cancelled`. "
        "Needs operate (403 for a viewer); only the caller's projects are touched.",
        (Reply(200, "How many tasks were deleted.", BulkCountView),),
        errors=_ERRORS,
        body=PurgeFilterRequest,
    )
)
async def delete_tasks(request: web.Request) -> web.Response:
    """Delete the finished matches: ``data: {count}``."""
    query = await _filter(request, PurgeFilterRequest)
    service = request.app[SERVICE_KEY]
    return _answer(await service.delete_many(query, principal=principal_of(request)))
