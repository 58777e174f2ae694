"""Errors raised by the use cases themselves (not by the domain or a backend).

::

    CamTasksError                  (cam_tasks.domain)
    ├── QueueFullError             too many pending tasks: submit refused, retry later
    └── QueueNotFoundError         no queue of that name is declared (pause/resume)

The domain's tree (``cam_tasks.domain.errors``) stays the root; this module only adds the
refusals that depend on service configuration.
"""

from __future__ import annotations

from cam_tasks.domain import CamTasksError

__all__ = ["QueueFullError", "QueueNotFoundError"]


class QueueFullError(CamTasksError):
    """A submit was refused because ``pending`` tasks already reach ``max_pending``.

    Nothing was stored. ``retry_after_s`` is how long the caller should wait before trying
    again (the web layer sends it as ``Retry-After``).
    """

    def __init__(self, *, pending: int, max_pending: int, retry_after_s: float) -> None:
        super().__init__(f"{pending} tasks pending (limit {max_pending}): retry later")
        self.pending = pending
        self.max_pending = max_pending
        self.retry_after_s = retry_after_s


class QueueNotFoundError(CamTasksError):
    """No queue called ``name`` is declared (in the settings or by an executor); ``known``
    lists the declared ones."""

    def __init__(self, name: str, known: frozenset[str]) -> None:
        super().__init__(f"no queue {name!r} is declared")
        self.name = name
        self.known = known
