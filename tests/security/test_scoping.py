"""Scoping: two projects with many tasks each; nobody reads, lists, cancels, retries or deletes a
task of a project it is not in, and who submitted a task is never taken from the body."""

from __future__ import annotations

from typing import Any

import pytest

from cam_tasks.domain import (
    AccessDeniedError,
    Principal,
    TaskError,
    TaskFilter,
    TaskNotFoundError,
    TaskStatus,
)
from tests.security.conftest import SecureApi, Stack
from tests.security.support import ADMIN, ALICE, BOB, VERA, bearer
from tests.web.helpers import PREFIX, assert_error, assert_success

PER_PROJECT = 12


async def submit(api: SecureApi, principal: Principal, **extra: Any) -> str:
    body = {"type": "echo", "params": {"text": principal.name}, **extra}
    response = await api.client.post(f"{PREFIX}/tasks", json=body, headers=bearer(principal))
    return str((await assert_success(response, 202))["task_id"])


async def populate(api: SecureApi) -> dict[str, list[str]]:
    """PER_PROJECT tasks for alice (project-a) and bob (project-b): a third stays pending, a
    third fails, a third completes. Returns the ids by principal name."""
    ids: dict[str, list[str]] = {ALICE.name: [], BOB.name: []}
    for _ in range(PER_PROJECT):
        for principal in (ALICE, BOB):
            ids[principal.name].append(await submit(api, principal))
        api.clock.advance(1)
    position = {task_id: n for own in ids.values() for n, task_id in enumerate(own)}
    claimed = []
    while (
        task := await api.repository.claim(
            types={"echo"}, owner="w", now=api.clock.now(), lease_s=60
        )
    ) is not None:
        claimed.append(task)
    for task in claimed:
        outcome = position[task.id] % 3
        if outcome == 0:
            await api.repository.release(task.lease, now=api.clock.now())
        elif outcome == 1:
            error = TaskError(type="Boom")
            await api.repository.fail(task.lease, now=api.clock.now(), error=error)
        else:
            await api.repository.complete(task.lease, now=api.clock.now(), result=1)
    return ids


async def snapshot(api: SecureApi, ids: list[str]) -> list[Any]:
    return [(await api.service.get(task_id)).model_dump() for task_id in ids]


async def test_each_principal_lists_only_its_projects_tasks(api: SecureApi) -> None:
    ids = await populate(api)
    for principal, own in ((ALICE, ids["alice"]), (BOB, ids["bob"])):
        seen: list[str] = []
        for offset in range(0, PER_PROJECT * 2, 5):
            response = await api.client.get(
                f"{PREFIX}/tasks", params={"offset": offset, "limit": 5}, headers=bearer(principal)
            )
            data = await assert_success(response)
            assert data["total"] == PER_PROJECT
            seen.extend(task["id"] for task in data["tasks"])
        assert sorted(seen) == sorted(own)
        for status in ("pending", "failed", "completed"):
            response = await api.client.get(
                f"{PREFIX}/tasks", params={"status": status}, headers=bearer(principal)
            )
            data = await assert_success(response)
            assert {task["project_id"] for task in data["tasks"]} == set(principal.projects)
            assert data["total"] == PER_PROJECT // 3


async def test_a_list_by_submitter_is_scoped_like_every_list(api: SecureApi) -> None:
    ids = await populate(api)
    response = await api.client.get(
        f"{PREFIX}/tasks", params={"created_by": BOB.name}, headers=bearer(ALICE)
    )
    assert (await assert_success(response))["total"] == 0  # bob's tasks are not alice's to see
    response = await api.client.get(
        f"{PREFIX}/tasks", params={"created_by": ALICE.name, "limit": 50}, headers=bearer(ALICE)
    )
    data = await assert_success(response)
    assert sorted(task["id"] for task in data["tasks"]) == sorted(ids["alice"])
    response = await api.client.get(
        f"{PREFIX}/tasks", params={"created_by": BOB.name}, headers=bearer(ADMIN)
    )
    assert (await assert_success(response))["total"] == PER_PROJECT


async def test_an_admin_lists_every_project(api: SecureApi) -> None:
    await populate(api)
    response = await api.client.get(f"{PREFIX}/tasks", headers=bearer(ADMIN))
    assert (await assert_success(response))["total"] == 2 * PER_PROJECT


@pytest.mark.parametrize("path", ["/tasks/{id}", "/tasks/{id}/events"])
async def test_another_projects_task_reads_as_missing(api: SecureApi, path: str) -> None:
    ids = await populate(api)
    missing = await api.client.get(
        f"{PREFIX}{path.format(id='no-such-task')}", headers=bearer(ALICE)
    )
    missing_data = await assert_error(missing, 404, "not_found")
    for task_id in ids["bob"]:
        response = await api.client.get(f"{PREFIX}{path.format(id=task_id)}", headers=bearer(ALICE))
        data = await assert_error(response, 404, "not_found")
        # Exactly what a task that does not exist answers: nothing tells them apart.
        assert data == {**missing_data, "details": [{"task_id": task_id}]}
        head = await api.client.head(f"{PREFIX}{path.format(id=task_id)}", headers=bearer(ALICE))
        assert head.status == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/tasks/{id}/cancel"), ("POST", "/tasks/{id}/retry"), ("DELETE", "/tasks/{id}")],
)
async def test_another_projects_task_cannot_be_changed(
    api: SecureApi, method: str, path: str
) -> None:
    ids = await populate(api)
    before = await snapshot(api, ids["bob"])
    for task_id in ids["bob"]:
        response = await api.client.request(
            method, f"{PREFIX}{path.format(id=task_id)}", headers=bearer(ALICE)
        )
        await assert_error(response, 404, "not_found")
    assert await snapshot(api, ids["bob"]) == before
    # The same actions on its own tasks work (or are refused for their status, not their owner).
    statuses = set()
    for task_id in ids["alice"]:
        response = await api.client.request(
            method, f"{PREFIX}{path.format(id=task_id)}", headers=bearer(ALICE)
        )
        statuses.add(response.status)
    assert statuses <= {200, 202, 409}
    assert statuses & {200, 202}


