"""Group commit of completions: the attempts that finish while one write is under way are
written together by the next (one bulk write on MongoDB, :meth:`TaskRepository.complete_many`).

No window is waited for: the first completion after an idle spell is written at once (on the
loop's next turn, with whatever finished in the same turn); those that finish while it is on the
wire go out together as soon as it returns. Each caller is answered only when its own write is
acknowledged (its task as written, or its TaskLostError), so an outcome is never reported before
it is durable. The writes run in a task of their own: a caller that is cancelled while waiting
does not cancel the write it is part of.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from cam_tasks.domain import Progress, Task, TaskLostError
from cam_tasks.repository import Completion, TaskRepository

__all__ = ["CompletionWriter"]


class CompletionWriter:
    """Writes completions for many workers, a batch per round trip."""

    def __init__(self, repository: TaskRepository) -> None:
        self._repository = repository
        self._waiting: list[tuple[Completion, asyncio.Future[Task]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def complete(
        self, task: Task, *, now: datetime, result: Any, progress: Progress | None
    ) -> Task:
        """Mark ``task`` (as claimed) completed, as :meth:`TaskRepository.complete` does, in
        the next batch. TaskLostError when its lease is lost; the store's error when the batch
        could not be written."""
        future: asyncio.Future[Task] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieved)  # a caller cancelled meanwhile never reads it
        self._waiting.append((Completion(task, now, result, progress), future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="cam_tasks:completions")
        return await asyncio.shield(future)

    async def close(self) -> None:
        """Stop writing, once every caller has its answer or gave up waiting (a worker gives
        up when its lease runs out, and leaves the task to the rescuer): a write that still
        hangs then serves nobody."""
        writer = self._writer
        if writer is not None and not writer.done():
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                written = await self._repository.complete_many([c for c, _ in batch])
            except BaseException as exc:  # the whole batch failed: each caller learns why
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for (_, future), answer in zip(batch, written, strict=True):
                if future.done():
                    continue
                if isinstance(answer, TaskLostError):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)


def _retrieved(future: asyncio.Future[Task]) -> None:
    if not future.cancelled():
        future.exception()
