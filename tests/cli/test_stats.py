"""``cam-tasks stats`` against a live service: the task statistics and the queue, as text and
as JSON."""

from __future__ import annotations

from cam_tasks.cli.exits import EXIT_API_ERROR
from cam_tasks.domain import TaskStatus
from tests.cli.support import Service
from tests.support.waiting import eventually


async def test_stats_show_the_tasks_and_the_queue(service: Service) -> None:
    ids = [await service.submit(), await service.submit(), await service.submit(fail=True)]
    for task_id in ids:
        await eventually(lambda t=task_id: service.status(t), lambda s: s.is_terminal)
    held = await service.submit(hold=True)
    await eventually(lambda: service.status(held), lambda s: s is TaskStatus.RUNNING)

    shown = await service.run("stats")
    scripted = await service.run("stats", "--type", "steps", "--json")

    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert lines[0].endswith(": 4, success rate 66.7%")
    assert lines[1].split() == [
        "pending", "0", "running", "1", "completed", "2", "failed", "1", "cancelled", "0",
    ]  # fmt: skip
    (steps,) = [line for line in lines if line.startswith("steps ")]
    assert steps.split()[:7] == ["steps", "4", "0", "1", "2", "1", "0"]
    assert "workers 1/" in shown.out
    assert "in the store: pending 0, running 1" in shown.out
    assert scripted.code == 0, scripted.err
    data = scripted.json()
    assert data["tasks"]["counts"]["completed"] == 2
    assert [entry["type"] for entry in data["tasks"]["types"]] == ["steps"]
    assert data["queue"]["tasks"] == {"pending": 0, "running": 1}
    assert data["queue"]["owner"] == service.runtime.dispatcher.owner


async def test_a_malformed_window_is_explained(service: Service) -> None:
    result = await service.run("stats", "--since", "yesterday")

    assert result.code == EXIT_API_ERROR
    assert "malformed query (HTTP 400, bad_request)" in result.err
    assert "since" in result.err