async def test_a_viewer_reads_its_project_and_changes_nothing(api: SecureApi) -> None:
    ids = await populate(api)
    listed = await assert_success(await api.client.get(f"{PREFIX}/tasks", headers=bearer(VERA)))
    assert sorted(t["id"] for t in listed["tasks"]) == sorted(ids["alice"][:20])
    task_id = ids["alice"][0]
    assert (await api.client.get(f"{PREFIX}/tasks/{task_id}", headers=bearer(VERA))).status == 200
    before = await snapshot(api, ids["alice"])
    for method, path in [
        ("POST", f"/tasks/{task_id}/cancel"),
        ("POST", f"/tasks/{task_id}/retry"),
        ("DELETE", f"/tasks/{task_id}"),
    ]:
        response = await api.client.request(method, f"{PREFIX}{path}", headers=bearer(VERA))
        await assert_error(response, 403, "forbidden")
    response = await api.client.post(
        f"{PREFIX}/tasks", json={"type": "echo", "params": {"text": "x"}}, headers=bearer(VERA)
    )
    await assert_error(response, 403, "forbidden")
    assert await snapshot(api, ids["alice"]) == before


async def test_created_by_and_project_in_a_body_are_refused(api: SecureApi) -> None:
    # A task records who submitted it, and where, from the principal: a body naming either is
    # refused (the document does not offer them), on every submit route, and nothing is stored.
    forged = {"created_by": "bob", "project_id": "project-b"}
    for path, body in [
        ("/tasks", {"type": "echo", "params": {"text": "x"}, **forged}),
        ("/tasks", [{"type": "echo", "params": {"text": "x"}, **forged}]),
        (
            "/tasks/sync-assets",
            {"provider": "p", "account_id": "1", "asset_types": ["ecs"], **forged},
        ),
    ]:
        response = await api.client.post(f"{PREFIX}{path}", json=body, headers=bearer(ALICE))
        data = await assert_error(response, 422, "validation_error")
        named = {detail["loc"][-1] for detail in data["details"]}
        assert named == {"created_by", "project_id"}
        assert {detail["type"] for detail in data["details"]} == {"principal_field"}
    assert sum((await api.repository.count_by_status(TaskFilter())).values()) == 0
    # Without them, the task is recorded as Alice's, in her project.
    task = await api.service.get(await submit(api, ALICE))
    assert (task.created_by, task.project_id) == ("alice", "project-a")


async def test_one_idempotency_key_is_each_principals_own(api: SecureApi) -> None:
    key = {"Idempotency-Key": "nightly-sync"}
    body = {"type": "echo", "params": {"text": "x"}}
    ids: dict[str, set[str]] = {}
    for principal in (ALICE, BOB, ALICE):
        response = await api.client.post(
            f"{PREFIX}/tasks", json=body, headers={**bearer(principal), **key}
        )
        ids.setdefault(principal.name, set()).add((await assert_success(response, 202))["task_id"])
    assert len(ids["alice"]) == 1
    assert len(ids["bob"]) == 1
    assert ids["alice"] != ids["bob"]


async def test_the_service_scopes_counts_and_refuses_changes_without_a_principals_rights(
    api: SecureApi,
) -> None:
    await populate(api)
    counts = await api.service.counts(principal=ALICE)
    assert sum(counts.values()) == PER_PROJECT
    assert sum((await api.service.counts(principal=ADMIN)).values()) == 2 * PER_PROJECT
    page = await api.service.list(TaskFilter(project_ids=frozenset({"project-b"})), principal=ALICE)
    assert page.total == 0
    with pytest.raises(AccessDeniedError):
        await api.service.submit("echo", {"text": "x"}, principal=VERA)
    with pytest.raises(ValueError, match="from the principal"):
        await api.service.submit("echo", {"text": "x"}, principal=ALICE, created_by="bob")
    bob_task = await api.service.submit("echo", {"text": "x"}, principal=BOB)
    for action in (api.service.get, api.service.cancel, api.service.retry, api.service.delete):
        with pytest.raises(TaskNotFoundError):
            await action(bob_task.id, principal=ALICE)
    assert (await api.service.get(bob_task.id)).status is TaskStatus.PENDING


async def test_lists_are_filtered_in_the_database_query(stack: Stack) -> None:
    for principal in (ALICE, BOB):
        response = await stack.client.post(
            f"{PREFIX}/tasks",
            json={"type": "echo", "params": {"text": "x"}, "delay_s": 3600},
            headers=bearer(principal),
        )
        assert response.status == 202
    stack.database.recording.clear()

    response = await stack.client.get(f"{PREFIX}/tasks", headers=bearer(ALICE))

    data = await assert_success(response)
    assert data["total"] == 1
    sent = [query for name, query in stack.database.recording.filters if name != "find_one"]
    assert sent
    assert all(query.get("project_id") == {"$in": ["project-a"]} for query in sent), sent
