"""OpenTelemetry spans of a task's life: submit, claim and execution.

Off unless the ``otel`` extra is installed (``pip install 'cam_tasks[otel]'``) and
``[tracing] enabled = true``: the service and the dispatcher are then given an
:class:`OpenTelemetryTaskTracer`; otherwise a :class:`TaskTracer`, which records nothing and never
imports OpenTelemetry (the base install has none).

Spans (attributes ``cam_tasks.task_id``, ``.type``, ``.queue``, ``.attempt``, ``.outcome``):

- ``cam_tasks.submit`` (PRODUCER) around a submit, a child of whatever span is current (the
  request span of the official aiohttp-server instrumentation, the host's own). The W3C trace
  context of this span (``traceparent``, and ``tracestate``/``baggage`` when present: whatever
  the global propagator writes) is stored with the task as ``Task.trace_context``.
- ``cam_tasks.claim`` (INTERNAL) for a claim that took a task, a child of the stored context.
  A claim that finds nothing records no span (an idle worker would emit one per poll); a claim
  that fails records a root span with the error.
- ``cam_tasks.execute`` (CONSUMER) around one attempt, from the executor's start to its outcome
  write, a child of the stored context: the execution joins the submitter's trace on whichever
  instance claims it. It is the current span while the executor runs, so spans the executor
  makes (HTTP clients, PyMongo instrumentation) nest under it.

Spans go to the tracer provider given, else to the global one (``opentelemetry.trace``), so they
land beside those of the official instrumentations.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, Final

from cam_tasks._version import __version__
from cam_tasks.domain import ConfigurationError, Task, TaskError

if TYPE_CHECKING:
    from opentelemetry.trace import Span, TracerProvider

__all__ = [
    "CLAIM_SPAN",
    "EXECUTE_SPAN",
    "SUBMIT_SPAN",
    "OpenTelemetryTaskTracer",
    "TaskSpan",
    "TaskTracer",
]

logger = logging.getLogger(__name__)

SUBMIT_SPAN: Final = "cam_tasks.submit"
CLAIM_SPAN: Final = "cam_tasks.claim"
EXECUTE_SPAN: Final = "cam_tasks.execute"

_TASK_ID: Final = "cam_tasks.task_id"
_TYPE: Final = "cam_tasks.type"
_QUEUE: Final = "cam_tasks.queue"
_ATTEMPT: Final = "cam_tasks.attempt"
_OUTCOME: Final = "cam_tasks.outcome"
_COUNT: Final = "cam_tasks.count"

#: Largest trace context stored with a task (key and value characters): a propagator carrying
#: large baggage must not bloat every task document.
_MAX_CONTEXT_CHARS: Final = 4096


def _task_attributes(task: Task) -> dict[str, Any]:
    return {_TASK_ID: task.id, _TYPE: task.type, _QUEUE: task.queue, _ATTEMPT: task.attempts}


class TaskSpan:
    """What a call site tells the span it runs in. This base records nothing (tracing off)."""

    __slots__ = ()

    @property
    def trace_context(self) -> dict[str, str] | None:
        """The W3C trace context of this span, to store with a submitted task (None: off)."""
        return None

    def set_task(self, task: Task) -> None:
        """Describe the span's task: id, type, queue, attempt."""

    def set_tasks(self, tasks: Sequence[Task]) -> None:
        """Describe a batch: its size, and its type and queue when all share them."""

    def set_outcome(self, outcome: str, *, error: TaskError | None = None) -> None:
        """How the operation ended; ``error`` marks the span as failed with the task's error."""


_NO_SPAN: Final = TaskSpan()
#: What every span of the disabled tracer is: one shared object, no generator per call (submit,
#: claim and execution are hot paths).
_NO_TRACING: Final[AbstractContextManager[TaskSpan]] = nullcontext(_NO_SPAN)


class TaskTracer:
    """Spans of submit, claim and execution. This base records nothing and is what lower
    layers use when given no tracer; :class:`OpenTelemetryTaskTracer` records."""

    enabled: bool = False

    def submit(self) -> AbstractContextManager[TaskSpan]:
        """Around one submit (or a batch): the span whose context tasks store."""
        return _NO_TRACING

    def claim(self, queue: str) -> AbstractContextManager[TaskSpan]:
        """Around one claim from ``queue``: recorded only if it took a task or failed."""
        return _NO_TRACING

    def execute(self, task: Task) -> AbstractContextManager[TaskSpan]:
        """Around one attempt of ``task``, in the trace its submitter stored."""
        return _NO_TRACING


