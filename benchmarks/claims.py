"""B8: what key limits and several queues cost a claim.

The dispatcher's own claim step (``Dispatcher._claim``: the claim of a queue passing over full
keys, plus a slot of the task's concurrency key when the key is limited) over a store of
pending tasks, in two shapes of the same size:

- *plain*: every task in the default queue, no keys, no limits;
- *keyed*: the tasks spread over 3 queues and 10 concurrency keys, every key limited (to more
  than is ever held, so the limit never blocks: what is measured is its bookkeeping).

Claims come in batches, as the dispatcher makes them: each step claims up to :data:`SLOTS`
tasks (a lane's free slots) and the figures are per task claimed. ``memory://``: microseconds
per claim, and their ratio. Over the wire: commands per claim (the
wire server here, SecantusDB, uses no index for sort order, so its timings say nothing about
MongoDB; the command count is what a real server pays in round trips).
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from pymongo import AsyncMongoClient

from benchmarks.common import NoopExecutor, Row, run, skipped
from benchmarks.wire import CommandCounter
from cam_tasks.domain import KeyLimits, SystemClock, new_task
from cam_tasks.executor import ExecutorRegistry
from cam_tasks.queue import Dispatcher
from cam_tasks.repository import (
    KeySlotRepository,
    MemoryKeySlotRepository,
    MemoryTaskRepository,
    MongoKeySlotRepository,
    MongoTaskRepository,
    TaskRepository,
)

QUEUES = ("default", "exports", "reports")
KEYS = 10
#: Free slots of each lane: every claim step claims a batch of up to this many tasks.
SLOTS = 10


def _tasks(n: int, *, keyed: bool) -> list[Any]:
    now = datetime.now(UTC)
    return [
        new_task(
            task_type="noop",
            params={},
            now=now,
            queue=QUEUES[i % len(QUEUES)] if keyed else "default",
            concurrency_key=f"acct:{i % KEYS}" if keyed else None,
        )
        for i in range(n)
    ]


async def _claims(
    repo: TaskRepository, slots: KeySlotRepository, claims: int, *, keyed: bool
) -> float:
    """Seconds for ``claims`` tasks claimed through the dispatcher's claim step, each step
    for the free slots of a lane of :data:`SLOTS` (nothing is held, so every lane stays free:
    each step claims a batch)."""
    lanes = dict.fromkeys(QUEUES, SLOTS) if keyed else {"default": SLOTS}
    dispatcher = Dispatcher(
        repo,
        ExecutorRegistry([NoopExecutor()]),
        clock=SystemClock(),
        queues=lanes,
        key_slots=slots if keyed else None,
        key_limit=KeyLimits({"acct:*": 10 * claims}) if keyed else None,
    )
    dispatcher._types = frozenset({"noop"})  # as start() sets it, without starting workers
    lanes_of = list(dispatcher._lanes.values())
    started = time.perf_counter()
    taken, step = 0, 0
    while taken < claims:
        tasks, _ = await dispatcher._claim(lanes_of[step % len(lanes_of)], set())
        assert tasks
        taken += len(tasks)
        step += 1
    return time.perf_counter() - started


async def _memory(n: int, claims: int) -> dict[str, float]:
    seconds: dict[str, float] = {}
    for keyed in (False, True):
        repo = MemoryTaskRepository()
        await repo.insert_many(_tasks(n, keyed=keyed))
        seconds["keyed" if keyed else "plain"] = await _claims(
            repo, MemoryKeySlotRepository(), claims, keyed=keyed
        )
    return seconds


async def _wire(uri: str, n: int, claims: int) -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = {}
    for keyed in (False, True):
        counter = CommandCounter()
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            uri, event_listeners=[counter], tz_aware=True
        )
        database = client[f"bench_claims_{uuid.uuid4().hex[:8]}"]
        try:
            repo = MongoTaskRepository(database)
            slots = MongoKeySlotRepository(database)
            await repo.initialize()
            await slots.initialize()
            await repo.insert_many(_tasks(n, keyed=keyed))
            counter.counting = True
            await _claims(repo, slots, claims, keyed=keyed)
            counter.counting = False
            counts["keyed" if keyed else "plain"] = counter.kinds
        finally:
            await client.drop_database(database.name)
            await client.close()
    return counts


async def main(args: argparse.Namespace) -> list[Row]:
    n, claims = (2_000, 200) if args.smoke else (100_000, 5_000)
    seconds = await _memory(n, claims)
    rows = [
        Row(
            "B8",
            f"memory://: µs per claim with 3 queues x {KEYS} limited keys, {n:,} pending",
            seconds["keyed"] / claims * 1e6,
            "µs/claim",
            seconds["plain"] / claims * 1e6,
            "one queue, no keys",
            target="<= 1.5x",
            check="ratio<=1.5",
        )
    ]
    if not args.wire_uri:
        rows.append(skipped("B8", "commands per claim over the wire", "no wire server"))
        return rows
    wire_n, wire_claims = (200, 50) if args.smoke else (2_000, 300)
    counts = await _wire(args.wire_uri, wire_n, wire_claims)
    keyed, plain = (sum(counts[k].values()) / wire_claims for k in ("keyed", "plain"))
    rows.append(
        Row(
            "B8",
            f"wire: commands per claim with 3 queues x {KEYS} limited keys, {wire_n:,} pending",
            keyed,
            "cmd/claim",
            plain,
            "one queue, no keys",
            target="<= 1.5x",
            check="ratio<=1.5",
            note=", ".join(f"{k} {v / wire_claims:.2f}" for k, v in counts["keyed"].items()),
        )
    )
    return rows


if __name__ == "__main__":
    run(main, __doc__ or "")
