"""A task's renderings and their ETags, kept per visible state of the task.

A conditional read (``GET /tasks/{id}``, ``/progress``, ``/result``, and their long polls)
needs the ETag of the task as it renders before it can answer 304, and building the view and
digesting it costs more than the rest of the request. :class:`TaggedViews` keeps, for each
recently read task and rendering, the view, its ETag and the task fields they were built from
(:data:`~cam_tasks.web.schemas.VIEW_SOURCE_FIELDS`: every field a view shows but
``updated_at``). A read whose task has equal fields gets the kept tag without rendering; when
the view itself is sent, only its clock-derived fields are computed again, and a finished or
waiting task's answer, which has none that move, is sent as it was encoded.

This is exact, not a guess: a view is a function of those fields, but for ``updated_at``,
``duration`` and ``eta_s``, which the ETag leaves out (:mod:`cam_tasks.web.conditional`). Equal
fields therefore give the same tag, and any change of them renders anew. Fields are compared
with ``==``; where that is looser than JSON (``1 == 1.0``), the fields that can hold such
values never change alone: ``params`` are fixed at submit, and a ``result`` is only written
with a new attempt record in ``history``.

A store hands out a new :class:`Task` for every read, so entries are found by task id and
checked by value. The table is bounded in entries (least recently used leave first) and in
the size of each (a rendering over :data:`MAX_KEPT_VIEW_BYTES` is not kept), and lives in one
event loop: no method awaits, so nothing interleaves with a lookup.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from aiohttp import web

from cam_tasks.domain import Task, TaskStatus
from cam_tasks.web.conditional import etag_and_size
from cam_tasks.web.envelope import success_body
from cam_tasks.web.schemas import (
    VIEW_CLOCK_FIELDS,
    VIEW_SOURCE_FIELDS,
    TaskView,
    view_clock_fields,
)

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "MAX_KEPT_VIEW_BYTES",
    "TAGGED_VIEWS_KEY",
    "Rendering",
    "TaggedViews",
]

#: Renderings kept at most by default.
DEFAULT_MAX_ENTRIES: Final = 512
#: Largest rendering kept, in bytes of its JSON: an entry holds about one task (its fields,
#: its view and its encoded answer), so this bounds the table's memory whatever tasks hold.
#: A larger rendering is built on every read, as without the table.
MAX_KEPT_VIEW_BYTES: Final = 16 * 1024

#: What is rendered of a task: None for the whole view, else the names of the view's fields
#: shown (the view cut to them, in that order).
Rendering = tuple[str, ...] | None

_source_of: Final = operator.itemgetter(*VIEW_SOURCE_FIELDS)


@dataclass(slots=True)
class _Entry:
    source: tuple[Any, ...]
    #: The rendering as of when it was built: its clock fields may be stale.
    view: dict[str, Any]
    etag: str
    #: The clock fields ``view`` holds, to refresh when it is sent.
    clock_fields: tuple[str, ...]
    #: The encoded answer, when kept (see :meth:`TaggedViews.body`), and the ``updated_at`` of
    #: the task it was encoded from.
    body: bytes | None = None
    body_updated_at: datetime | None = None


class TaggedViews:
    """Renderings of tasks and their weak ETags, each built once per visible state.

    ``now`` is the clock the views are rendered with (the service's), ``max_entries`` how
    many (task, rendering) pairs are kept (ValueError when < 1). Not thread-safe: one event
    loop.
    """

    def __init__(
        self, now: Callable[[], datetime], *, max_entries: int = DEFAULT_MAX_ENTRIES
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self._now = now
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple[str, Rendering], _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def etag(self, task: Task, rendering: Rendering = None) -> str:
        """The weak ETag of ``task`` rendered as ``rendering``: ``etag_of`` its view."""
        return self._entry(task, rendering)[0].etag

    def view(self, task: Task, rendering: Rendering = None) -> dict[str, Any]:
        """``task`` rendered as ``rendering``, as of now: the view ``TaskView.dump`` gives (or
        its fields ``rendering`` names). A new dict each call: the caller may set its keys."""
        return self._current(task, *self._entry(task, rendering))

    def body(self, task: Task, rendering: Rendering = None) -> bytes:
        """``success_body(self.view(task, rendering))``: the answer's encoded JSON.

        Kept with the entry while nothing it shows can have moved: the task is not running
        (only a running task's ``duration`` and ``eta_s`` follow the clock) and is read with
        the same ``updated_at``."""
        entry, fresh = self._entry(task, rendering)
        if entry.body is not None and entry.body_updated_at == task.updated_at:
            return entry.body
        body = success_body(self._current(task, entry, fresh))
        if task.status is not TaskStatus.RUNNING:
            entry.body, entry.body_updated_at = body, task.updated_at
        return body

    def _current(self, task: Task, entry: _Entry, fresh: bool) -> dict[str, Any]:
        view = dict(entry.view)
        if not fresh and entry.clock_fields:
            clock = view_clock_fields(task, self._now())
            for name in entry.clock_fields:
                view[name] = clock[name]
        return view

    def _entry(self, task: Task, rendering: Rendering) -> tuple[_Entry, bool]:
        """The entry of ``task`` as it is now, and whether it was built by this call."""
        key = (task.id, rendering)
        source = _source_of(task.__dict__)
        entry = self._entries.get(key)
        if entry is not None and entry.source == source:
            self._entries.move_to_end(key)
            return entry, False
        view = TaskView.dump(task, now=self._now())
        if rendering is not None:
            view = {name: view[name] for name in rendering}
        clock_fields = tuple(name for name in VIEW_CLOCK_FIELDS if name in view)
        etag, size = etag_and_size(view)
        entry = _Entry(source, view, etag, clock_fields)
        if size > MAX_KEPT_VIEW_BYTES:
            self._entries.pop(key, None)
            return entry, True
        self._entries[key] = entry
        self._entries.move_to_end(key)
        if len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return entry, True


#: The :class:`TaggedViews` of an API app.
TAGGED_VIEWS_KEY: Final = web.AppKey("cam_tasks.tagged_views", TaggedViews)
