"""Conditional polling: a task's ETag follows its visible state, If-None-Match answers 304, a
list can ask for what changed since a time, and the view estimates the time left."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import pytest

from cam_tasks.domain import Progress
from tests.web.helpers import PREFIX, START, MakeClient, assert_error, assert_success
from tests.web.live import Live, make_live

WEAK_ETAG = re.compile(r'W/"[0-9a-f]{24}"')


@pytest.fixture
async def live(make_client: MakeClient) -> Live:
    return await make_live(make_client)


async def etag(live: Live, task_id: str) -> str:
    response = await live.client.get(live.url(task_id))
    await assert_success(response)
    return response.headers["ETag"]


async def test_a_task_read_carries_a_weak_etag_and_asks_to_revalidate(live: Live) -> None:
    task = await live.submit()
    response = await live.client.get(live.url(task.id))
    await assert_success(response)
    assert WEAK_ETAG.fullmatch(response.headers["ETag"])
    assert response.headers["Cache-Control"] == "no-cache"
    assert await etag(live, task.id) == response.headers["ETag"]  # stable while unchanged


async def test_if_none_match_with_the_current_etag_is_a_304_without_a_body(live: Live) -> None:
    task = await live.submit()
    current = await etag(live, task.id)

    response = await live.client.get(
        live.url(task.id), headers={"If-None-Match": current, "X-Request-ID": "poll-1"}
    )

    assert response.status == 304
    assert await response.read() == b""
    assert response.headers["ETag"] == current
    assert response.headers["X-Request-ID"] == "poll-1"


@pytest.mark.parametrize(
    "header",
    [
        "{tag}",
        "{bare}",  # strong form of the same tag: If-None-Match compares weakly
        'W/"0123", {tag}',
        '"other" ,  {tag} ',
        "*",
    ],
)
async def test_any_matching_tag_in_if_none_match_is_a_304(live: Live, header: str) -> None:
    task = await live.submit()
    current = await etag(live, task.id)
    value = header.format(tag=current, bare=current.removeprefix("W/"))
    response = await live.client.get(live.url(task.id), headers={"If-None-Match": value})
    assert response.status == 304


@pytest.mark.parametrize("header", ['W/"stale"', "garbage", '"unterminated', ""])
async def test_a_stale_or_malformed_if_none_match_gets_the_task(live: Live, header: str) -> None:
    task = await live.submit()
    response = await live.client.get(live.url(task.id), headers={"If-None-Match": header})
    data = await assert_success(response)
    assert data["id"] == task.id


async def test_the_etag_changes_with_status_progress_and_a_cancel_request(live: Live) -> None:
    task = await live.submit()
    seen = [await etag(live, task.id)]

    running = await live.claim()
    seen.append(await etag(live, task.id))
    await live.report(running, 10, "page 1")
    seen.append(await etag(live, task.id))
    await live.report(running, 10, "page 2")  # only the message
    seen.append(await etag(live, task.id))
    await live.service.cancel(task.id)
    seen.append(await etag(live, task.id))

    assert len(set(seen)) == len(seen)


async def test_a_heartbeat_without_progress_keeps_the_etag(live: Live) -> None:
    task = await live.submit()
    running = await live.claim()
    before = await live.client.get(live.url(task.id))
    before_view = await assert_success(before)

    live.clock.advance(5)
    await live.observed.heartbeat(running.lease, now=live.clock.now(), lease_s=60, progress=None)

    after = await live.client.get(
        live.url(task.id), headers={"If-None-Match": before.headers["ETag"]}
    )
    assert after.status == 304
    fresh = await assert_success(await live.client.get(live.url(task.id)))
    assert fresh["updated_at"] != before_view["updated_at"]  # stored, but nothing to redraw


async def test_every_instance_gives_one_state_the_same_etag(
    live: Live, make_client: MakeClient
) -> None:
    other = await make_live(make_client, store=live.store, clock=live.clock)
    task = await live.submit()
    await live.claim()
    assert await etag(live, task.id) == await etag(other, task.id)


async def test_an_unknown_task_is_still_a_404_whatever_if_none_match_says(live: Live) -> None:
    response = await live.client.get(live.url("nope"), headers={"If-None-Match": "*"})
    await assert_error(response, 404, "not_found")


# -- updated_since ------------------------------------------------------------------------------


async def list_ids(live: Live, query: str) -> list[str]:
    data = await assert_success(await live.client.get(f"{PREFIX}/tasks?{query}"))
    assert data["total"] == len(data["tasks"])
    return [task["id"] for task in data["tasks"]]


async def test_updated_since_lists_only_the_tasks_written_since(live: Live) -> None:
    old = await live.submit("old")
    untouched = await live.submit("untouched")
    live.clock.advance(60)
    fresh = await live.submit("fresh")
    live.clock.advance(60)
    running = await live.claim()  # the oldest pending task: "old"
    assert running.id == old.id

    since = (START + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    assert await list_ids(live, f"updated_since={since}") == [fresh.id, old.id]
    assert untouched.id not in await list_ids(live, f"updated_since={since}")
    # Combined with the other filters, and written with an offset (URL-encoded '+').
    offset = quote((START + timedelta(seconds=30, hours=8)).isoformat().replace("+00:00", "+08:00"))
    assert await list_ids(live, f"updated_since={offset}&status=running") == [old.id]


async def test_updated_since_includes_a_write_at_that_very_instant(live: Live) -> None:
    task = await live.submit()
    at = START.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert await list_ids(live, f"updated_since={at}") == [task.id]


@pytest.mark.parametrize("value", ["2026-03-01T12:00:00", "yesterday", "", "2026-13-01T00:00:00Z"])
async def test_an_updated_since_without_a_valid_zoned_time_is_a_400(live: Live, value: str) -> None:
    response = await live.client.get(f"{PREFIX}/tasks?updated_since={value}")
    data = await assert_error(response, 400, "bad_request")
    assert [detail["loc"] for detail in data["details"]] == [["query", "updated_since"]]


# -- steps and the estimate of the time left ------------------------------------------------------


async def view(live: Live, task_id: str) -> dict[str, object]:
    data = await assert_success(await live.client.get(live.url(task_id)))
    assert isinstance(data, dict)
    return data


async def test_the_view_carries_steps_message_and_an_eta_once_progress_says_enough(
    live: Live,
) -> None:
    task = await live.submit()
    assert (await view(live, task.id))["eta_s"] is None  # pending

    running = await live.claim()
    await live.observed.heartbeat(
        running.lease,
        now=live.clock.now(),
        lease_s=60,
        progress=Progress(percent=4, message="region 1/25", step=1, total_steps=25),
    )
    live.clock.advance(10)
    early = await view(live, task.id)
    assert (early["step"], early["total_steps"], early["message"]) == (1, 25, "region 1/25")
    assert early["eta_s"] is None  # 4 % tells too little about the pace

    await live.observed.heartbeat(
        running.lease, now=live.clock.now(), lease_s=60, progress=Progress(percent=25)
    )
    # 25 % took 10 s since the start: 75 % more takes about 30 s.
    assert (await view(live, task.id))["eta_s"] == 30.0
    live.clock.advance(10)
    assert (await view(live, task.id))["eta_s"] == 60.0  # no news for a while: it slowed down

    await live.complete(running)
    assert (await view(live, task.id))["eta_s"] is None
