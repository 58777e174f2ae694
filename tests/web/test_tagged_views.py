"""TaggedViews: a task's rendering and ETag, built once per visible state, always what rendering
the task now would give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cam_tasks.domain import ManualClock, Progress, Task, new_task
from cam_tasks.repository import MemoryTaskRepository
from cam_tasks.web.conditional import etag_of
from cam_tasks.web.envelope import success_body
from cam_tasks.web.schemas import TaskProgressView, TaskResultView, TaskView
from cam_tasks.web.tagged_views import MAX_KEPT_VIEW_BYTES, Rendering, TaggedViews
from tests.web.test_task_view import tasks_in_every_state

T0 = datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
PROGRESS: Rendering = tuple(TaskProgressView.model_fields)
RESULT: Rendering = tuple(TaskResultView.model_fields)
RENDERINGS: tuple[Rendering, ...] = (None, PROGRESS, RESULT)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rendered(task: Task, rendering: Rendering, now: datetime) -> dict[str, object]:
    """What rendering ``task`` afresh gives: the view, cut to ``rendering``."""
    view = TaskView.dump(task, now=now)
    return view if rendering is None else {name: view[name] for name in rendering}


def assert_current(views: TaggedViews, task: Task, now: datetime) -> None:
    for rendering in RENDERINGS:
        expected = rendered(task, rendering, now)
        assert views.view(task, rendering) == expected
        assert views.etag(task, rendering) == etag_of(expected)
        assert views.body(task, rendering) == success_body(expected)


class Running:
    """A task running in a memory store, read back after each write (a new object each time)."""

    def __init__(self) -> None:
        self.repository = MemoryTaskRepository()

    async def start(self) -> Task:
        await self.repository.insert(new_task(task_type="sync", params={"r": "cn"}, now=T0))
        task = await self.repository.claim(types=["sync"], owner="w", now=at(1), lease_s=60)
        assert task is not None
        self.task = task
        return task

    async def heartbeat(self, seconds: float, progress: Progress | None = None) -> Task:
        await self.repository.heartbeat(
            self.task.lease, now=at(seconds), lease_s=60, progress=progress
        )
        return await self.repository.get(self.task.id)


async def test_views_and_tags_are_the_fresh_renderings_in_every_state() -> None:
    clock = ManualClock(at(20))
    views = TaggedViews(clock.now)
    for task in await tasks_in_every_state():
        assert_current(views, task, clock.now())
        clock.advance(3)
        assert_current(views, task.model_copy(), clock.now())  # an equal task, read again


async def test_an_unchanged_running_task_keeps_its_tag_while_its_clock_fields_move() -> None:
    store = Running()
    await store.start()
    clock = ManualClock(at(5))
    views = TaggedViews(clock.now)
    first = await store.heartbeat(5, Progress(percent=40))
    tag = views.etag(first)

    clock.advance(10)
    again = await store.repository.get(first.id)
    view = views.view(again)

    assert views.etag(again) == tag
    assert view["duration"] == pytest.approx(14.0)  # started at 1 s, now 15 s
    assert view == TaskView.dump(again, now=clock.now())
    assert len(views) == 1


async def test_a_lease_renewal_alone_keeps_the_tag_and_shows_the_new_updated_at() -> None:
    store = Running()
    task = await store.start()
    clock = ManualClock(at(1))
    views = TaggedViews(clock.now)
    tag = views.etag(task)

    renewed = await store.heartbeat(30)
    clock.set(at(30))

    assert renewed.updated_at != task.updated_at
    assert renewed.lease_until != task.lease_until
    assert views.etag(renewed) == tag
    assert views.view(renewed)["updated_at"] == "2026-03-01T12:00:30.123Z"
    assert_current(views, renewed, clock.now())


async def test_every_visible_change_gives_a_new_tag() -> None:
    store = Running()
    task = await store.start()
    clock = ManualClock(at(1))
    views = TaggedViews(clock.now)
    tags = [views.etag(task)]

    for seconds, progress in ((2, Progress(percent=10)), (3, Progress(percent=10, message="m"))):
        task = await store.heartbeat(seconds, progress)
        clock.set(at(seconds))
        tags.append(views.etag(task))
        assert_current(views, task, clock.now())
    task = await store.repository.request_cancel(task.id, now=at(4))
    tags.append(views.etag(task))
    task = await store.repository.complete(task.lease, now=at(5), result={"n": 1})
    tags.append(views.etag(task))
    clock.set(at(5))
    assert_current(views, task, clock.now())

    assert len(set(tags)) == len(tags)


async def test_a_kept_answer_is_sent_only_while_nothing_it_shows_moved() -> None:
    store = Running()
    task = await store.start()
    clock = ManualClock(at(2))
    views = TaggedViews(clock.now)
    running = views.body(task)
    clock.advance(1)
    assert views.body(task) != running  # a running task's duration follows the clock
    assert_current(views, task, clock.now())

    done = await store.repository.complete(task.lease, now=at(3), result={"n": 1})
    finished = views.body(done)
    clock.advance(60)
    assert views.body(await store.repository.get(done.id)) == finished
    touched = done.model_copy(update={"updated_at": at(70)})  # same state, written again
    assert views.etag(touched) == views.etag(done)
    assert views.body(touched) == success_body(TaskView.dump(touched, now=clock.now()))
    assert views.body(touched) != finished


async def test_each_rendering_changes_only_with_its_own_fields() -> None:
    store = Running()
    task = await store.start()
    clock = ManualClock(at(1))
    views = TaggedViews(clock.now)
    before = {rendering: views.etag(task, rendering) for rendering in RENDERINGS}

    task = await store.heartbeat(2, Progress(percent=50))

    assert views.etag(task, None) != before[None]
    assert views.etag(task, PROGRESS) != before[PROGRESS]
    assert views.etag(task, RESULT) == before[RESULT]  # no outcome yet: nothing it shows moved


async def test_the_least_recently_read_leave_first_and_come_back_right() -> None:
    clock = ManualClock(at(20))
    views = TaggedViews(clock.now, max_entries=2)
    tasks = list({task.id: task for task in await tasks_in_every_state()}.values())[:3]
    assert len(tasks) == 3
    for task in tasks:
        views.etag(task)
    assert len(views) == 2

    for task in tasks:  # the first was dropped: it is rendered again, the same
        assert_current(views, task, clock.now())
    assert len(views) == 2


async def test_a_large_rendering_is_not_kept_but_answers_the_same() -> None:
    store = Running()
    task = await store.start()
    clock = ManualClock(at(2))
    views = TaggedViews(clock.now)
    views.etag(task)
    assert len(views) == 1

    big = {"rows": ["x" * 100] * (MAX_KEPT_VIEW_BYTES // 100)}
    done = await store.repository.complete(task.lease, now=at(3), result=big)

    assert_current(views, done, clock.now())
    assert len(views) == 1  # only the progress rendering, which shows no result, is kept
    assert views.etag(done, None) == etag_of(TaskView.dump(done, now=clock.now()))


def test_it_keeps_at_least_one_entry() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        TaggedViews(ManualClock().now, max_entries=0)
