"""Executors: the plug-ins that do a task's work, their context and their registry."""

from cam_tasks.executor.context import TaskContext
from cam_tasks.executor.protocol import TaskExecutor
from cam_tasks.executor.registry import (
    ExecutorRegistry,
    ExecutorSpec,
    check_executor,
    validation_details,
)

__all__ = [
    "ExecutorRegistry",
    "ExecutorSpec",
    "TaskContext",
    "TaskExecutor",
    "check_executor",
    "validation_details",
]
