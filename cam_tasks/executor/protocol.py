"""What an executor is: a type name, a pydantic params model and an async ``execute``."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel

if TYPE_CHECKING:
    from cam_tasks.executor.context import TaskContext

__all__ = ["TaskExecutor"]


@runtime_checkable
class TaskExecutor(Protocol):
    """A plug-in that runs one type of task.

    - ``type``: the task type it handles (``"sync_assets"``), unique in a registry.
    - ``params_model``: the pydantic model parameters are validated against at submit time and
      parsed into before ``execute``; use ``extra="forbid"`` to reject unknown fields.
    - ``execute(params, ctx)``: do the work, report progress through ``ctx``, return a JSON-able
      result. Raise :class:`RetryableError` for transient failures, :class:`PermanentError` for
      ones retrying cannot fix; any other exception counts as retryable until attempts run out.
      It may be cancelled at any ``await`` (timeout, cancel request, shutdown): let
      ``CancelledError`` propagate, and put partial results in ``ctx.partial_result`` first if
      they are worth keeping.

    Optional class attributes read by the registry: ``max_retries: int`` and
    ``timeout_s: float`` (defaults for tasks of this type that do not set their own).

    Executors never touch MongoDB, statuses or retries: the dispatcher owns those.
    """

    # Read-only properties, so a class attribute ``params_model = MyParams`` (a subclass)
    # satisfies the protocol.
    @property
    def type(self) -> str: ...

    @property
    def params_model(self) -> builtins.type[BaseModel]: ...

    async def execute(self, params: Any, ctx: TaskContext) -> Any: ...
