"""The domain: tasks, statuses and their legal transitions, the lifecycle's policy
(:mod:`.changes`), events, retry policy, errors, clock."""

from cam_tasks.domain import asset
from cam_tasks.domain.asset import *  # noqa: F403 - its __all__, re-exported below
from cam_tasks.domain.clock import Clock, ManualClock, SystemClock, to_millis, utc
from cam_tasks.domain.errors import (
    ActiveTaskExistsError,
    CamTasksError,
    ConfigurationError,
    DatabaseUnavailableError,
    ExecutionError,
    IllegalTransitionError,
    InvalidParamsError,
    PermanentError,
    RetryableError,
    StoreError,
    TaskLostError,
    TaskNotFoundError,
    UnknownTaskTypeError,
)
from cam_tasks.domain.events import TaskChange, TaskListener
from cam_tasks.domain.keys import KeyLimits
from cam_tasks.domain.principal import (
    ANONYMOUS,
    AccessDeniedError,
    Permission,
    Principal,
    Role,
)
from cam_tasks.domain.query import MAX_PAGE_SIZE, TaskFilter, TaskPage
from cam_tasks.domain.retry import RetryPolicy
from cam_tasks.domain.schedule import (
    Schedule,
    ScheduleConflictError,
    ScheduleExistsError,
    ScheduleNotFoundError,
    check_schedule_name,
    fire_key,
    parse_cron,
    parse_timezone,
    schedule_task_creator,
)
from cam_tasks.domain.stats import DurationStats, TaskStats, TypeStats
from cam_tasks.domain.status import (
    TERMINAL_STATUSES,
    TRANSITIONS,
    Action,
    TaskStatus,
    check_transition,
)
from cam_tasks.domain.task import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_QUEUE,
    QUEUE_NAME_PATTERN,
    SUBMIT_OPTIONS,
    AttemptRecord,
    Lease,
    Priority,
    Progress,
    Task,
    TaskError,
    new_task,
)

__all__ = [
    "ANONYMOUS",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_QUEUE",
    "MAX_PAGE_SIZE",
    "QUEUE_NAME_PATTERN",
    "SUBMIT_OPTIONS",
    "TERMINAL_STATUSES",
    "TRANSITIONS",
    "AccessDeniedError",
    "Action",
    "ActiveTaskExistsError",
    "AttemptRecord",
    "CamTasksError",
    "Clock",
    "ConfigurationError",
    "DatabaseUnavailableError",
    "DurationStats",
    "ExecutionError",
    "IllegalTransitionError",
    "InvalidParamsError",
    "KeyLimits",
    "Lease",
    "ManualClock",
    "PermanentError",
    "Permission",
    "Principal",
    "Priority",
    "Progress",
    "RetryPolicy",
    "RetryableError",
    "Role",
    "Schedule",
    "ScheduleConflictError",
    "ScheduleExistsError",
    "ScheduleNotFoundError",
    "StoreError",
    "SystemClock",
    "Task",
    "TaskChange",
    "TaskError",
    "TaskFilter",
    "TaskListener",
    "TaskLostError",
    "TaskNotFoundError",
    "TaskPage",
    "TaskStats",
    "TaskStatus",
    "TypeStats",
    "UnknownTaskTypeError",
    "check_schedule_name",
    "check_transition",
    "fire_key",
    "new_task",
    "parse_cron",
    "parse_timezone",
    "schedule_task_creator",
    "to_millis",
    "utc",
]
__all__ += asset.__all__
