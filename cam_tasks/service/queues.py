"""QueueService: the queues of the cluster, their figures, and pausing them.

A queue is *declared* (``[queues.NAME]`` in the settings, the default queue, or the ``queue``
of a registered executor); the composition root passes the declared names with their
per-process concurrency. Pausing is a stored flag (:class:`QueueRepository`): every instance's
dispatcher reads the paused set each poll interval and claims nothing from a paused queue, so
a pause takes effect cluster-wide within one poll interval; tasks already running finish.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from cam_tasks.domain import Clock, Permission, Principal, TaskFilter, TaskStatus
from cam_tasks.repository.protocol import QueueRepository, TaskRepository
from cam_tasks.service.errors import QueueNotFoundError
from cam_tasks.service.notifier import TaskNotifier

__all__ = ["QueueInfo", "QueueService"]

logger = logging.getLogger(__name__)

_ACTIVE = frozenset({TaskStatus.PENDING, TaskStatus.RUNNING})


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """One queue as the cluster sees it: ``concurrency`` is the worker slots each process
    serving it gives it; ``pending`` / ``running`` count its tasks in the store (every
    instance; only the projects the caller sees)."""

    name: str
    concurrency: int
    paused: bool
    pending: int
    running: int


class QueueService:
    """The queue use cases over the task store and the queue flags.

    ``declared``: queue name -> concurrency, every queue this deployment knows. Errors: besides
    those listed per method, :class:`DatabaseUnavailableError` when a store cannot be reached.
    """

    def __init__(
        self,
        tasks: TaskRepository,
        queues: QueueRepository,
        *,
        declared: Mapping[str, int],
        clock: Clock,
        notifier: TaskNotifier | None = None,
    ) -> None:
        self._tasks = tasks
        self._queues = queues
        self._declared = dict(declared)
        self._clock = clock
        self._notifier = notifier

    @property
    def declared(self) -> Mapping[str, int]:
        """Queue name -> concurrency of every declared queue."""
        return dict(self._declared)

    async def paused(self) -> frozenset[str]:
        """The paused queues (one read of the flags)."""
        return await self._queues.paused()

    async def list(self, *, principal: Principal | None = None) -> builtins.list[QueueInfo]:
        """Every declared queue by name, with its flag and its pending/running tasks in the
        store (a non-admin counts the tasks of its projects). A queue that holds tasks but is
        no longer declared is listed too, with concurrency 0, so no work is hidden. Two reads:
        the flags and one aggregation of the counts."""
        return await self._infos(None, principal)

    async def _infos(
        self, name: str | None, principal: Principal | None
    ) -> builtins.list[QueueInfo]:
        """Every queue (``name`` None), or that one queue, as :meth:`list` describes them."""
        paused = await self._queues.paused()
        query = TaskFilter(
            statuses=_ACTIVE,
            queues=None if name is None else frozenset({name}),
            project_ids=None if principal is None else principal.visible_projects(None),
        )
        counts = await self._tasks.count_by_queue(query)
        names = [name] if name is not None else sorted(set(self._declared) | set(counts))
        return [
            QueueInfo(
                name=queue,
                concurrency=self._declared.get(queue, 0),
                paused=queue in paused,
                pending=counts.get(queue, {}).get(TaskStatus.PENDING, 0),
                running=counts.get(queue, {}).get(TaskStatus.RUNNING, 0),
            )
            for queue in names
        ]

    async def pause(self, name: str, *, principal: Principal | None = None) -> QueueInfo:
        """Pause ``name`` cluster-wide (idempotent). Raises :class:`QueueNotFoundError` for an
        undeclared queue, :class:`AccessDeniedError` unless ``principal`` may operate."""
        return await self._set(name, True, principal)

    async def resume(self, name: str, *, principal: Principal | None = None) -> QueueInfo:
        """Resume ``name`` cluster-wide (idempotent); errors as :meth:`pause`."""
        return await self._set(name, False, principal)

    async def _set(self, name: str, paused: bool, principal: Principal | None) -> QueueInfo:
        if principal is not None:
            principal.require(Permission.OPERATE)
        if name not in self._declared:
            raise QueueNotFoundError(name, frozenset(self._declared))
        await self._queues.set_paused(name, paused, now=self._clock.now())
        if self._notifier is not None:
            # The flag is stored: this process's dispatcher honours it from its next claim.
            self._notifier.queues_changed()
        logger.info(
            "queue paused" if paused else "queue resumed",
            extra={"queue": name, "by": None if principal is None else principal.name},
        )
        (queue,) = await self._infos(name, principal)
        return queue
