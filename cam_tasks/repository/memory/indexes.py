"""The sorted indexes of the memory repository: in-process counterparts of the MongoDB indexes.

Built on ``sortedcontainers`` (keys are tuples of UTC datetimes, ints and ids):

- ``ready[(queue, type)]``: pending tasks in claim order ``(-priority, run_at, created_at,
  id)``. The best due task of a type costs O(log n) per distinct priority level: the head of
  each priority run has the earliest ``run_at`` of that run, so when it is not due, the whole
  run is skipped with one bisect (what MongoDB does with the ``claim_queue`` index); a task
  passed over for a full concurrency key costs one step more.
- ``aged[(queue, type)]``: the same pending tasks in age order ``(run_at, created_at, id)``:
  its head is both the oldest task (the ``"age"`` claim, when it is due) and the next run
  (``claim_queue_age`` in MongoDB).
- ``leases``: running tasks by ``(lease_until, id)``: a sweep reads only the expired prefix.
- ``(created_at, id)`` lists of all tasks, per status, per type and per (type, status): list
  pages newest first by position, without looking at other tasks.
- ``expiry``: finished tasks by ``(expire_at, id)`` when retention is set.

The indexes hold keys only; the caller keeps the tasks and tells the indexes of every change.
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator
from datetime import datetime

from sortedcontainers import SortedList

from cam_tasks.domain import TRANSITIONS, Action, Task, TaskFilter, TaskStatus
from cam_tasks.repository.protocol import ClaimOrder

__all__ = ["MemoryIndexes"]

_CLAIMABLE = TRANSITIONS[Action.CLAIM].sources
_RESCUABLE = TRANSITIONS[Action.RESCUE].sources | TRANSITIONS[Action.RESCUE_EXHAUSTED].sources

_ClaimKey = tuple[int, datetime, datetime, str]  # (-priority, run_at, created_at, id)
_AgeKey = tuple[datetime, datetime, str]  # (run_at, created_at, id)
_ListKey = tuple[datetime, str]  # (created_at, id)


def _claim_key(task: Task) -> _ClaimKey:
    return (-task.priority, task.run_at, task.created_at, task.id)


def _age_key(task: Task) -> _AgeKey:
    return (task.run_at, task.created_at, task.id)


def _first_due(
    ready: SortedList, now: datetime, skip: Callable[[str], bool] | None = None
) -> _ClaimKey | None:
    """The best entry of ``ready`` whose run_at <= now and that ``skip`` does not pass over:
    one probe per priority level, plus one per task skipped."""
    index, size = 0, len(ready)
    while index < size:
        key: _ClaimKey = ready[index]
        if key[1] <= now:
            if skip is None or not skip(key[3]):
                return key
            index += 1  # passed over (its concurrency key is full): the next one may do
            continue
        # Not due, so nothing of this priority is: jump to the next (lower) priority.
        index = ready.bisect_left((key[0] + 1,))
    return None


def _check_types(types: Collection[str]) -> None:
    if isinstance(types, str):  # a bare string would read as a set of its characters
        raise TypeError(f"expected a collection of task types, got the string {types!r}")


class MemoryIndexes:
    """Every sorted index of the memory repository. Not thread-safe (nor meant to be)."""

    def __init__(self) -> None:
        self._ready: defaultdict[tuple[str, str], SortedList] = defaultdict(SortedList)
        self._aged: defaultdict[tuple[str, str], SortedList] = defaultdict(SortedList)
        self._leases = SortedList()
        self._all = SortedList()
        self._by_type: defaultdict[str, SortedList] = defaultdict(SortedList)
        self._by_status: defaultdict[TaskStatus, SortedList] = defaultdict(SortedList)
        self._by_type_status: defaultdict[tuple[str, TaskStatus], SortedList] = defaultdict(
            SortedList
        )
        self._expiry = SortedList()  # (expire_at, id)
        self._expire_at: dict[str, datetime] = {}

    # -- maintenance --------------------------------------------------------------------------

    def _add_state(self, task: Task) -> None:
        key = (task.created_at, task.id)
        self._by_status[task.status].add(key)
        self._by_type_status[(task.type, task.status)].add(key)
        if task.status in _CLAIMABLE:
            self._ready[(task.queue, task.type)].add(_claim_key(task))
            self._aged[(task.queue, task.type)].add(_age_key(task))
        elif task.status in _RESCUABLE and task.lease_until is not None:
            self._leases.add((task.lease_until, task.id))

    def _discard_state(self, task: Task) -> None:
        key = (task.created_at, task.id)
        self._by_status[task.status].discard(key)
        self._by_type_status[(task.type, task.status)].discard(key)
        if task.status in _CLAIMABLE:
            self._ready[(task.queue, task.type)].discard(_claim_key(task))
            self._aged[(task.queue, task.type)].discard(_age_key(task))
        elif task.status in _RESCUABLE and task.lease_until is not None:
            self._leases.discard((task.lease_until, task.id))

    def add(self, task: Task) -> None:
        key = (task.created_at, task.id)  # one tuple for both lists: they live as long as the task
        self._all.add(key)
        self._by_type[task.type].add(key)
        self._add_state(task)

    def replace(self, old: Task, new: Task) -> None:
        """``old`` became ``new`` (same id, type and created_at)."""
        self._discard_state(old)
        self._add_state(new)

    def remove(self, task: Task) -> None:
        self._discard_state(task)
        self._all.discard((task.created_at, task.id))
        self._by_type[task.type].discard((task.created_at, task.id))
        self.set_expiry(task.id, None)

    def set_expiry(self, task_id: str, expire_at: datetime | None) -> None:
        previous = self._expire_at.pop(task_id, None)
        if previous is not None:
            self._expiry.discard((previous, task_id))
        if expire_at is not None:
            self._expire_at[task_id] = expire_at
            self._expiry.add((expire_at, task_id))

    # -- queries ------------------------------------------------------------------------------

    def expiry_of(self, task_id: str) -> datetime | None:
        return self._expire_at.get(task_id)

    def first_expired(self, now: datetime) -> str | None:
        """The id of a task whose ``expire_at <= now``, or None."""
        if self._expiry and self._expiry[0][0] <= now:
            task_id: str = self._expiry[0][1]
            return task_id
        return None

    def best_due(
        self,
        types: Collection[str],
        now: datetime,
        order: ClaimOrder = "priority",
        *,
        queue: str,
        skip: Callable[[str], bool] | None = None,
    ) -> str | None:
        """The id of the task ``claim`` takes in ``order``: the best due head among ``types``
        of ``queue``, passing over the tasks ``skip`` names."""
        _check_types(types)
        if order == "age":
            oldest = min(self._aged_heads(types, [queue], now, skip), default=None)
            return None if oldest is None or oldest[0] > now else oldest[2]
        if order != "priority":
            raise ValueError(f"unknown claim order {order!r}")
        best: _ClaimKey | None = None
        for task_type in types:
            ready = self._ready.get((queue, task_type))
            head = None if not ready else _first_due(ready, now, skip)
            if head is not None and (best is None or head < best):
                best = head
        return None if best is None else best[3]

    def next_run_at(
        self, types: Collection[str], queues: Collection[str] | None = None
    ) -> datetime | None:
        _check_types(types)
        if queues is None:
            queues = {queue for queue, _ in self._aged}
        oldest = min(self._aged_heads(types, queues), default=None)
        return None if oldest is None else oldest[0]

    def _aged_heads(
        self,
        types: Collection[str],
        queues: Collection[str],
        now: datetime | None = None,
        skip: Callable[[str], bool] | None = None,
    ) -> Iterator[_AgeKey]:
        """The oldest pending task of each (queue, type) that has one (the oldest due one not
        passed over by ``skip``, when given)."""
        for queue in queues:
            for task_type in types:
                aged = self._aged.get((queue, task_type))
                if not aged:
                    continue
                if skip is None:
                    yield aged[0]
                    continue
                for key in aged:
                    if now is not None and key[0] > now:
                        break
                    if not skip(key[2]):
                        yield key
                        break

    def expired_leases(self, now: datetime, limit: int) -> list[str]:
        """Ids of running tasks whose ``lease_until < now``, oldest lease first."""
        # (now,) sorts before every (now, id): the range holds exactly lease_until < now.
        keys = self._leases.irange(maximum=(now,), inclusive=(True, False))
        return [task_id for _, task_id in itertools.islice(keys, limit)]

    def _select(self, query: TaskFilter) -> list[SortedList]:
        """The narrowest lists whose union is what ``types`` and ``statuses`` allow."""
        types, statuses = query.types, query.statuses
        if types is not None and statuses is not None:
            found = [self._by_type_status.get((t, s)) for t in types for s in statuses]
        elif types is not None:
            found = [self._by_type.get(t) for t in types]
        elif statuses is not None:
            found = [self._by_status.get(s) for s in statuses]
        else:
            found = [self._all]
        return [keys for keys in found if keys]

    def page(
        self,
        query: TaskFilter,
        offset: int,
        limit: int,
        matches: Callable[[str], bool] | None,
    ) -> tuple[list[str], int]:
        """Ids of one newest-first page of ``query`` and the total; ``matches`` checks the
        criteria no index here serves (created_by, project_ids, updated_since)."""
        lists = self._select(query)
        if matches is None:
            # Served by position: O(log n + offset + limit), no other task is looked at.
            total = sum(len(keys) for keys in lists)
            if len(lists) == 1:
                size = len(lists[0])
                start, stop = max(0, size - offset - limit), max(0, size - offset)
                keys = lists[0].islice(start, stop, reverse=True)
            else:
                keys = itertools.islice(_newest_first(lists), offset, offset + limit)
            return [task_id for _, task_id in keys], total
        # No sorted index for the other criteria: scan the narrowest type/status lists newest
        # first and filter (acceptable in process; the Mongo backend has indexes for them).
        page: list[str] = []
        total = 0
        for _, task_id in _newest_first(lists):
            if matches(task_id):
                if offset <= total < offset + limit:
                    page.append(task_id)
                total += 1
        return page, total

    def ids(self, query: TaskFilter, matches: Callable[[str], bool] | None) -> list[str]:
        """Ids of every task of ``query`` (``matches`` as in :meth:`page`), newest first: the
        narrowest type/status lists, filtered. A list, so the caller may change the tasks."""
        keys = _newest_first(self._select(query))
        return [task_id for _, task_id in keys if matches is None or matches(task_id)]

    def count_status(self, status: TaskStatus) -> int:
        return len(self._by_status.get(status, ()))


def _newest_first(lists: list[SortedList]) -> Iterator[_ListKey]:
    if len(lists) == 1:
        newest: Iterator[_ListKey] = reversed(lists[0])
        return newest
    return heapq.merge(*(reversed(keys) for keys in lists), reverse=True)
