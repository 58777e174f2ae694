"""The storage layer: the TaskRepository, ScheduleRepository and AssetInventory contracts
(:mod:`.protocol`), their MongoDB (:mod:`.mongo`) and in-process (:mod:`.memory`) backends laid
out alike, the document mapping they share (:mod:`.documents`), and what a store URI opens
(:mod:`.connect`)."""

from cam_tasks.repository.connect import SCHEMES, Stores, open_stores, stores_for_database
from cam_tasks.repository.memory import (
    MemoryAssetInventory,
    MemoryKeySlotRepository,
    MemoryQueueRepository,
    MemoryScheduleRepository,
    MemoryTaskRepository,
)
from cam_tasks.repository.mongo import (
    INVENTORY_INDEXES,
    SCHEDULE_INDEXES,
    TASK_INDEXES,
    MongoAssetInventory,
    MongoKeySlotRepository,
    MongoQueueRepository,
    MongoScheduleRepository,
    MongoTaskRepository,
    create_schedule_indexes,
    create_task_indexes,
)
from cam_tasks.repository.observed import ObservedTaskRepository
from cam_tasks.repository.protocol import (
    AssetInventory,
    ClaimOrder,
    KeySlotRepository,
    QueueRepository,
    ScheduleRepository,
    TaskRepository,
)

__all__ = [
    "INVENTORY_INDEXES",
    "SCHEDULE_INDEXES",
    "SCHEMES",
    "TASK_INDEXES",
    "AssetInventory",
    "ClaimOrder",
    "KeySlotRepository",
    "MemoryAssetInventory",
    "MemoryKeySlotRepository",
    "MemoryQueueRepository",
    "MemoryScheduleRepository",
    "MemoryTaskRepository",
    "MongoAssetInventory",
    "MongoKeySlotRepository",
    "MongoQueueRepository",
    "MongoScheduleRepository",
    "MongoTaskRepository",
    "ObservedTaskRepository",
    "QueueRepository",
    "ScheduleRepository",
    "Stores",
    "TaskRepository",
    "create_schedule_indexes",
    "create_task_indexes",
    "open_stores",
    "stores_for_database",
]
