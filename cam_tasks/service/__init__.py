"""The service layer: task use cases shared by every front end (HTTP API, CLI, host code)."""

from cam_tasks.service.errors import QueueFullError
from cam_tasks.service.notifier import TaskNotifier
from cam_tasks.service.tasks import (
    DEFAULT_QUEUE_FULL_RETRY_AFTER_S,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_RETRIES_LIMIT,
    TaskService,
)

__all__ = [
    "DEFAULT_QUEUE_FULL_RETRY_AFTER_S",
    "MAX_IDEMPOTENCY_KEY_LENGTH",
    "MAX_RETRIES_LIMIT",
    "QueueFullError",
    "TaskNotifier",
    "TaskService",
]
