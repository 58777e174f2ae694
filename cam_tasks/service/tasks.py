"""TaskService: the use cases on tasks (submit, read, list, cancel, retry, delete, counts).

Every front end (HTTP API, CLI, a host service calling Python) goes through this class, so the
rules about what may be submitted live here once: the executor's params model, priorities,
schedules, retry and timeout defaults, and the optional caps on pending tasks.

Scoping: every method takes an optional ``principal`` (:class:`Principal`). With one, the task
records the principal's name as ``created_by`` and its home project as ``project_id``; a
non-admin sees, cancels, retries and deletes only tasks of its projects (any other task raises
:class:`TaskNotFoundError`, exactly as a missing one), lists and counts are filtered in the
database query, and the role's permissions are enforced (:class:`AccessDeniedError`). Without
one, the caller is trusted in-process code (the host service, the CLI, a scheduler): nothing is
scoped and ``created_by``/``project_id`` are taken as given.
"""

from __future__ import annotations

import builtins
import logging
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from pydantic import ValidationError

from cam_tasks.domain import (
    DEFAULT_QUEUE,
    MAX_DELAY_S,
    MAX_PAGE_SIZE,
    MAX_RETRIES,
    MAX_TIMEOUT_S,
    SUBMIT_OPTIONS,
    TRANSITIONS,
    Action,
    Clock,
    InvalidParamsError,
    Permission,
    Principal,
    Priority,
    Task,
    TaskFilter,
    TaskNotFoundError,
    TaskPage,
    TaskStatus,
    new_task,
    utc,
)
from cam_tasks.executor import ExecutorRegistry, validation_details
from cam_tasks.repository.protocol import TaskRepository
from cam_tasks.service.errors import QueueFullError
from cam_tasks.service.notifier import TaskNotifier
from cam_tasks.service.submission import Submitted, TaskSubmission
from cam_tasks.tracing import TaskTracer

__all__ = [
    "DEFAULT_QUEUE_FULL_RETRY_AFTER_S",
    "IDEMPOTENCY_KEY_PATTERN",
    "MAX_IDEMPOTENCY_KEY_LENGTH",
    "TaskService",
    "is_idempotency_key",
]

logger = logging.getLogger(__name__)

#: ``retry_after_s`` of :class:`QueueFullError` unless the service is told otherwise.
DEFAULT_QUEUE_FULL_RETRY_AFTER_S = 5.0
#: Longest accepted idempotency key: keys are indexed, so they must stay small.
MAX_IDEMPOTENCY_KEY_LENGTH = 200
#: What an idempotency key may be, wherever it comes from (an argument, a body, a header): 1 to
#: MAX_IDEMPOTENCY_KEY_LENGTH characters, none of them a control character (NUL, newline, C1),
#: an invisible format or bidi character (zero-width marks, embeddings, overrides, isolates,
#: BOM) or a line or paragraph separator: a key is echoed into logs and tools, where those
#: would forge or hide text. A JSON Schema ``pattern`` as well, so the API document states the
#: same rule (lone surrogates, which JSON decoding already refuses, are left out of it: test
#: generators cannot read such a class).
IDEMPOTENCY_KEY_PATTERN: Final = (
    "^[^\\x00-\\x1f\\x7f-\\x9f\\xad\\u061c\\u180e\\u200b-\\u200f\\u2028-\\u202e"
    "\\u2060-\\u206f\\ufeff\\ufff9-\\ufffb]{1,"
    f"{MAX_IDEMPOTENCY_KEY_LENGTH}}}$"
)
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
#: What undecodable bytes become (a header that is not UTF-8 is read with surrogate escapes).
_SURROGATE = re.compile("[\ud800-\udfff]")


def is_idempotency_key(key: object) -> bool:
    """Whether ``key`` is a valid idempotency key (:data:`IDEMPOTENCY_KEY_PATTERN`, and text:
    no lone surrogate)."""
    return (
        isinstance(key, str)
        and _IDEMPOTENCY_KEY.fullmatch(key) is not None
        and _SURROGATE.search(key) is None
    )


