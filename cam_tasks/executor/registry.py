"""The executor registry: which task types this process can validate and run."""

from __future__ import annotations

import builtins
import inspect
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from pydantic import BaseModel, ValidationError

from cam_tasks.domain import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_QUEUE,
    QUEUE_NAME_PATTERN,
    ConfigurationError,
    InvalidParamsError,
    UnknownTaskTypeError,
)
from cam_tasks.executor.protocol import TaskExecutor

__all__ = ["ExecutorRegistry", "ExecutorSpec", "check_executor", "validation_details"]


@dataclass(frozen=True, slots=True)
class ExecutorSpec:
    """A registered executor and the defaults its tasks get."""

    executor: TaskExecutor
    max_retries: int
    timeout_s: float | None
    #: The queue its tasks go to unless a submit names one (the executor's ``queue``).
    queue: str = DEFAULT_QUEUE
    #: Limits of the concurrency keys it derives, by key pattern (its ``concurrency_limits``);
    #: the configuration's ``[concurrency_limits]`` wins for a pattern it names too.
    concurrency_limits: Mapping[str, int] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return self.executor.type

    def unique_key(self, params: BaseModel) -> str | None:
        """The executor's default ``unique_key`` for a task with ``params`` (its optional
        ``unique_key(params)``), or None."""
        derive = getattr(self.executor, "unique_key", None)
        return None if derive is None else derive(params)

    def concurrency_key(self, params: BaseModel) -> str | None:
        """The executor's default ``concurrency_key`` for ``params`` (its optional
        ``concurrency_key(params)``), or None."""
        derive = getattr(self.executor, "concurrency_key", None)
        return None if derive is None else derive(params)

    @property
    def params_model(self) -> builtins.type[BaseModel]:
        return self.executor.params_model


