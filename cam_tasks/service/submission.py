"""TaskSubmission: one task to submit, as :meth:`TaskService.submit_many` takes a batch of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from cam_tasks.domain import SUBMIT_OPTIONS, Task

__all__ = ["SUBMISSION_OPTIONS", "Submitted", "TaskSubmission"]

#: Every keyword a submission takes beside ``task_type`` and ``params``: the task's own submit
#: options (:data:`~cam_tasks.domain.SUBMIT_OPTIONS`, declared with the task's fields), then
#: ``delay_s`` (an alternative to ``run_at``) and who submits it (``created_by``,
#: ``project_id``: only for trusted in-process callers; a principal supplies them otherwise).
SUBMISSION_OPTIONS: Final = frozenset({*SUBMIT_OPTIONS, "delay_s", "created_by", "project_id"})


class TaskSubmission:
    """The arguments of one :meth:`TaskService.submit`, as a value: ``task_type`` and
    ``params``, then the same options with the same defaults and the same checks (made when
    it is submitted). TypeError for a keyword that is no option."""

    __slots__ = ("options", "params", "task_type")

    def __init__(
        self, task_type: str, params: Mapping[str, Any] | None = None, **options: Any
    ) -> None:
        unknown = options.keys() - SUBMISSION_OPTIONS
        if unknown:
            raise TypeError(f"unknown submit option(s): {', '.join(sorted(unknown))}")
        self.task_type = task_type
        self.params: Mapping[str, Any] = {} if params is None else params
        #: The options given (absent ones take their defaults at submit).
        self.options: Mapping[str, Any] = options

    def option(self, name: str, default: Any = None) -> Any:
        """The option ``name`` as given, else ``default`` (None counts as not given)."""
        value = self.options.get(name)
        return default if value is None else value

    def __repr__(self) -> str:
        options = dict(self.options)
        return f"TaskSubmission({self.task_type!r}, {dict(self.params)!r}, **{options!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TaskSubmission):
            return NotImplemented
        return (self.task_type, dict(self.params), dict(self.options)) == (
            other.task_type,
            dict(other.params),
            dict(other.options),
        )

    __hash__ = None  # type: ignore[assignment]  # mutable mappings inside: not hashable


@dataclass(frozen=True, slots=True)
class Submitted:
    """What a submit stored or joined: the ``task``, and whether it was ``deduplicated`` (an
    active task already held the submit's ``unique_key``: that task is the answer)."""

    task: Task
    deduplicated: bool = False
