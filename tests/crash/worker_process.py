"""A real cam_tasks worker process for the crash tests.

    python -m tests.crash.worker_process --uri URI --db NAME --workers N [options]

It builds :class:`cam_tasks.CamTasks` over ``URI``/``NAME`` (the composition root, as a service
would) with short lease, heartbeat and sweep intervals, and registers the ``probe`` executor,
which records every execution it starts in the ``executions`` collection of the same database
(task id, attempt, owner, pid, when it started, finished or was interrupted) and then awaits
the task's ``duration_s``. It prints ``ready <owner>`` on stdout once it is claiming, logs to
stderr, and on SIGTERM (or SIGINT) stops gracefully through ``close()`` and exits 0.

The executions collection is written by the executor with its own client, so what it records
is what really ran, whatever the task store says.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pymongo import AsyncMongoClient

import cam_tasks
from cam_tasks.config import load_settings
from cam_tasks.executor import TaskContext

PROBE = "probe"
EXECUTIONS = "executions"
#: How long an interrupted execution keeps trying to note its interruption (the database may
#: be unreachable at that moment, which is the point of some tests).
NOTE_PATIENCE_S = 30.0

logger = logging.getLogger("tests.crash.worker")


class ProbeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duration_s: float = Field(0.0, ge=0)
    #: When set, the task's first execution (by any process) lasts this long instead; later
    #: ones (after a rescue, a release, a retry) last ``duration_s``.
    first_run_s: float | None = Field(None, ge=0)


class ProbeExecutor:
    """Records each execution in ``executions``, reports progress naming its owner, waits."""

    type = PROBE
    params_model = ProbeParams

    def __init__(self, database: Any, owner: str) -> None:
        self._executions = database[EXECUTIONS]
        self.owner = owner
        self._notes: set[asyncio.Task[None]] = set()

    async def execute(self, params: ProbeParams, ctx: TaskContext) -> Any:
        duration_s = params.duration_s
        if params.first_run_s is not None and not await self._executions.count_documents(
            {"task_id": ctx.task_id}, limit=1
        ):
            duration_s = params.first_run_s
        who = {"owner": self.owner, "attempt": ctx.attempt, "pid": os.getpid()}
        inserted = await self._executions.insert_one(
            {"task_id": ctx.task_id, **who, "started_at": _now()}
        )
        ctx.report(10, f"running on {self.owner}")
        ctx.partial_result = {**who, "partial": True}
        try:
            await asyncio.sleep(duration_s)
        except asyncio.CancelledError:
            # Noted in the background: the database may not answer now, and an executor must
            # let cancellation through at once.
            self._note(inserted.inserted_id, {"interrupted_at": _now()})
            raise
        await self._executions.update_one(
            {"_id": inserted.inserted_id}, {"$set": {"finished_at": _now()}}
        )
        ctx.report(100, f"done on {self.owner}")
        return who

    def _note(self, execution_id: Any, fields: dict[str, Any]) -> None:
        note = asyncio.create_task(self._write_note(execution_id, fields))
        self._notes.add(note)
        note.add_done_callback(self._notes.discard)

    async def _write_note(self, execution_id: Any, fields: dict[str, Any]) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(NOTE_PATIENCE_S):
                while True:
                    try:
                        await self._executions.update_one({"_id": execution_id}, {"$set": fields})
                        return
                    except Exception:  # unreachable for now: try again
                        await asyncio.sleep(0.2)

    async def flush(self) -> None:
        """Wait for interruption notes still being written."""
        if self._notes:
            await asyncio.wait(set(self._notes))


def _now() -> datetime:
    return datetime.now(UTC)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="worker_process", description=__doc__)
    parser.add_argument("--uri", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--buffer", type=int, default=0)
    parser.add_argument("--lease-s", type=float, default=3.0)
    parser.add_argument("--heartbeat-s", type=float, default=0.5)
    parser.add_argument("--progress-s", type=float, default=0.25)
    parser.add_argument("--rescue-s", type=float, default=0.5)
    parser.add_argument("--poll-s", type=float, default=0.2)
    parser.add_argument("--grace-s", type=float, default=10.0)
    parser.add_argument("--selection-timeout-s", type=float, default=2.0)
    parser.add_argument("--limits", default="", help="concurrency limits: PATTERN=N[,PATTERN=N…]")
    return parser.parse_args(argv)


async def _run(args: argparse.Namespace) -> None:
    settings = load_settings(
        mongo={
            "uri": args.uri,
            "database": args.db,
            "server_selection_timeout_s": args.selection_timeout_s,
        },
        queue={
            "worker_count": args.workers,
            "buffer_size": args.buffer,
            "lease_s": args.lease_s,
            "heartbeat_interval_s": args.heartbeat_s,
            "progress_interval_s": args.progress_s,
            "rescue_interval_s": args.rescue_s,
            "poll_interval_s": args.poll_s,
            "shutdown_timeout_s": args.grace_s,
        },
        retry={"backoff_base_s": 0.1, "backoff_max_s": 0.5},
        tasks={"retention_s": None},
        concurrency_limits={
            pattern: int(limit)
            for pattern, _, limit in (item.rpartition("=") for item in args.limits.split(","))
            if pattern
        },
    )
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        args.uri, tz_aware=True, serverSelectionTimeoutMS=int(args.selection_timeout_s * 1000)
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, _dump_tasks)
    try:
        runtime = cam_tasks.CamTasks(settings)
        probe = ProbeExecutor(client[args.db], runtime.dispatcher.owner)
        runtime.registry.register(probe)
        async with runtime:
            print(f"ready {runtime.dispatcher.owner}", flush=True)
            await stop.wait()
            logger.info("signal received: stopping gracefully")
        await probe.flush()
    finally:
        await client.close()


def _dump_tasks() -> None:
    """On SIGUSR1: every asyncio task and where it waits, to the log (to debug a stall)."""
    for task in asyncio.all_tasks():
        print(f"--- {task.get_name()}", file=sys.stderr)
        task.print_stack(limit=8, file=sys.stderr)
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s {os.getpid()} %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(_run(_arguments(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
