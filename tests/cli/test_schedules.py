"""``cam-tasks schedules …`` against a live service: every action changes the stored schedule
the way the API says, in text for people and JSON for scripts."""

from __future__ import annotations

from cam_tasks.cli.exits import EXIT_API_ERROR, EXIT_USAGE
from cam_tasks.domain import ScheduleNotFoundError
from tests.cli.support import Service


async def test_a_schedule_from_create_to_delete(service: Service) -> None:
    schedules = service.runtime.schedules

    created = await service.run(
        "schedules", "create", "nightly", "30 2 * * *", "steps", '{"steps": 3}',
        "--timezone", "Asia/Shanghai", "--priority", "low", "--json",
    )  # fmt: skip
    assert created.code == 0, created.err
    assert created.json()["next_run_at"] is not None
    stored = await schedules.get("nightly")
    assert (stored.expression, stored.timezone, stored.type) == (
        "30 2 * * *",
        "Asia/Shanghai",
        "steps",
    )
    assert (stored.params["steps"], stored.priority) == (3, 0)

    listed = await service.run("schedules", "list")
    assert listed.code == 0, listed.err
    header, row, footer = listed.out.splitlines()
    assert header.split()[:4] == ["NAME", "EXPRESSION", "TIMEZONE", "TYPE"]
    assert row.split()[0] == "nightly"
    assert footer == "1 of 1 schedule(s)"

    updated = await service.run("schedules", "update", "nightly", "--expression", "0 3 * * *")
    assert updated.code == 0, updated.err
    fields = dict(line.split(":", 1) for line in updated.out.splitlines())
    assert fields["expression"].strip() == "0 3 * * *"
    assert (await schedules.get("nightly")).params["steps"] == 3  # untouched
    # New params alone: the client sends the stored type with them (the API wants both).
    reparams = await service.run("schedules", "update", "nightly", "--params", '{"steps": 5}')
    assert reparams.code == 0, reparams.err
    assert (await schedules.get("nightly")).params["steps"] == 5

    paused = await service.run("schedules", "pause", "nightly", "--json")
    assert paused.json()["active"] is False
    assert (await schedules.get("nightly")).next_run_at is None
    only_paused = await service.run("schedules", "list", "--paused", "--json")
    only_active = await service.run("schedules", "list", "--active", "--json")
    assert [s["name"] for s in only_paused.json()["schedules"]] == ["nightly"]
    assert only_active.json() == {"schedules": [], "total": 0}
    resumed = await service.run("schedules", "resume", "nightly")
    assert resumed.code == 0, resumed.err
    assert (await schedules.get("nightly")).active is True

    fired = await service.run("schedules", "run", "nightly")
    assert fired.code == 0, fired.err
    task = await service.runtime.service.get(fired.out.strip())
    assert (task.type, task.params["steps"]) == ("steps", 5)

    shown = await service.run("schedules", "show", "nightly", "--json")
    assert shown.json()["last_task_id"] == task.id

    deleted = await service.run("schedules", "delete", "nightly")
    assert deleted.code == 0, deleted.err
    assert deleted.out.strip() == "deleted nightly"
    try:
        await schedules.get("nightly")
    except ScheduleNotFoundError:
        pass
    else:
        raise AssertionError("the schedule is still stored")


async def test_schedule_mistakes_are_explained(service: Service) -> None:
    await service.runtime.schedules.create("hourly", expression="@hourly", task_type="steps")

    taken = await service.run("schedules", "create", "hourly", "@daily", "steps")
    bad_cron = await service.run("schedules", "create", "other", "61 * * * *", "steps")
    missing = await service.run("schedules", "show", "nope")
    nothing = await service.run("schedules", "update", "hourly")

    assert taken.code == EXIT_API_ERROR
    assert "(HTTP 409, conflict)" in taken.err
    assert bad_cron.code == EXIT_API_ERROR
    assert "(HTTP 422," in bad_cron.err
    assert "expression" in bad_cron.err
    assert missing.code == EXIT_API_ERROR
    assert "(HTTP 404, not_found)" in missing.err
    assert nothing.code == EXIT_USAGE
    assert "nothing to change" in nothing.err
    assert (await service.runtime.schedules.get("hourly")).expression == "@hourly"