def validation_details(
    exc: ValidationError, prefix: tuple[str | int, ...] = ()
) -> list[dict[str, Any]]:
    """pydantic errors as JSON-able field details, without echoing the rejected input back
    (it may be large or hold secrets)."""
    return [
        {"loc": [*prefix, *err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def _name_of(executor: object) -> str:
    """How messages name ``executor``: its task type when it has one, and where it comes from."""
    kind = executor if inspect.isclass(executor) else type(executor)
    where = f"{kind.__module__}.{kind.__qualname__}"
    task_type = getattr(executor, "type", None)
    if isinstance(task_type, str) and task_type:
        return f"executor {task_type!r} ({where})"
    return f"executor {where}"


def _problems(executor: object) -> list[str]:
    """What keeps ``executor`` from being run, in words a developer can act on."""
    if inspect.isclass(executor):
        return [
            f"the class {executor.__qualname__} was given where an instance is expected: "
            f"register {executor.__qualname__}() (setup() and CamTasks also take a factory)"
        ]
    problems = []
    task_type = getattr(executor, "type", None)
    if not isinstance(task_type, str) or not task_type:
        problems.append(f"`type` must be a non-empty string (the task type), got {task_type!r}")
    params_model = getattr(executor, "params_model", None)
    if not (isinstance(params_model, type) and issubclass(params_model, BaseModel)):
        problems.append(
            f"`params_model` must be a pydantic model class (a BaseModel subclass), "
            f"got {params_model!r}"
        )
    execute = getattr(executor, "execute", None)
    if not callable(execute):
        problems.append("it has no `execute(params, ctx)` method")
    elif not inspect.iscoroutinefunction(execute):
        problems.append(
            "`execute` must be a coroutine function (`async def execute(self, params, ctx)`); "
            "a plain `def` is never awaited"
        )
    else:
        try:
            inspect.signature(execute).bind(None, None)
        except TypeError:
            problems.append(
                f"`execute` must accept (params, ctx), its signature is "
                f"{inspect.signature(execute)}"
            )
        except ValueError:  # no signature to inspect (a builtin): trust it
            pass
    max_retries = getattr(executor, "max_retries", None)
    if max_retries is not None and (
        isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0
    ):
        problems.append(f"`max_retries` must be an int >= 0, got {max_retries!r}")
    timeout_s = getattr(executor, "timeout_s", None)
    if timeout_s is not None and (
        isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or timeout_s <= 0
    ):
        problems.append(f"`timeout_s` must be a number > 0, got {timeout_s!r}")
    return problems


def check_executor(executor: object, *, origin: str | None = None) -> TaskExecutor:
    """``executor`` itself when it can run tasks: an instance with a non-empty string ``type``,
    a pydantic ``params_model`` class, an ``async def execute(params, ctx)``, and valid optional
    ``max_retries`` (int >= 0) and ``timeout_s`` (> 0). Otherwise ConfigurationError naming the
    executor (and ``origin``, where it came from, when given) and every problem found."""
    problems = _problems(executor)
    if problems:
        where = f" from {origin}" if origin else ""
        raise ConfigurationError(
            f"{_name_of(executor)}{where} cannot be registered: {'; '.join(problems)}"
        )
    return cast(TaskExecutor, executor)  # checked just above


class ExecutorRegistry:
    """Maps task types to executors. Registration happens at start-up; lookups are lock-free."""

    def __init__(self, executors: Iterable[TaskExecutor] = ()) -> None:
        self._specs: dict[str, ExecutorSpec] = {}
        for executor in executors:
            self.register(executor)

    def register(
        self,
        executor: TaskExecutor,
        *,
        max_retries: int | None = None,
        timeout_s: float | None = None,
    ) -> ExecutorSpec:
        """Register ``executor`` for its ``type``. Explicit ``max_retries``/``timeout_s`` win
        over the executor's class attributes. ConfigurationError on a duplicate type or an
        executor :func:`check_executor` refuses, so a mistake stops start-up rather than
        surfacing when a task runs."""
        task_type = check_executor(executor).type
        if task_type in self._specs:
            raise ConfigurationError(f"executor for {task_type!r} registered twice")
        retries = max_retries if max_retries is not None else getattr(executor, "max_retries", None)
        timeout = timeout_s if timeout_s is not None else getattr(executor, "timeout_s", None)
        queue = getattr(executor, "queue", None) or DEFAULT_QUEUE
        if not isinstance(queue, str) or not re.fullmatch(QUEUE_NAME_PATTERN, queue):
            raise ConfigurationError(
                f"executor {task_type!r}: queue {queue!r} must match {QUEUE_NAME_PATTERN}"
            )
        limits = dict(getattr(executor, "concurrency_limits", None) or {})
        if not all(
            isinstance(pattern, str) and pattern and isinstance(limit, int) and limit >= 1
            for pattern, limit in limits.items()
        ):
            raise ConfigurationError(
                f"executor {task_type!r}: concurrency_limits must map key patterns to ints >= 1, "
                f"got {limits!r}"
            )
        spec = ExecutorSpec(
            executor=executor,
            max_retries=DEFAULT_MAX_RETRIES if retries is None else int(retries),
            timeout_s=None if timeout is None else float(timeout),
            queue=queue,
            concurrency_limits=limits,
        )
        self._specs[task_type] = spec
        return spec

    def get(self, task_type: str) -> ExecutorSpec:
        try:
            return self._specs[task_type]
        except KeyError:
            raise UnknownTaskTypeError(task_type, sorted(self._specs)) from None

    def __contains__(self, task_type: object) -> bool:
        return task_type in self._specs

    def __iter__(self) -> Iterator[ExecutorSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    @property
    def types(self) -> frozenset[str]:
        return frozenset(self._specs)

    def validate(self, task_type: str, params: Any) -> BaseModel:
        """Parse ``params`` with the type's model: UnknownTaskTypeError or InvalidParamsError
        (with field details under ``params``)."""
        spec = self.get(task_type)
        try:
            return spec.params_model.model_validate(params)
        except ValidationError as exc:
            raise InvalidParamsError(
                f"invalid params for {task_type!r}", validation_details(exc, ("params",))
            ) from None
