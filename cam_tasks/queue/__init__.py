"""The runtime: the dispatcher (asyncio queue, worker pool, claims, leases, heartbeats, rescue,
graceful stop) and the scheduler (fires due schedules, once per fire time)."""

from cam_tasks.queue.dispatcher import Dispatcher, DispatcherStats, new_owner_id
from cam_tasks.queue.scheduler import MisfirePolicy, Scheduler, SubmitTask

__all__ = [
    "Dispatcher",
    "DispatcherStats",
    "MisfirePolicy",
    "Scheduler",
    "SubmitTask",
    "new_owner_id",
]
