"""A served API wired as the composition root wires it for live reads: the store wrapped in an
ObservedTaskRepository whose writes wake a TaskWatcher, plus helpers that play the worker and
read server-sent events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import ClientResponse

from cam_tasks.domain import ManualClock, Progress, Task
from cam_tasks.repository.memory import MemoryTaskRepository
from cam_tasks.repository.observed import ObservedTaskRepository
from cam_tasks.service import TaskService, TaskWatcher
from cam_tasks.web.auth import allow_anonymous
from tests.web.helpers import PREFIX, START, Client, MakeClient, make_registry

#: Long enough that only a local write can wake a waiter within a test.
NEVER_S = 3600.0


@dataclass
class Live:
    """One instance: ``observed`` is what its own writes go through; writes made on ``store``
    directly stand for another instance's (nobody here is told of them)."""

    client: Client
    service: TaskService
    store: MemoryTaskRepository
    observed: ObservedTaskRepository
    watcher: TaskWatcher
    clock: ManualClock
    owner: str = field(default="w1")

    def url(self, task_id: str, suffix: str = "") -> str:
        return f"{PREFIX}/tasks/{task_id}{suffix}"

    async def submit(self, text: str = "hi") -> Task:
        return await self.service.submit("echo", {"text": text})

    async def claim(self, *, local: bool = True) -> Task:
        repository = self.observed if local else self.store
        task = await repository.claim(
            types={"echo"}, owner=self.owner, now=self.clock.now(), lease_s=60
        )
        assert task is not None
        return task

    async def report(
        self,
        task: Task,
        percent: float,
        message: str = "",
        *,
        local: bool = True,
        step: int | None = None,
        total_steps: int | None = None,
        step_name: str | None = None,
    ) -> None:
        repository = self.observed if local else self.store
        self.clock.advance(1)
        progress = Progress(
            percent=percent,
            message=message,
            step=step,
            total_steps=total_steps,
            step_name=step_name,
        )
        await repository.heartbeat(task.lease, now=self.clock.now(), lease_s=60, progress=progress)

    async def complete(self, task: Task, result: Any = "done", *, local: bool = True) -> Task:
        repository = self.observed if local else self.store
        self.clock.advance(1)
        return await repository.complete(task.lease, now=self.clock.now(), result=result)


MakeLive = Callable[..., Awaitable[Live]]


async def make_live(
    make_client: MakeClient,
    *,
    store: MemoryTaskRepository | None = None,
    clock: ManualClock | None = None,
    poll_interval_s: float = NEVER_S,
    sse_keepalive_s: float = 15.0,
) -> Live:
    clock = clock or ManualClock(START)
    store = store or MemoryTaskRepository(clock=clock)
    observed = ObservedTaskRepository(store)
    watcher = TaskWatcher(observed, poll_interval_s=poll_interval_s)
    observed.add_listener(watcher.on_change)
    service = TaskService(observed, make_registry(), clock=clock)
    client = await make_client(
        service,
        watcher=watcher,
        sse_keepalive_s=sse_keepalive_s,
        authenticate=allow_anonymous(),
    )
    return Live(client, service, store, observed, watcher, clock)


# -- server-sent events ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    name: str
    id: str | None
    data: dict[str, Any]


async def sse_items(response: ClientResponse) -> AsyncIterator[Event | str]:
    """The events of a stream as they arrive, and its comment lines (as their text)."""
    fields: dict[str, str] = {}
    data: list[str] = []
    while True:
        raw = await response.content.readline()
        if not raw:
            return
        line = raw.decode().rstrip("\r\n")
        if line == "":
            if data or fields:
                payload = orjson.loads("\n".join(data))
                yield Event(fields.get("event", "message"), fields.get("id"), payload)
            fields, data = {}, []
        elif line.startswith(":"):
            yield line[1:].strip()
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name in {"event", "id", "retry"}:
                fields[name] = value


async def next_event(items: AsyncIterator[Event | str]) -> Event:
    """The next event of a stream, skipping keep-alive comments."""
    async for item in items:
        if isinstance(item, Event):
            return item
    raise AssertionError("the stream ended")


async def rest_of(items: AsyncIterator[Event | str]) -> list[Event]:
    """Every remaining event, until the stream ends."""
    return [item async for item in items if isinstance(item, Event)]
