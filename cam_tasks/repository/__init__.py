"""The storage layer: the TaskRepository, AssetInventory and ScheduleRepository contracts, their
MongoDB and in-memory backends, and what a store URI opens."""

from cam_tasks.repository.connect import SCHEMES, Stores, open_stores, stores_for_database
from cam_tasks.repository.indexes import TASK_INDEXES, create_task_indexes
from cam_tasks.repository.inventory import (
    INVENTORY_INDEXES,
    MemoryAssetInventory,
    MongoAssetInventory,
)
from cam_tasks.repository.memory import MemoryTaskRepository
from cam_tasks.repository.mongo import MongoTaskRepository
from cam_tasks.repository.mongo_schedules import MongoScheduleRepository
from cam_tasks.repository.observed import ObservedTaskRepository, TaskChange, TaskListener
from cam_tasks.repository.protocol import AssetInventory, ClaimOrder, TaskRepository
from cam_tasks.repository.schedule_indexes import SCHEDULE_INDEXES, create_schedule_indexes
from cam_tasks.repository.schedules import MemoryScheduleRepository, ScheduleRepository

__all__ = [
    "INVENTORY_INDEXES",
    "SCHEDULE_INDEXES",
    "SCHEMES",
    "TASK_INDEXES",
    "AssetInventory",
    "ClaimOrder",
    "MemoryAssetInventory",
    "MemoryScheduleRepository",
    "MemoryTaskRepository",
    "MongoAssetInventory",
    "MongoScheduleRepository",
    "MongoTaskRepository",
    "ObservedTaskRepository",
    "ScheduleRepository",
    "Stores",
    "TaskChange",
    "TaskListener",
    "TaskRepository",
    "create_schedule_indexes",
    "create_task_indexes",
    "open_stores",
    "stores_for_database",
]
