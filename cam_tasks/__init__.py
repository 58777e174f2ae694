"""cam_tasks: a lightweight asyncio job framework persisted in MongoDB.

The public API; everything else is reachable through the layer packages.
"""

from cam_tasks._version import __version__
from cam_tasks.assets import AssetProvider, StaticAssetProvider
from cam_tasks.config import Settings, load_settings
from cam_tasks.domain import (
    Asset,
    CamTasksError,
    ConfigurationError,
    PermanentError,
    Priority,
    RetryableError,
    Task,
    TaskStatus,
)
from cam_tasks.executor import TaskContext, TaskExecutor
from cam_tasks.module import CAM_TASKS_KEY, CamTasks, setup
from cam_tasks.plugins import ExecutorFactory, PluginContext, SharedHttpSession
from cam_tasks.repository import AssetInventory
from cam_tasks.service import TaskSubmission

__all__ = [
    "CAM_TASKS_KEY",
    "Asset",
    "AssetInventory",
    "AssetProvider",
    "CamTasks",
    "CamTasksError",
    "ConfigurationError",
    "ExecutorFactory",
    "PermanentError",
    "PluginContext",
    "Priority",
    "RetryableError",
    "Settings",
    "SharedHttpSession",
    "StaticAssetProvider",
    "Task",
    "TaskContext",
    "TaskExecutor",
    "TaskStatus",
    "TaskSubmission",
    "__version__",
    "load_settings",
    "setup",
]
