"""Running one claimed attempt and writing its outcome: the worker's inner loop body."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from cam_tasks.domain import (
    Clock,
    DatabaseUnavailableError,
    PermanentError,
    RetryableError,
    RetryPolicy,
    Task,
    TaskError,
    TaskLostError,
)
from cam_tasks.executor import ExecutorRegistry
from cam_tasks.executor.logcontext import task_log_context
from cam_tasks.queue.held import HeldTask, StopReason
from cam_tasks.repository.protocol import TaskRepository

__all__ = ["TaskRunner"]

logger = logging.getLogger(__name__)

#: How long to wait between attempts of a final write while the database is unreachable.
_WRITE_RETRY_S = 0.5


class _InvalidResult(PermanentError):
    """The executor returned something that is not JSON-able."""


class TaskRunner:
    """Runs the executor of a :class:`HeldTask` and records how the attempt ended.

    Exactly one outcome write follows each attempt, fenced on the task's lease; a lost lease
    means no write at all. Outcome writes are shielded from cancellation of the calling worker,
    so a stopping process never leaves an attempt half-recorded.
    """

    def __init__(
        self,
        repository: TaskRepository,
        registry: ExecutorRegistry,
        *,
        clock: Clock,
        retry_policy: RetryPolicy,
        rng: random.Random | None = None,
    ) -> None:
        self._repository = repository
        self._registry = registry
        self._clock = clock
        self._retry_policy = retry_policy
        self._rng = rng or random.Random()

    async def run(self, held: HeldTask) -> Task | None:
        """Run ``held`` to its outcome and return the task as written (None when lost). Every
        record logged meanwhile, here or by the executor, carries the task (``TaskLogFilter``)."""
        with task_log_context(held.task):
            return await self._run(held)

    async def _run(self, held: HeldTask) -> Task | None:
        task = held.task
        if held.stop_reason is not None:  # stopped while still buffered: never started
            return await self._record(held, None, asyncio.CancelledError())
        spec = self._registry.get(task.type)
        try:
            params = spec.params_model.model_validate(task.params)
        except ValidationError as exc:
            # The executor's model changed since the task was stored: retrying cannot help.
            invalid = PermanentError(f"stored params no longer valid: {exc.error_count()} error(s)")
            return await self._record(held, None, invalid)
        execution = asyncio.create_task(
            spec.executor.execute(params, held.context), name=f"cam_tasks:{task.type}:{task.id}"
        )
        held.execution = execution
        timeout_s = task.timeout_s
        done, _ = await asyncio.wait({execution}, timeout=timeout_s)
        if not done:
            held.stop(StopReason.TIMEOUT)
        # Wait for the executor to wind down however it was stopped; its exception (if any) is
        # the attempt's outcome, not ours, so it must not propagate out of the worker.
        result: Any = None
        error: BaseException | None = None
        try:
            result = await execution
        except asyncio.CancelledError as exc:
            if held.stop_reason is None and not _current_task_cancelling():
                held.stop_reason = StopReason.CANCEL  # the executor cancelled itself
            error = exc
            if _current_task_cancelling():
                await asyncio.shield(self._record(held, None, exc))
                raise
        except Exception as exc:
            error = exc
        if error is None:
            try:
                orjson.dumps(result)
            except TypeError as exc:
                error = _InvalidResult(f"result is not JSON-able: {exc}")
        return await asyncio.shield(self._record(held, result, error))

    async def _record(
        self, held: HeldTask, result: Any, error: BaseException | None
    ) -> Task | None:
        held.finished = True
        task, lease = held.task, held.lease
        extra = {"task_id": task.id, "type": task.type, "attempt": task.attempts}
        reason = held.stop_reason
        # The last report goes out with the outcome, whatever the heartbeat already wrote.
        progress = held.context.progress
        repository = self._repository
        try:
            if reason is StopReason.LOST:
                logger.warning("task lost its lease; dropped without writing", extra=extra)
                return None
            if reason is StopReason.SHUTDOWN:
                logger.info("task handed back for another run", extra=extra)
                return await self._write(held, lambda now: repository.release(lease, now=now))
            if reason is StopReason.CANCEL:
                partial = held.context.partial_result
                logger.info("task cancelled", extra=extra)
                return await self._write(
                    held,
                    lambda now: repository.acknowledge_cancel(
                        lease, now=now, result=partial, progress=progress
                    ),
                )
            if error is None:
                return await self._write(
                    held,
                    lambda now: repository.complete(
                        lease, now=now, result=result, progress=progress
                    ),
                )
            return await self._record_failure(held, error, extra)
        except TaskLostError:
            logger.warning("task was taken away before its outcome was written", extra=extra)
            return None

    async def _record_failure(
        self, held: HeldTask, error: BaseException, extra: dict[str, Any]
    ) -> Task | None:
        task, lease, repository = held.task, held.lease, self._repository
        if held.stop_reason is StopReason.TIMEOUT:
            task_error = TaskError(type="timeout", message=f"timed out after {task.timeout_s} s")
        else:
            task_error = TaskError(type=type(error).__name__, message=str(error)[:2000])
        extra = {**extra, "error": task_error.type}
        if isinstance(error, PermanentError) or task.attempts >= task.max_attempts:
            logger.warning("task failed: %s", task_error.type, extra=extra)
            progress = held.context.progress
            return await self._write(
                held,
                lambda now: repository.fail(lease, now=now, error=task_error, progress=progress),
            )
        delay_s = (
            error.delay_s
            if isinstance(error, RetryableError) and error.delay_s is not None
            else self._retry_policy.delay_s(task.attempts, self._rng)
        )
        logger.info("task will retry in %.1f s after %s", delay_s, task_error.type, extra=extra)
        return await self._write(
            held,
            lambda now: repository.retry_later(
                lease, now=now, run_at=now + timedelta(seconds=delay_s), error=task_error
            ),
        )

    async def _write(
        self, held: HeldTask, write: Callable[[datetime], Awaitable[Task]]
    ) -> Task | None:
        """Perform an outcome write, retrying while the database is briefly unreachable.

        Gives up once the lease has run out: by then the rescuer of some instance owns the
        task's fate (the fenced filter would refuse a late write anyway). Each try is bounded by
        what is left of the lease, so a database that stops answering without closing the
        connection cannot hold the worker (or a graceful stop) forever.
        """
        while True:
            now = self._clock.now()
            left_s = (held.lease_until - now).total_seconds()
            try:
                async with asyncio.timeout(max(left_s, _WRITE_RETRY_S)):
                    return await write(now)
            except (DatabaseUnavailableError, TimeoutError):
                if self._clock.now() >= held.lease_until:
                    logger.error(
                        "database unavailable until the lease ran out; outcome not written",
                        extra={"task_id": held.task.id},
                    )
                    return None
                logger.warning("database unavailable; retrying the outcome write")
                await asyncio.sleep(_WRITE_RETRY_S)


def _current_task_cancelling() -> bool:
    """True when the worker itself (not only the execution) is being cancelled."""
    current = asyncio.current_task()
    return current is not None and current.cancelling() > 0
