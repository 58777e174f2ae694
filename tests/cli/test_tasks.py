"""The ``cam-tasks`` task commands, run for real: each test starts the CLI as a subprocess
against a real server (see :mod:`tests.cli.support`), and reads its output and exit status."""

from __future__ import annotations

from pathlib import Path

import pytest

from cam_tasks.cli.exits import (
    EXIT_API_ERROR,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)
from cam_tasks.domain import TaskStatus
from tests.cli.support import TOKEN, Service
from tests.support.network import free_port
from tests.support.waiting import eventually

# -- submit --------------------------------------------------------------------------------------


async def test_submit_prints_the_id_of_the_stored_task(service: Service) -> None:
    result = await service.run("submit", "steps", '{"steps": 3}', "--priority", "high")

    assert result.code == 0, result.err
    task_id = result.out.strip()
    task = await service.runtime.service.get(task_id)
    assert task.params == {"steps": 3, "hold": False, "fail": False}
    assert task.priority == 2


async def test_submit_reads_params_from_a_file_or_stdin_and_answers_json(
    service: Service, tmp_path: Path
) -> None:
    params = tmp_path / "params.json"
    params.write_text('{"steps": 4}')

    from_file = await service.run("submit", "steps", f"@{params}", "--json")
    from_stdin = await service.run("submit", "steps", "-", "--json", stdin='{"steps": 5}')

    for result, steps in ((from_file, 4), (from_stdin, 5)):
        assert result.code == 0, result.err
        task = await service.runtime.service.get(result.json()["task_id"])
        assert task.params["steps"] == steps


async def test_submit_sync_assets_takes_its_params_as_options(service: Service) -> None:
    result = await service.run(
        "submit",
        "sync-assets",
        "--provider",
        "aliyun",
        "--account-id",
        "123",
        "--asset-types",
        "ecs, rds",
        "--watch",
    )

    assert result.code == 0, result.out + result.err
    task_id = result.out.splitlines()[0]
    task = await service.runtime.service.get(task_id)
    assert task.type == "sync_assets"
    assert task.params["asset_types"] == ["ecs", "rds"]
    assert task.status is TaskStatus.COMPLETED
    assert result.out.splitlines()[-1].startswith("completed in ")


async def test_invalid_params_print_the_api_details_and_exit_1(service: Service) -> None:
    result = await service.run("submit", "steps", '{"steps": 0, "colour": "red"}')

    assert result.code == EXIT_API_ERROR
    assert result.out == ""
    assert "validation failed (HTTP 422, validation_error)" in result.err
    assert "steps: Input should be greater than or equal to 1" in result.err
    assert "colour: Extra inputs are not permitted" in result.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["submit", "steps", "{not json"], "params are not valid JSON"),
        (["submit", "steps", "[1, 2]"], "params must be a JSON object"),
        (["submit", "steps", "--provider", "aliyun"], "--provider: only with sync-assets"),
        (["submit", "steps", "@/nonexistent/params.json"], "cannot read /nonexistent"),
    ],
)
async def test_bad_arguments_exit_2_before_calling_the_service(
    service: Service, args: list[str], message: str
) -> None:
    result = await service.run(*args)

    assert result.code == EXIT_USAGE
    assert message in result.err
    assert sum((await service.runtime.service.counts()).values()) == 0


# -- list, status, cancel, retry, delete ----------------------------------------------------------


async def test_list_shows_a_table_for_people_and_json_for_scripts(service: Service) -> None:
    ids = [await service.submit(fail=True) for _ in range(3)]
    for task_id in ids:
        await eventually(lambda t=task_id: service.status(t), lambda s: s is TaskStatus.FAILED)

    table = await service.run("list", "--type", "steps", "--limit", "2")
    scripted = await service.run("list", "--status", "failed,completed", "--json")

    assert table.code == 0, table.err
    header, first, second, footer = table.out.splitlines()
    assert header.split() == ["ID", "TYPE", "STATUS", "PROGRESS", "CREATED", "DURATION", "MESSAGE"]
    assert first.split()[:3] == [ids[2], "steps", "failed"]  # newest first
    assert second.split()[0] == ids[1]
    assert footer == "2 of 3 task(s)"
    assert scripted.code == 0, scripted.err
    page = scripted.json()
    assert page["total"] == 3
    assert [task["id"] for task in page["tasks"]] == ids[::-1]


async def test_status_shows_one_task(service: Service) -> None:
    task_id = await service.submit(fail=True)
    await eventually(lambda: service.status(task_id), lambda s: s is TaskStatus.FAILED)

    shown = await service.run("status", task_id)
    scripted = await service.run("status", task_id, "--json")

    assert shown.code == 0, shown.err
    fields = dict(line.split(":", 1) for line in shown.out.splitlines())
    assert fields["id"].strip() == task_id
    assert fields["status"].strip() == "failed"
    assert fields["error"].strip() == "PermanentError: bad account"
    assert fields["progress"].strip() == "50.0%  step 1/2  halfway there"
    assert scripted.json()["error"] == {"type": "PermanentError", "message": "bad account"}


async def test_cancel_retry_and_delete_change_the_task(service: Service) -> None:
    task_id = await service.submit(hold=True)
    await eventually(lambda: service.status(task_id), lambda s: s is TaskStatus.RUNNING)

    busy = await service.run("delete", task_id)
    assert busy.code == EXIT_API_ERROR
    assert "task is running: cannot delete (HTTP 409, conflict)" in busy.err

    cancelled = await service.run("cancel", task_id, "--json")
    assert cancelled.code == 0, cancelled.err
    assert cancelled.json()["cancel_requested"] is True
    await eventually(lambda: service.status(task_id), lambda s: s is TaskStatus.CANCELLED)

    retried = await service.run("retry", task_id)
    assert retried.code == 0, retried.err
    assert "status:" in retried.out
    assert await service.status(task_id) in (TaskStatus.PENDING, TaskStatus.RUNNING)
    await service.runtime.service.cancel(task_id)
    await eventually(lambda: service.status(task_id), lambda s: s is TaskStatus.CANCELLED)

    deleted = await service.run("delete", task_id)
    assert deleted.code == 0, deleted.err
    assert deleted.out.strip() == f"deleted {task_id}"
    gone = await service.run("status", task_id)
    assert gone.code == EXIT_API_ERROR
    assert "task not found (HTTP 404, not_found)" in gone.err


# -- reaching the service --------------------------------------------------------------------


async def test_the_token_comes_from_the_option_or_the_environment(service: Service) -> None:
    anonymous = service.env()
    del anonymous["CAM_TASKS_TOKEN"]

    refused = await service.run("list", env=anonymous)
    by_option = await service.run("list", "--token", TOKEN, env=anonymous)
    wrong = await service.run("list", "--token", "x" * 24)

    assert refused.code == EXIT_API_ERROR
    assert "HTTP 401" in refused.err
    assert by_option.code == 0, by_option.err
    assert wrong.code == EXIT_API_ERROR


async def test_an_unreachable_service_exits_3(service: Service) -> None:
    nothing_listens = free_port()
    result = await service.run("status", "abc", "--url", f"http://127.0.0.1:{nothing_listens}")

    assert result.code == EXIT_UNREACHABLE
    assert result.err == (
        f"cam-tasks: cannot reach http://127.0.0.1:{nothing_listens}: connection refused "
        "(is the service running? see --url)\n"
    )
