"""OpenTelemetry spans of submit, claim and execution, recorded by the SDK's in-memory exporter."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import cam_tasks
from cam_tasks.config import load_settings
from cam_tasks.domain import Task, TaskStatus, UnknownTaskTypeError
from cam_tasks.web.schemas import TaskView
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parent.parent
SYNC = {"provider": "aliyun", "account_id": "123", "asset_types": ["ecs"]}


def settings(**sections: Any) -> cam_tasks.Settings:
    return load_settings(
        ROOT / "config.example.toml",
        queue={"progress_interval_s": 0.02, "poll_interval_s": 0.05},
        providers={"static": [{"name": "aliyun", "inventory": "builtin:sample_inventory.toml"}]},
        schedules=[],
        **sections,
    )


def recording() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


async def finished(runtime: cam_tasks.CamTasks, task_id: str) -> Task:
    async def probe() -> Task:
        return await runtime.tasks.get(task_id)

    return await eventually(probe, lambda t: t.status.is_terminal, timeout_s=20)


async def spans_named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    async def probe() -> list[ReadableSpan]:
        return named(exporter.get_finished_spans(), name)

    return await eventually(probe, bool, timeout_s=20)


async def test_the_execution_joins_the_trace_of_the_request_that_submitted_it() -> None:
    provider, exporter = recording()
    runtime = cam_tasks.CamTasks(settings(tracing={"enabled": True}), tracer_provider=provider)
    async with runtime:
        with provider.get_tracer("host").start_as_current_span("POST /tasks") as request:
            task = await runtime.service.submit("sync_assets", SYNC)
        assert (await finished(runtime, task.id)).status is TaskStatus.COMPLETED
        (execute,) = await spans_named(exporter, "cam_tasks.execute")
    spans = exporter.get_finished_spans()
    (submit,) = named(spans, "cam_tasks.submit")
    (claim,) = named(spans, "cam_tasks.claim")
    trace_id = request.get_span_context().trace_id

    # One trace: the request, its submit, then the claim and the execution under the submit.
    assert {s.context.trace_id for s in (submit, claim, execute)} == {trace_id}
    assert submit.parent is not None
    assert submit.parent.span_id == request.get_span_context().span_id
    for child in (claim, execute):
        assert child.parent is not None
        assert child.parent.span_id == submit.context.span_id
    assert (submit.kind, execute.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)

    described = {"cam_tasks.task_id": task.id, "cam_tasks.type": "sync_assets"}
    described["cam_tasks.queue"] = "default"
    assert submit.attributes == {**described, "cam_tasks.attempt": 0, "cam_tasks.outcome": "stored"}
    assert claim.attributes == {**described, "cam_tasks.attempt": 1, "cam_tasks.outcome": "claimed"}
    assert execute.attributes == {
        **described,
        "cam_tasks.attempt": 1,
        "cam_tasks.outcome": "completed",
    }
    assert execute.status.status_code is StatusCode.UNSET

    # What carried it: the submit span's W3C traceparent, stored with the task, never shown.
    assert task.trace_context is not None
    assert task.trace_context["traceparent"].split("-")[1:3] == [
        f"{trace_id:032x}",
        f"{submit.context.span_id:016x}",
    ]
    assert "trace_context" not in TaskView.model_fields


async def test_another_instance_runs_the_task_in_the_submitters_trace() -> None:
    from mongomock_motor import AsyncMongoMockClient

    database: Any = AsyncMongoMockClient(tz_aware=True)["tracing"]
    api_provider, api_spans = recording()
    worker_provider, worker_spans = recording()
    traced = settings(tracing={"enabled": True})
    api = cam_tasks.CamTasks(traced, database=database, workers=False, tracer_provider=api_provider)
    worker = cam_tasks.CamTasks(traced, database=database, tracer_provider=worker_provider)
    async with api, worker:
        task = await api.service.submit("sync_assets", SYNC)
        assert (await finished(worker, task.id)).status is TaskStatus.COMPLETED
        (execute,) = await spans_named(worker_spans, "cam_tasks.execute")
    (submit,) = named(api_spans.get_finished_spans(), "cam_tasks.submit")
    # Only the stored document went from one instance to the other, and the trace with it.
    assert execute.context.trace_id == submit.context.trace_id
    assert execute.parent is not None
    assert execute.parent.span_id == submit.context.span_id
    assert not named(api_spans.get_finished_spans(), "cam_tasks.execute")


async def test_a_failed_attempt_and_a_rejected_submit_are_error_spans() -> None:
    provider, exporter = recording()
    runtime = cam_tasks.CamTasks(settings(tracing={"enabled": True}), tracer_provider=provider)
    async with runtime:
        with pytest.raises(UnknownTaskTypeError):
            await runtime.service.submit("no_such_type", {})
        (rejected,) = named(exporter.get_finished_spans(), "cam_tasks.submit")
        assert rejected.attributes is not None
        assert rejected.attributes["cam_tasks.outcome"] == "rejected"
        assert rejected.status.status_code is StatusCode.ERROR

        # An account the sample inventory does not know: the provider refuses, for good.
        task = await runtime.service.submit(
            "sync_assets", {**SYNC, "account_id": "unknown"}, max_retries=0
        )
        done = await finished(runtime, task.id)
        (execute,) = await spans_named(exporter, "cam_tasks.execute")
    assert done.status is TaskStatus.FAILED
    assert done.error is not None
    assert execute.attributes is not None
    assert execute.attributes["cam_tasks.outcome"] == "failed"
    assert execute.attributes["error.type"] == done.error.type
    assert execute.status.status_code is StatusCode.ERROR


async def test_nothing_is_recorded_or_stored_while_tracing_is_off() -> None:
    provider, exporter = recording()
    runtime = cam_tasks.CamTasks(settings(), tracer_provider=provider)
    async with runtime:
        with provider.get_tracer("host").start_as_current_span("POST /tasks"):
            task = await runtime.service.submit("sync_assets", SYNC)
        assert (await finished(runtime, task.id)).status is TaskStatus.COMPLETED
    assert task.trace_context is None
    assert [s.name for s in exporter.get_finished_spans()] == ["POST /tasks"]


def test_the_base_install_runs_without_opentelemetry(tmp_path: Path) -> None:
    # A real interpreter in which `import opentelemetry` fails, as in an install without the
    # extra: cam_tasks imports and runs; enabling tracing says what to install.
    script = textwrap.dedent(
        """
        import asyncio, sys
        sys.modules["opentelemetry"] = None  # any import of it now raises ImportError

        import cam_tasks
        from cam_tasks.domain import ConfigurationError

        async def main():
            demo = {"static": [{"name": "aliyun", "inventory": "builtin:sample_inventory.toml"}]}
            settings = cam_tasks.Settings(providers=demo, queue={"poll_interval_s": 0.05})
            async with cam_tasks.CamTasks(settings, load_plugins=False) as runtime:
                params = {"provider": "aliyun", "account_id": "123", "asset_types": ["ecs"]}
                task = await runtime.service.submit("sync_assets", params)
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 30
                while not (task := await runtime.tasks.get(task.id)).status.is_terminal:
                    assert loop.time() < deadline, task.status
                    await asyncio.sleep(0.02)
                print("ran:", task.status.value)
            try:
                cam_tasks.CamTasks(cam_tasks.Settings(tracing={"enabled": True}))
            except ConfigurationError as exc:
                print("refused:", exc)

        asyncio.run(main())
        assert not any(name.startswith("opentelemetry.") for name in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "ran: completed" in result.stdout
    assert "refused: [tracing] enabled = true needs OpenTelemetry" in result.stdout
    assert "pip install 'cam_tasks[otel]'" in result.stdout


# The instrumentation subclasses web.Application, which aiohttp discourages (its own warning).
@pytest.mark.filterwarnings("ignore:Inheritance class _InstrumentedApplication:DeprecationWarning")
async def test_beside_the_aiohttp_server_instrumentation_a_task_joins_the_clients_trace() -> None:
    # The official instrumentation's middleware on the host app reads the client's traceparent
    # and makes the request span current in the API's handlers: the submit is its child.
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer
    from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor

    provider, exporter = recording()
    instrumentor = AioHttpServerInstrumentor()
    instrumentor.instrument(tracer_provider=provider)  # every web.Application made from now on
    try:
        app = web.Application()
        runtime = cam_tasks.setup(
            app, settings(tracing={"enabled": True}), tracer_provider=provider
        )
    finally:
        instrumentor.uninstrument()
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    caller_trace_id, caller_span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    try:
        response = await client.post(
            "/api/v1/cam/tasks/sync-assets",
            json=SYNC,
            headers={"traceparent": f"00-{caller_trace_id}-{caller_span_id}-01"},
        )
        assert response.status == 202
        task_id = (await response.json())["data"]["task_id"]
        assert (await finished(runtime, task_id)).status is TaskStatus.COMPLETED
        (execute,) = await spans_named(exporter, "cam_tasks.execute")
    finally:
        await client.close()
    spans = exporter.get_finished_spans()
    (submit,) = named(spans, "cam_tasks.submit")
    server = [s for s in spans if s.kind is SpanKind.SERVER]
    # The instrumentation patches every web.Application, the API sub-application included: the
    # host app and the sub-application each make a server span, both children of the caller.
    assert server
    for span in server:
        assert span.parent is not None
        assert f"{span.parent.span_id:016x}" == caller_span_id
    assert submit.parent is not None
    assert submit.parent.span_id in {s.context.span_id for s in server}
    assert {f"{s.context.trace_id:032x}" for s in (*server, submit, execute)} == {caller_trace_id}
