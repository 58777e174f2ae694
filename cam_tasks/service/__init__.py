"""The service layer: task and schedule use cases shared by every front end (HTTP API, CLI,
host code)."""

from cam_tasks.service.assets import AssetPage, AssetService
from cam_tasks.service.errors import QueueFullError, QueueNotFoundError
from cam_tasks.service.notifier import TaskNotifier
from cam_tasks.service.queues import QueueInfo, QueueService
from cam_tasks.service.schedules import ScheduleNotifier, ScheduleService
from cam_tasks.service.submission import Submitted, TaskSubmission
from cam_tasks.service.tasks import (
    DEFAULT_QUEUE_FULL_RETRY_AFTER_S,
    IDEMPOTENCY_KEY_PATTERN,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    TaskService,
    is_idempotency_key,
)
from cam_tasks.service.watch import (
    DEFAULT_WATCH_POLL_INTERVAL_S,
    TaskReader,
    TaskSubscription,
    TaskWatcher,
)

__all__ = [
    "DEFAULT_QUEUE_FULL_RETRY_AFTER_S",
    "DEFAULT_WATCH_POLL_INTERVAL_S",
    "IDEMPOTENCY_KEY_PATTERN",
    "MAX_IDEMPOTENCY_KEY_LENGTH",
    "AssetPage",
    "AssetService",
    "QueueFullError",
    "QueueInfo",
    "QueueNotFoundError",
    "QueueService",
    "ScheduleNotifier",
    "ScheduleService",
    "Submitted",
    "TaskNotifier",
    "TaskReader",
    "TaskService",
    "TaskSubmission",
    "TaskSubscription",
    "TaskWatcher",
    "is_idempotency_key",
]