class _OtelSpan(TaskSpan):
    __slots__ = ("_context", "_span")

    def __init__(self, span: Span, context: dict[str, str] | None = None) -> None:
        self._span = span
        self._context = context

    @property
    def trace_context(self) -> dict[str, str] | None:
        return self._context

    def set_task(self, task: Task) -> None:
        self._span.set_attributes(_task_attributes(task))

    def set_tasks(self, tasks: Sequence[Task]) -> None:
        self._span.set_attribute(_COUNT, len(tasks))
        if len(tasks) == 1:
            self.set_task(tasks[0])
            return
        for name, values in ((_TYPE, {t.type for t in tasks}), (_QUEUE, {t.queue for t in tasks})):
            if len(values) == 1:
                self._span.set_attribute(name, values.pop())

    def set_outcome(self, outcome: str, *, error: TaskError | None = None) -> None:
        from opentelemetry.trace import Status, StatusCode

        self._span.set_attribute(_OUTCOME, outcome)
        if error is not None:
            self._span.set_attribute("error.type", error.type)
            self._span.set_status(Status(StatusCode.ERROR, f"{error.type}: {error.message}"))


class _ClaimRecord(TaskSpan):
    """A claim's spans are made once the claim is over: only then are its tasks (and so their
    traces) known, and a claim that found nothing is not worth a span. A batch makes one span
    per task, each in the trace of that task's submitter."""

    __slots__ = ("outcome", "tasks")

    def __init__(self) -> None:
        self.tasks: Sequence[Task] = ()
        self.outcome = "claimed"

    def set_task(self, task: Task) -> None:
        self.tasks = (task,)

    def set_tasks(self, tasks: Sequence[Task]) -> None:
        self.tasks = tasks

    def set_outcome(self, outcome: str, *, error: TaskError | None = None) -> None:
        self.outcome = outcome


class OpenTelemetryTaskTracer(TaskTracer):
    """Records the spans described in the module docstring through ``tracer_provider`` (default:
    the global provider, resolved at each span, so one set later still receives them).

    Raises ConfigurationError when OpenTelemetry is not installed. Safe to share between
    coroutines: it keeps no state of its own besides the OpenTelemetry tracer.
    """

    enabled = True

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        try:
            from opentelemetry import context, propagate, trace
        except ImportError as exc:
            raise ConfigurationError(
                "[tracing] enabled = true needs OpenTelemetry: pip install 'cam_tasks[otel]' "
                f"({exc.name} is missing)"
            ) from None
        self._context = context
        self._propagate = propagate
        self._trace = trace
        self._provider = tracer_provider
        self._tracer = trace.get_tracer("cam_tasks", __version__, tracer_provider=tracer_provider)

    @property
    def has_provider(self) -> bool:
        """False while spans would go nowhere: no provider given and no global one set."""
        if self._provider is not None:
            return True
        return not isinstance(
            self._trace.get_tracer_provider(),
            self._trace.ProxyTracerProvider | self._trace.NoOpTracerProvider,
        )

    @contextmanager
    def submit(self) -> Iterator[TaskSpan]:
        kind = self._trace.SpanKind.PRODUCER
        with self._tracer.start_as_current_span(SUBMIT_SPAN, kind=kind) as span:
            carrier: dict[str, str] = {}
            self._propagate.inject(carrier)  # the context of the span just made current
            size = sum(len(key) + len(value) for key, value in carrier.items())
            handle = _OtelSpan(span, carrier if carrier and size <= _MAX_CONTEXT_CHARS else None)
            try:
                yield handle
            except Exception:
                span.set_attribute(_OUTCOME, "rejected")
                raise  # start_as_current_span records it and marks the span failed

    @contextmanager
    def claim(self, queue: str) -> Iterator[TaskSpan]:
        record = _ClaimRecord()
        start_ns = time.time_ns()
        try:
            yield record
        except Exception as exc:
            span = self._tracer.start_span(
                CLAIM_SPAN,
                context=self._context.Context(),
                start_time=start_ns,
                attributes={_QUEUE: queue, _OUTCOME: "error"},
            )
            span.record_exception(exc)
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, type(exc).__name__))
            span.end()
            raise
        for task in record.tasks:
            span = self._tracer.start_span(
                CLAIM_SPAN,
                context=self._parent(task),
                start_time=start_ns,
                attributes={**_task_attributes(task), _OUTCOME: record.outcome},
            )
            span.end()

    @contextmanager
    def execute(self, task: Task) -> Iterator[TaskSpan]:
        with self._tracer.start_as_current_span(
            EXECUTE_SPAN,
            context=self._parent(task),
            kind=self._trace.SpanKind.CONSUMER,
            attributes=_task_attributes(task),
        ) as span:
            yield _OtelSpan(span)

    def _parent(self, task: Task) -> Any:
        """The context ``task``'s submitter stored; an empty one (a new trace) when it stored
        none, never the worker's own context."""
        return self._propagate.extract(task.trace_context or {}, context=self._context.Context())
