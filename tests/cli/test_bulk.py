"""``cam-tasks retry|cancel`` by filter, ``purge`` and ``queues``, run for real: the console
command as a subprocess against a live server (see :mod:`tests.cli.support`)."""

from __future__ import annotations

from cam_tasks.cli.exits import EXIT_API_ERROR, EXIT_USAGE
from cam_tasks.domain import TaskFilter, TaskStatus
from tests.cli.support import Service
from tests.support.waiting import eventually


async def _ended(service: Service, task_id: str, status: TaskStatus) -> None:
    await eventually(lambda: service.status(task_id), lambda s: s is status)


async def test_retry_by_filter_requeues_every_failed_match(service: Service) -> None:
    failed = [await service.submit(fail=True) for _ in range(3)]
    done = await service.submit()
    for task_id in failed:
        await _ended(service, task_id, TaskStatus.FAILED)
    await _ended(service, done, TaskStatus.COMPLETED)

    result = await service.run("retry", "--status", "failed", "--type", "steps", "--json")

    assert result.code == 0, result.err
    assert result.json() == {"count": 3}
    for task_id in failed:  # each ran again (and failed again): a second attempt recorded
        await eventually(
            lambda t=task_id: service.runtime.service.get(t), lambda task: len(task.history) == 2
        )
    assert await service.status(done) is TaskStatus.COMPLETED


async def test_cancel_by_filter_and_purge_by_date(service: Service) -> None:
    waiting = [(await service.runtime.service.submit("steps", {}, delay_s=3600)).id for _ in "ab"]
    finished = [await service.submit() for _ in range(2)]
    for task_id in finished:
        await _ended(service, task_id, TaskStatus.COMPLETED)

    cancelled = await service.run("cancel", "--status", "pending")
    assert cancelled.code == 0, cancelled.err
    assert cancelled.out.strip() == "cancelled 2 task(s)"
    assert [await service.status(t) for t in waiting] == [TaskStatus.CANCELLED] * 2

    purged = await service.run(
        "purge", "--status", "completed", "--finished-before", "2100-01-01", "--json"
    )
    assert purged.code == 0, purged.err
    assert purged.json() == {"count": 2}
    page = await service.runtime.service.list(TaskFilter())
    assert sorted(task.id for task in page.tasks) == sorted(waiting)


async def test_bulk_commands_need_a_task_id_or_a_filter_not_both(service: Service) -> None:
    neither = await service.run("retry")
    both = await service.run("cancel", "some-id", "--status", "pending")
    empty_purge = await service.run("purge")

    assert (neither.code, both.code, empty_purge.code) == (EXIT_USAGE,) * 3
    assert "at least one filter" in neither.err
    assert "not both" in both.err


async def test_queues_list_pause_and_resume(service: Service) -> None:
    paused = await service.run("queues", "pause", "default")
    assert paused.code == 0, paused.err
    assert paused.out.strip() == "paused default"
    assert await service.runtime.queue_service.paused() == {"default"}

    listed = await service.run("queues", "list", "--json")
    assert listed.code == 0, listed.err
    (queue,) = listed.json()["queues"]
    assert (queue["name"], queue["paused"]) == ("default", True)
    assert set(queue) >= {"concurrency", "pending", "running"}

    table = await service.run("queues", "list")
    assert table.out.split("\n")[0].split() == [
        "NAME",
        "CONCURRENCY",
        "PAUSED",
        "PENDING",
        "RUNNING",
    ]
    assert table.out.split("\n")[1].split()[:3] == ["default", str(queue["concurrency"]), "yes"]

    resumed = await service.run("queues", "resume", "default", "--json")
    assert resumed.json()["paused"] is False
    unknown = await service.run("queues", "pause", "nope")
    assert unknown.code == EXIT_API_ERROR
    assert "queue not found" in unknown.err