_PRIORITY_NAMES = {p.name.lower(): p for p in Priority}
#: Submit options with rules of their own in :meth:`TaskService._prepare` (names, executor
#: defaults, ``delay_s``, key scoping); any other option is validated by the Task model.
_CHECKED_HERE = frozenset(
    {
        "priority",
        "run_at",
        "max_retries",
        "timeout_s",
        "idempotency_key",
        "queue",
        "unique_key",
        "concurrency_key",
    }
)

Problems = builtins.list[dict[str, Any]]

# The statuses each bulk action may be asked about (its legal sources in the transition table).
_RETRIABLE = TRANSITIONS[Action.RETRY].sources
_ACTIVE = TRANSITIONS[Action.CANCEL].sources | TRANSITIONS[Action.REQUEST_CANCEL].sources
_FINISHED = TRANSITIONS[Action.DELETE].sources


def _problem(loc: str, msg: str, kind: str) -> dict[str, Any]:
    return {"loc": [loc], "msg": msg, "type": kind}


def _millis(value: datetime) -> datetime:
    # MongoDB keeps milliseconds: truncate now so the stored task equals the returned one.
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _parse_priority(value: int | str, problems: Problems) -> Priority:
    if isinstance(value, str):
        found = _PRIORITY_NAMES.get(value.strip().lower())
        if found is not None:
            return found
    elif isinstance(value, int) and not isinstance(value, bool):
        try:
            return Priority(value)
        except ValueError:
            pass
    names = "|".join(_PRIORITY_NAMES)
    ints = ", ".join(str(int(p)) for p in Priority)
    problems.append(
        _problem("priority", f"priority must be one of {names} or {ints}", "priority_invalid")
    )
    return Priority.NORMAL


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scoped(query: TaskFilter, principal: Principal | None) -> TaskFilter:
    """``query`` narrowed to what ``principal`` sees (:meth:`Principal.visible_projects`)."""
    if principal is None:
        return query
    return query.model_copy(update={"project_ids": principal.visible_projects(query.project_ids)})


def _scoped_key(principal: Principal | None, key: str | None) -> str | None:
    # Idempotency keys are unique per store; a non-admin's keys live in their own namespace, so
    # it can neither collide with nor fetch another's task by guessing its key. Admins (who see
    # everything anyway) share the namespace of in-process callers. The length prefix keeps
    # ("a:b", "c") and ("a", "b:c") apart.
    if principal is None or principal.is_admin or key is None:
        return key
    return f"{len(principal.name)}:{principal.name}:{key}"


