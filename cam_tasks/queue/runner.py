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
    TaskStatus,
)
from cam_tasks.executor import ExecutorRegistry
from cam_tasks.executor.logcontext import task_log_context
from cam_tasks.queue.held import HeldTask, StopReason
from cam_tasks.queue.outcomes import CompletionWriter
from cam_tasks.repository.protocol import TaskRepository
from cam_tasks.tracing import TaskTracer

__all__ = ["TaskRunner"]

logger = logging.getLogger(__name__)

#: How long to wait between attempts of a final write while the database is unreachable.
_WRITE_RETRY_S = 0.5


class InvalidResultError(PermanentError):
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
        tracer: TaskTracer | None = None,
        completions: CompletionWriter | None = None,
    ) -> None:
        self._repository = repository
        #: Completions go through it (one write for those finishing together) when given.
        self._completions = completions
        self._registry = registry
        self._clock = clock
        self._retry_policy = retry_policy
        self._rng = rng or random.Random()
        self._tracer = tracer or TaskTracer()

    async def run(self, held: HeldTask) -> Task | None:
        """Run ``held`` to its outcome and return the task as written (None when lost).

        Whatever goes wrong during the attempt is the attempt's outcome, recorded at once on
        the task as its error (then retried or failed as usual): an exception of the executor,
        an ``execute`` that returns no coroutine, params that no longer parse, a result that
        is not JSON-able, or a failure of this runner's own machinery. Only a cancellation of
        the worker itself propagates (after its outcome is written). Every record logged
        meanwhile, here or by the executor, carries the task (``TaskLogFilter``), and the
        attempt is one ``cam_tasks.execute`` span when tracing is on (:mod:`cam_tasks.tracing`).
        """
        with task_log_context(held.task), self._tracer.execute(held.task) as span:
            written = await self._run(held)
            outcome, error = _outcome(written, held.stop_reason)
            span.set_outcome(outcome, error=error)
            return written

    async def _run(self, held: HeldTask) -> Task | None:
        if held.stop_reason is not None:  # stopped while still buffered: never started
            return await self._record(held, None, asyncio.CancelledError())
        try:
            execution = self._start(held)
        except Exception as exc:  # nothing ran: the attempt failed before it began
            return await asyncio.shield(self._record(held, None, exc))
        held.execution = execution
        done, _ = await asyncio.wait({execution}, timeout=held.task.timeout_s)
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
                result = _jsonable(result)
            except InvalidResultError as exc:
                error = exc
        return await asyncio.shield(self._record(held, result, error))

    def _start(self, held: HeldTask) -> asyncio.Task[Any]:
        """Parse the stored params and start the executor's coroutine as an asyncio task.

        Raises what keeps the attempt from starting: PermanentError for params the executor's
        model no longer accepts, TypeError for an ``execute`` that returns no coroutine, or
        whatever the executor's ``execute`` raised when called.
        """
        task = held.task
        spec = self._registry.get(task.type)
        try:
            params = spec.params_model.model_validate(task.params)
        except ValidationError as exc:
            # The executor's model changed since the task was stored: retrying cannot help.
            raise PermanentError(
                f"stored params no longer valid: {exc.error_count()} error(s)"
            ) from None
        coroutine = spec.executor.execute(params, held.context)
        if not asyncio.iscoroutine(coroutine):
            # The registry refuses a plain ``def execute``, but a wrapper can still hide one.
            raise TypeError(
                f"executor {task.type!r}: execute() returned {type(coroutine).__name__}, "
                "not a coroutine (it must be `async def`)"
            )
        return asyncio.create_task(coroutine, name=f"cam_tasks:{task.type}:{task.id}")

    async def _record(
        self, held: HeldTask, result: Any, error: BaseException | None
    ) -> Task | None:
        held.finished = True
        task = held.task
        extra = {"task_id": task.id, "type": task.type, "attempt": task.attempts}
        try:
            return await self._record_outcome(held, result, error, extra)
        except TaskLostError:
            logger.warning("task was taken away before its outcome was written", extra=extra)
            return None
        except Exception as exc:
            # The outcome could not be stored as it is (a store refusing the result, a bug in
            # this runner): record that as the attempt's error now, rather than leave the task
            # running until its lease expires with the real cause only in the log.
            logger.exception("recording the outcome failed; recording the failure", extra=extra)
            try:
                return await self._record_failure(held, exc, extra, timed_out=False)
            except TaskLostError:
                logger.warning("task was taken away before its outcome was written", extra=extra)
            except Exception:
                logger.exception(
                    "recording the failure failed too; the lease will expire", extra=extra
                )
            return None

    async def _record_outcome(
        self, held: HeldTask, result: Any, error: BaseException | None, extra: dict[str, Any]
    ) -> Task | None:
        lease = held.lease
        reason = held.stop_reason
        # The last report goes out with the outcome, whatever the heartbeat already wrote.
        progress = held.context.progress
        repository = self._repository
        if reason is StopReason.LOST:
            logger.warning("task lost its lease; dropped without writing", extra=extra)
            return None
        if reason is StopReason.SHUTDOWN:
            logger.info("task handed back for another run", extra=extra)
            return await self._write(held, lambda now: repository.release(lease, now=now))
        if reason is StopReason.CANCEL:
            try:
                partial = _jsonable(held.context.partial_result)
            except InvalidResultError as exc:
                logger.warning("partial result dropped: %s", exc, extra=extra)
                partial = None
            logger.info("task cancelled", extra=extra)
            return await self._write(
                held,
                lambda now: repository.acknowledge_cancel(
                    lease, now=now, result=partial, progress=progress
                ),
            )
        if error is None:
            writer = self._completions
            if writer is not None:
                task = held.task
                return await self._write(
                    held,
                    lambda now: writer.complete(task, now=now, result=result, progress=progress),
                )
            return await self._write(
                held,
                lambda now: repository.complete(lease, now=now, result=result, progress=progress),
            )
        return await self._record_failure(
            held, error, extra, timed_out=reason is StopReason.TIMEOUT
        )

    async def _record_failure(
        self, held: HeldTask, error: BaseException, extra: dict[str, Any], *, timed_out: bool
    ) -> Task | None:
        task, lease, repository = held.task, held.lease, self._repository
        if timed_out:
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


def _jsonable(value: Any) -> Any:
    """``value`` as JSON gives it back (what the API will show and any store can keep: dicts
    with string keys, lists, strings, numbers, booleans, None). InvalidResultError when it has no
    JSON form."""
    if value is None:
        return None
    try:
        return orjson.loads(orjson.dumps(value))
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise InvalidResultError(f"result is not JSON-able: {exc}") from None


def _outcome(written: Task | None, reason: StopReason | None) -> tuple[str, TaskError | None]:
    """How an attempt ended, for its span: ``lost`` (nothing written), ``retry``, ``released``
    (handed back on shutdown) or the status written; with the error of a failed attempt."""
    if written is None:
        return "lost", None
    if written.status is TaskStatus.PENDING:
        if reason is StopReason.SHUTDOWN:
            return "released", None
        return "retry", written.error
    return written.status.value, written.error if written.status is TaskStatus.FAILED else None


def _current_task_cancelling() -> bool:
    """True when the worker itself (not only the execution) is being cancelled."""
    current = asyncio.current_task()
    return current is not None and current.cancelling() > 0
