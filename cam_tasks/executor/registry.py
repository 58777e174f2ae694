"""The executor registry: which task types this process can validate and run."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from cam_tasks.domain import (
    DEFAULT_MAX_RETRIES,
    ConfigurationError,
    InvalidParamsError,
    UnknownTaskTypeError,
)
from cam_tasks.executor.protocol import TaskExecutor

__all__ = ["ExecutorRegistry", "ExecutorSpec", "validation_details"]


@dataclass(frozen=True, slots=True)
class ExecutorSpec:
    """A registered executor and the defaults its tasks get."""

    executor: TaskExecutor
    max_retries: int
    timeout_s: float | None

    @property
    def type(self) -> str:
        return self.executor.type

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
        over the executor's class attributes. ConfigurationError on a duplicate or malformed
        executor."""
        task_type = getattr(executor, "type", None)
        params_model = getattr(executor, "params_model", None)
        if not isinstance(task_type, str) or not task_type:
            raise ConfigurationError(f"{executor!r} has no task type name")
        if not (isinstance(params_model, type) and issubclass(params_model, BaseModel)):
            raise ConfigurationError(
                f"executor {task_type!r}: params_model must be a pydantic model"
            )
        if not callable(getattr(executor, "execute", None)):
            raise ConfigurationError(f"executor {task_type!r} has no execute()")
        if task_type in self._specs:
            raise ConfigurationError(f"executor for {task_type!r} registered twice")
        retries = max_retries if max_retries is not None else getattr(executor, "max_retries", None)
        timeout = timeout_s if timeout_s is not None else getattr(executor, "timeout_s", None)
        spec = ExecutorSpec(
            executor=executor,
            max_retries=DEFAULT_MAX_RETRIES if retries is None else int(retries),
            timeout_s=None if timeout is None else float(timeout),
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