class TaskService:
    """The task use cases over one repository and one executor registry.

    Concurrency: every method is a thin sequence of repository calls, each atomic on its own,
    so it is safe to call from many coroutines and processes. ``max_pending`` is a soft cap:
    the count and the insert are two steps, so concurrent submits may overshoot it by the
    number of submitters racing.

    Errors: besides those listed per method, any method may raise
    :class:`DatabaseUnavailableError` when the store cannot be reached.
    """

    def __init__(
        self,
        repository: TaskRepository,
        registry: ExecutorRegistry,
        *,
        clock: Clock,
        notifier: TaskNotifier | None = None,
        max_pending: int | None = None,
        max_pending_per_principal: int | None = None,
        queue_full_retry_after_s: float = DEFAULT_QUEUE_FULL_RETRY_AFTER_S,
        queues: Collection[str] | None = None,
        tracer: TaskTracer | None = None,
    ) -> None:
        if max_pending is not None and max_pending < 1:
            raise ValueError("max_pending must be >= 1 (or None for no cap)")
        if max_pending_per_principal is not None and max_pending_per_principal < 1:
            raise ValueError("max_pending_per_principal must be >= 1 (or None for no cap)")
        if not queue_full_retry_after_s > 0:
            raise ValueError("queue_full_retry_after_s must be > 0")
        self._repository = repository
        self._registry = registry
        self._clock = clock
        self._notifier = notifier
        self._max_pending = max_pending
        self._max_pending_per_principal = max_pending_per_principal
        #: The queues a task may be submitted to: the declared ones (None: the default queue
        #: and those the executors name).
        self._queues = (
            frozenset(queues)
            if queues is not None
            else frozenset({DEFAULT_QUEUE, *(spec.queue for spec in registry)})
        )
        self._queue_full_retry_after_s = queue_full_retry_after_s
        #: Spans of submits; tasks store the submit span's trace context (off: records nothing).
        self._tracer = tracer or TaskTracer()

    @property
    def clock(self) -> Clock:
        """The clock the service stamps tasks with (views use it for a running duration)."""
        return self._clock

    @property
    def registry(self) -> ExecutorRegistry:
        return self._registry

    @property
    def queues(self) -> frozenset[str]:
        """The queues a task may be submitted to."""
        return self._queues

    # -- submit -------------------------------------------------------------------------------

    async def submit(
        self,
        task_type: str,
        params: Mapping[str, Any],
        *,
        principal: Principal | None = None,
        **options: Any,
    ) -> Task:
        """Validate and store one pending task, then wake the local dispatcher.

        ``options`` are the task's submit options (:data:`~cam_tasks.domain.SUBMIT_OPTIONS`:
        ``priority``, ``run_at``, ``max_retries``, ``timeout_s``, ``idempotency_key``…), plus
        ``delay_s``, ``created_by`` and ``project_id`` (see :class:`TaskSubmission`); an
        unknown keyword is a TypeError.

        With ``principal``, the task records its name as ``created_by`` and its home project as
        ``project_id`` (passing either as well is a ValueError), the role must permit
        submitting (:class:`AccessDeniedError`), ``max_pending_per_principal`` applies, and the
        idempotency key is the principal's own.

        ``params`` are parsed by the executor's model and stored as that model dumps them
        (defaults filled in, values normalised). ``priority`` is a :class:`Priority` name
        (``low|normal|high|urgent``) or its int. ``run_at`` (tz-aware) or ``delay_s`` (>= 0,
        from now) schedules the first run; neither means now. ``max_retries`` and
        ``timeout_s`` default to the executor's registration (``0 <= max_retries <=
        MAX_RETRIES``, ``timeout_s`` finite and > 0).

        With ``idempotency_key``, a second submit with the same key stores nothing and returns
        the first task (whatever its parameters).

        Raises :class:`UnknownTaskTypeError` for an unregistered type,
        :class:`InvalidParamsError` (every problem found, as ``loc``/``msg``/``type``
        details; parameter problems under ``("params", …)``), :class:`QueueFullError` when
        ``max_pending`` (or the principal's cap) is reached. Nothing is stored when it raises.
        """
        return (await self.enqueue(task_type, params, principal=principal, **options)).task

    async def enqueue(
        self,
        task_type: str,
        params: Mapping[str, Any],
        *,
        principal: Principal | None = None,
        **options: Any,
    ) -> Submitted:
        """:meth:`submit`, also saying whether the task was ``deduplicated``: a pending or
        running task of the same project already held its ``unique_key``, and that task is
        returned (nothing new is stored; the check is the store's, atomic across instances).
        Once that task ends, the next submit with the key creates a new task."""
        with self._tracer.submit() as span:
            submission = TaskSubmission(task_type, params, **options)
            task = self._prepare(submission, principal, span.trace_context)
            await self._check_capacity(principal)
            stored = self._accepted(task, await self._repository.insert(task), principal)
            joined = (
                stored.id != task.id
                and task.unique_key is not None
                and stored.unique_key == task.unique_key
                and not stored.status.is_terminal
            )
            span.set_task(stored)
            span.set_outcome("deduplicated" if joined else "stored")
            return Submitted(stored, deduplicated=joined)

    async def submit_many(
        self, submissions: Iterable[TaskSubmission], *, principal: Principal | None = None
    ) -> builtins.list[Task]:
        """Validate every submission as :meth:`submit` does, then store them all in one
        round trip (``insert_many``) and wake the local dispatcher once per new task. Returns
        the tasks in order (a deduplicated one is the task its key already named).

        All or nothing at validation: :class:`InvalidParamsError` lists every problem of every
        submission, ``loc`` prefixed with the submission's index, and nothing is stored;
        :class:`UnknownTaskTypeError` for the first unregistered type. The caps are checked once
        for the batch (:class:`QueueFullError` when already reached; a batch admitted below the
        cap may overshoot it by its size). The store is not atomic across the batch (see
        ``TaskRepository.insert_many``): when it fails, submitting the same batch again with
        idempotency keys stores nothing twice.
        """
        with self._tracer.submit() as span:
            tasks: builtins.list[Task] = []
            problems: Problems = []
            for index, submission in enumerate(submissions):
                try:
                    tasks.append(self._prepare(submission, principal, span.trace_context))
                except InvalidParamsError as exc:
                    problems += [{**d, "loc": [index, *d.get("loc", ())]} for d in exc.details]
            if problems:
                raise InvalidParamsError("invalid submissions", problems)
            if not tasks:
                span.set_tasks(tasks)
                return []
            await self._check_capacity(principal)
            stored = await self._repository.insert_many(tasks)
            pairs = zip(tasks, stored, strict=True)
            accepted = [self._accepted(task, kept, principal) for task, kept in pairs]
            span.set_tasks(accepted)
            span.set_outcome("stored")
            return accepted

    def _prepare(
        self,
        submission: TaskSubmission,
        principal: Principal | None,
        trace_context: dict[str, str] | None = None,
    ) -> Task:
        """The pending task ``submission`` asks for, every option checked (see :meth:`submit`
        for the rules and what it raises), carrying the submitter's ``trace_context``."""
        task_type, params = submission.task_type, submission.params
        option = submission.option
        created_by, project_id = option("created_by", "system"), option("project_id")
        if principal is not None:
            if created_by != "system" or project_id is not None:
                raise ValueError("created_by and project_id come from the principal when given")
            principal.require(Permission.SUBMIT)
            created_by, project_id = principal.name, principal.home_project
        spec = self._registry.get(task_type)
        problems: Problems = []
        level = _parse_priority(option("priority", Priority.NORMAL), problems)
        due = self._due(option("run_at"), option("delay_s"), problems)
        max_retries, timeout_s = option("max_retries"), option("timeout_s")
        idempotency_key = option("idempotency_key")
        queue = option("queue", spec.queue)
        if queue not in self._queues:
            problems.append(
                _problem(
                    "queue",
                    f"unknown queue {queue!r}: one of {', '.join(sorted(self._queues))}",
                    "queue_unknown",
                )
            )
        retries = spec.max_retries if max_retries is None else max_retries
        if not (
            isinstance(retries, int)
            and not isinstance(retries, bool)
            and 0 <= retries <= MAX_RETRIES
        ):
            problems.append(
                _problem(
                    "max_retries",
                    f"must be an integer from 0 to {MAX_RETRIES}",
                    "max_retries",
                )
            )
        timeout = spec.timeout_s if timeout_s is None else timeout_s
        if timeout is not None and not (_is_number(timeout) and 0 < timeout <= MAX_TIMEOUT_S):
            problems.append(
                _problem("timeout_s", f"must be a number > 0 and <= {MAX_TIMEOUT_S:g}", "timeout_s")
            )
        if not isinstance(created_by, str) or not created_by:
            problems.append(_problem("created_by", "must be a non-empty string", "created_by"))
        if idempotency_key is not None and not is_idempotency_key(idempotency_key):
            problems.append(
                _problem(
                    "idempotency_key",
                    f"must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters",
                    "idempotency_key",
                )
            )
        model: Any = None
        try:
            model = self._registry.validate(task_type, params)
        except InvalidParamsError as exc:
            problems = [*exc.details, *problems]
        # Keys: as given ("" opts out of the executor's default), else the executor's.
        keys: dict[str, str | None] = {}
        for name, derive in (
            ("unique_key", spec.unique_key),
            ("concurrency_key", spec.concurrency_key),
        ):
            given = submission.options.get(name)
            if given is None:
                keys[name] = None if model is None else derive(model)
            elif isinstance(given, str):
                keys[name] = given or None
            else:
                problems.append(_problem(name, "must be a string", name))
        # Every other option is an ordinary task field: the domain model validates it.
        fields = {
            name: submission.options[name]
            for name in SUBMIT_OPTIONS
            if name not in _CHECKED_HERE and submission.options.get(name) is not None
        }
        task: Task | None = None
        if not problems:
            try:
                task = new_task(
                    task_type=task_type,
                    params=model.model_dump(mode="json"),
                    now=self._clock.now(),
                    run_at=due,
                    priority=int(level),
                    max_retries=retries,
                    timeout_s=None if timeout is None else float(timeout),
                    created_by=created_by,
                    project_id=project_id,
                    idempotency_key=_scoped_key(principal, idempotency_key),
                    queue=queue,
                    trace_context=trace_context,
                    **keys,
                    **fields,
                )
            except ValidationError as exc:
                problems = validation_details(exc)
        if task is None:
            raise InvalidParamsError(f"invalid submission of {task_type!r}", problems)
        return task

    def _accepted(self, task: Task, stored: Task, principal: Principal | None) -> Task:
        """``stored`` (what inserting ``task`` returned), logged and announced."""
        task_type = task.type
        if principal is not None and not principal.sees(stored.project_id):
            # Deduplicated onto a task this principal does not see (an admin's raw key shaped
            # like a namespaced one): never hand it out.
            raise InvalidParamsError(
                "idempotency key already used",
                [_problem("idempotency_key", "is already used", "idempotency_key_taken")],
            )
        logger.info(
            "task submitted" if stored.id == task.id else "task submission deduplicated",
            extra={"task_id": stored.id, "type": task_type},
        )
        if stored.id == task.id:
            # A deduplicated submit returns a task whose own submit already woke the dispatcher.
            self._notify(lambda notifier: notifier.task_submitted(stored))
        return stored

    def _due(
        self, run_at: datetime | None, delay_s: float | None, problems: Problems
    ) -> datetime | None:
        if run_at is not None and delay_s is not None:
            problems.append(
                _problem("delay_s", "run_at and delay_s are mutually exclusive", "exclusive")
            )
            return None
        if run_at is not None:
            if not isinstance(run_at, datetime) or run_at.utcoffset() is None:
                problems.append(_problem("run_at", "must be a timezone-aware datetime", "run_at"))
                return None
            try:
                return _millis(utc(run_at))
            except OverflowError:  # e.g. 0001-01-01T00:00+14:00 is before year 1 in UTC
                problems.append(_problem("run_at", "is outside the representable range", "run_at"))
                return None
        if delay_s is not None:
            if not (_is_number(delay_s) and 0 <= delay_s <= MAX_DELAY_S):
                problems.append(
                    _problem("delay_s", f"must be a number from 0 to {MAX_DELAY_S:g}", "delay_s")
                )
                return None
            try:
                return _millis(self._clock.now() + timedelta(seconds=delay_s))
            except OverflowError:
                problems.append(_problem("delay_s", "is too far in the future", "delay_s"))
        return None

    async def _check_capacity(self, principal: Principal | None) -> None:
        caps: list[tuple[int, str | None]] = []
        if self._max_pending is not None:
            caps.append((self._max_pending, None))
        if principal is not None and self._max_pending_per_principal is not None:
            caps.append((self._max_pending_per_principal, principal.name))
        for cap, created_by in caps:
            query = TaskFilter(statuses=frozenset({TaskStatus.PENDING}), created_by=created_by)
            counts = await self._repository.count_by_status(query)
            pending = counts.get(TaskStatus.PENDING, 0)
            if pending >= cap:
                raise QueueFullError(
                    pending=pending,
                    max_pending=cap,
                    retry_after_s=self._queue_full_retry_after_s,
                )

    # -- read ---------------------------------------------------------------------------------

    async def get(self, task_id: str, *, principal: Principal | None = None) -> Task:
        """The task. Raises :class:`TaskNotFoundError`, also when ``principal`` does not see
        it."""
        task = await self._repository.get(task_id)
        if principal is not None and not principal.sees(task.project_id):
            raise TaskNotFoundError(task_id)
        return task

    async def _check_operable(self, task_id: str, principal: Principal | None) -> None:
        # Check, then act: safe because a task's project never changes once stored, and ids
        # are never reused, so the task the action then finds is the one checked here.
        if principal is not None:
            await self.get(task_id, principal=principal)
            principal.require(Permission.OPERATE)

    async def list(
        self,
        query: TaskFilter,
        *,
        offset: int = 0,
        limit: int = 20,
        principal: Principal | None = None,
    ) -> TaskPage:
        """One page of tasks matching ``query`` (and seen by ``principal``), newest first, and
        the total matching.

        Raises :class:`InvalidParamsError` unless ``offset >= 0`` and
        ``1 <= limit <= MAX_PAGE_SIZE``.
        """
        problems: Problems = []
        if offset < 0:
            problems.append(_problem("offset", "must be >= 0", "offset"))
        if not 1 <= limit <= MAX_PAGE_SIZE:
            problems.append(_problem("limit", f"must be between 1 and {MAX_PAGE_SIZE}", "limit"))
        if problems:
            raise InvalidParamsError("invalid page", problems)
        return await self._repository.list(_scoped(query, principal), offset=offset, limit=limit)

    async def counts(self, *, principal: Principal | None = None) -> Mapping[TaskStatus, int]:
        """Number of tasks (seen by ``principal``) in each status, zeros included."""
        if principal is None or principal.is_admin:
            return await self._repository.count_by_status()
        return await self._repository.count_by_status(_scoped(TaskFilter(), principal))

    # -- operator actions ---------------------------------------------------------------------

    async def cancel(self, task_id: str, *, principal: Principal | None = None) -> Task:
        """Cancel a task: a pending one is cancelled at once; a running one is marked
        ``cancel_requested`` (its owner stops it) and, if it runs in this process, the local
        dispatcher is told to cancel it now. Returns the task as stored after the request.

        Raises :class:`TaskNotFoundError` (also for a task ``principal`` does not see),
        :class:`AccessDeniedError`, or :class:`IllegalTransitionError` when it already
        finished.
        """
        await self._check_operable(task_id, principal)
        task = await self._repository.request_cancel(task_id, now=self._clock.now())
        logger.info("task cancel requested", extra={"task_id": task.id, "type": task.type})
        if task.status is TaskStatus.RUNNING and task.cancel_requested:
            self._notify(lambda notifier: notifier.cancel_requested(task.id))
        return task

    async def retry(self, task_id: str, *, principal: Principal | None = None) -> Task:
        """Re-run a failed or cancelled task from scratch (attempts reset, history kept).

        Raises :class:`TaskNotFoundError` (also for a task ``principal`` does not see),
        :class:`AccessDeniedError`, or :class:`IllegalTransitionError` when it is pending,
        running or completed.
        """
        await self._check_operable(task_id, principal)
        task = await self._repository.retry(task_id, now=self._clock.now())
        logger.info("task retried", extra={"task_id": task.id, "type": task.type})
        self._notify(lambda notifier: notifier.task_submitted(task))
        return task

    async def delete(self, task_id: str, *, principal: Principal | None = None) -> None:
        """Delete a finished task.

        Raises :class:`TaskNotFoundError` (also for a task ``principal`` does not see),
        :class:`AccessDeniedError`, or :class:`IllegalTransitionError` while it is pending or
        running.
        """
        await self._check_operable(task_id, principal)
        await self._repository.delete(task_id)
        logger.info("task deleted", extra={"task_id": task_id})

    # -- internals ----------------------------------------------------------------------------

    def _notify(self, call: Callable[[TaskNotifier], None]) -> None:
        # The change is already stored: a failing hint must not turn it into an error for the
        # caller. The dispatcher still finds the task on its next poll or heartbeat.
        if self._notifier is None:
            return
        try:
            call(self._notifier)
        except Exception:
            logger.warning("task notifier failed; the dispatcher will catch up", exc_info=True)

    # -- bulk operator actions ----------------------------------------------------------------

    async def retry_many(self, query: TaskFilter, *, principal: Principal | None = None) -> int:
        """Re-run every failed or cancelled task matching ``query`` (and seen by
        ``principal``), as :meth:`retry` would; the number retried.

        ``query.statuses`` may name only failed/cancelled (:class:`InvalidParamsError`
        otherwise); without it, both. :class:`AccessDeniedError` unless ``principal`` may
        operate. One write per status group: not atomic across tasks, and a task that moved
        on meanwhile is left alone. The local dispatcher finds the tasks on its next poll.
        """
        self._check_bulk(query, _RETRIABLE, "retry", principal)
        count = await self._repository.retry_many(_scoped(query, principal), now=self._clock.now())
        logger.info("tasks retried in bulk", extra={"count": count})
        return count

    async def cancel_many(self, query: TaskFilter, *, principal: Principal | None = None) -> int:
        """Cancel every pending or running task matching ``query`` (and seen by
        ``principal``), as :meth:`cancel` would: pending ones at once, running ones asked to
        stop (their owners cancel them within one heartbeat). Returns how many were changed
        (a running task already asked to stop is not counted again).

        ``query.statuses`` may name only pending/running (:class:`InvalidParamsError`
        otherwise); :class:`AccessDeniedError` unless ``principal`` may operate.
        """
        self._check_bulk(query, _ACTIVE, "cancel", principal)
        count = await self._repository.cancel_many(_scoped(query, principal), now=self._clock.now())
        logger.info("tasks cancelled in bulk", extra={"count": count})
        return count

    async def delete_many(self, query: TaskFilter, *, principal: Principal | None = None) -> int:
        """Delete every finished task matching ``query`` (and seen by ``principal``); the
        number deleted. Active tasks are never deleted.

        At least one criterion is required (an empty filter is an :class:`InvalidParamsError`:
        a clean-up says what it cleans); ``query.statuses`` may name only finished statuses.
        :class:`AccessDeniedError` unless ``principal`` may operate.
        """
        if query.is_empty():
            raise InvalidParamsError(
                "a bulk delete needs a filter",
                [_problem("filter", "give at least one criterion", "filter_required")],
            )
        self._check_bulk(query, _FINISHED, "delete", principal)
        count = await self._repository.delete_many(_scoped(query, principal))
        logger.info("tasks deleted in bulk", extra={"count": count})
        return count

    @staticmethod
    def _check_bulk(
        query: TaskFilter,
        allowed: frozenset[TaskStatus],
        action: str,
        principal: Principal | None,
    ) -> None:
        if principal is not None:
            principal.require(Permission.OPERATE)
        if query.statuses is not None and not query.statuses <= allowed:
            names = ", ".join(sorted(status.value for status in allowed))
            raise InvalidParamsError(
                f"invalid bulk {action}",
                [_problem("status", f"{action} applies only to: {names}", "status")],
            )
