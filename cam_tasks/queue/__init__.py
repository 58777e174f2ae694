"""The dispatcher: asyncio queue, worker pool, claims, leases, heartbeats, rescue, graceful stop."""

from cam_tasks.queue.dispatcher import Dispatcher, DispatcherStats, new_owner_id

__all__ = ["Dispatcher", "DispatcherStats", "new_owner_id"]
