"""The in-process backend behind ``memory://``: the task, schedule and inventory stores of this
process, laid out as ``mongo/`` is and held to the same contract suites. Nothing survives the
process."""

from cam_tasks.repository.memory.inventory import MemoryAssetInventory
from cam_tasks.repository.memory.queues import MemoryQueueRepository
from cam_tasks.repository.memory.schedules import MemoryScheduleRepository
from cam_tasks.repository.memory.slots import MemoryKeySlotRepository
from cam_tasks.repository.memory.tasks import MemoryTaskRepository

__all__ = [
    "MemoryAssetInventory",
    "MemoryKeySlotRepository",
    "MemoryQueueRepository",
    "MemoryScheduleRepository",
    "MemoryTaskRepository",
]
