"""An executor that cannot run is refused when it is registered, with a message naming it and
what is wrong, rather than accepted and failing every task later."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from cam_tasks import CamTasks, ConfigurationError, Settings, TaskContext
from cam_tasks.executor import ExecutorRegistry, check_executor


class Params(BaseModel):
    n: int = 0


class Good:
    type = "good"
    params_model = Params

    async def execute(self, params: Params, ctx: TaskContext) -> dict[str, int]:
        return {"n": params.n}


class PlainDef:
    type = "plain_def"
    params_model = Params

    def execute(self, params: Params, ctx: TaskContext) -> int:
        return 1


class NoType:
    params_model = Params

    async def execute(self, params: Params, ctx: TaskContext) -> None:
        return None


class DictParams:
    type = "dict_params"
    params_model = dict

    async def execute(self, params: Any, ctx: TaskContext) -> None:
        return None


class NoExecute:
    type = "no_execute"
    params_model = Params


class ExecuteWithoutContext:
    type = "no_ctx"
    params_model = Params

    async def execute(self, params: Params) -> None:
        return None


class BadDefaults:
    type = "bad_defaults"
    params_model = Params
    max_retries = -1
    timeout_s = "10"

    async def execute(self, params: Params, ctx: TaskContext) -> None:
        return None


def refusal(executor: object) -> str:
    with pytest.raises(ConfigurationError) as caught:
        ExecutorRegistry().register(executor)  # type: ignore[arg-type]
    return str(caught.value)


def test_a_well_formed_executor_is_registered_with_its_defaults() -> None:
    registry = ExecutorRegistry()
    spec = registry.register(Good())
    assert "good" in registry
    assert (spec.max_retries, spec.timeout_s) == (3, None)


def test_a_plain_def_execute_is_refused_naming_the_executor_and_async_def() -> None:
    message = refusal(PlainDef())
    assert "'plain_def'" in message
    assert f"{__name__}.PlainDef" in message
    assert "async def" in message


def test_the_class_instead_of_an_instance_is_refused_saying_so() -> None:
    message = refusal(Good)
    assert "the class Good was given where an instance is expected" in message
    assert "Good()" in message


@pytest.mark.parametrize(
    ("executor", "problem"),
    [
        (NoType(), "`type` must be a non-empty string"),
        (DictParams(), "`params_model` must be a pydantic model class"),
        (NoExecute(), "no `execute(params, ctx)` method"),
        (ExecuteWithoutContext(), "`execute` must accept (params, ctx)"),
    ],
    ids=["no type", "params_model not pydantic", "no execute", "execute without ctx"],
)
def test_each_missing_part_is_named(executor: object, problem: str) -> None:
    assert problem in refusal(executor)


def test_every_problem_of_an_executor_is_reported_at_once() -> None:
    message = refusal(BadDefaults())
    assert "`max_retries` must be an int >= 0, got -1" in message
    assert "`timeout_s` must be a number > 0, got '10'" in message


def test_a_duplicate_type_is_refused() -> None:
    registry = ExecutorRegistry([Good()])
    with pytest.raises(ConfigurationError, match="registered twice"):
        registry.register(Good())


def test_check_executor_names_where_the_executor_came_from() -> None:
    with pytest.raises(ConfigurationError, match="from plug-in 'x'"):
        check_executor(PlainDef(), origin="plug-in 'x'")
    good = Good()
    assert check_executor(good) is good


def test_the_runtime_refuses_a_mistaken_executor_before_anything_runs() -> None:
    with pytest.raises(ConfigurationError, match=r"'plain_def'.*async def"):
        CamTasks(Settings(), executors=[PlainDef()], load_plugins=False)
