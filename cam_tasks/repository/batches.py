"""What both task stores share to serve a batch: how much room each concurrency key has left
while a claim takes several tasks (:class:`KeyRoom`), and completions written one by one
(:func:`complete_each`) where a store has no cheaper way, or as its fallback."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from cam_tasks.domain import Task, TaskLostError
from cam_tasks.repository.protocol import Completion, TaskRepository

__all__ = ["KeyRoom", "complete_each"]

T = TypeVar("T")


class KeyRoom:
    """How many more tasks of each concurrency key a claim may take (``room(key)``, read once
    per key; None: no limit), counted down as a batch takes them."""

    def __init__(self, room: Callable[[str], int | None] | None) -> None:
        self._room = room
        self._left: dict[str, int | None] = {}

    @property
    def unlimited(self) -> bool:
        return self._room is None

    def has_room(self, key: str) -> bool:
        """Whether one more task of ``key`` may be taken."""
        left = self._left_of(key)
        return left is None or left > 0

    def take(self, key: str) -> None:
        """Count one task of ``key`` taken."""
        left = self._left_of(key)
        if left is not None:
            self._left[key] = left - 1

    def choose(self, items: Sequence[T], limit: int, *, key_of: Callable[[T], Any]) -> list[T]:
        """Up to ``limit`` of ``items``, in order, none of a key beyond its room."""
        chosen: list[T] = []
        for item in items:
            if len(chosen) >= limit:
                break
            key = key_of(item)
            if key is not None and self._room is not None:
                left = self._left_of(key)
                if left is not None:
                    if left <= 0:
                        continue
                    self._left[key] = left - 1
            chosen.append(item)
        return chosen

    def _left_of(self, key: str) -> int | None:
        if self._room is None:
            return None
        if key not in self._left:
            self._left[key] = self._room(key)
        return self._left[key]


async def complete_each(
    repository: TaskRepository, completions: Sequence[Completion]
) -> builtins.list[Task | TaskLostError]:
    """:meth:`TaskRepository.complete_many` as one ``complete`` per completion, in order."""
    answers: builtins.list[Task | TaskLostError] = []
    for c in completions:
        try:
            answers.append(
                await repository.complete(c.lease, now=c.now, result=c.result, progress=c.progress)
            )
        except TaskLostError as lost:
            answers.append(lost)
    return answers
