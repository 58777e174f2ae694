"""The MongoDB backend: the task, schedule and inventory stores on one database (PyMongo async,
Motor or mongomock-motor), their indexes, and the driver's errors translated at this boundary."""

from cam_tasks.repository.mongo.indexes import (
    INVENTORY_INDEXES,
    QUEUE_INDEXES,
    SCHEDULE_INDEXES,
    TASK_INDEXES,
    create_indexes,
    create_queue_indexes,
    create_schedule_indexes,
    create_task_indexes,
)
from cam_tasks.repository.mongo.inventory import MongoAssetInventory
from cam_tasks.repository.mongo.queues import MongoQueueRepository
from cam_tasks.repository.mongo.schedules import MongoScheduleRepository
from cam_tasks.repository.mongo.slots import MongoKeySlotRepository
from cam_tasks.repository.mongo.tasks import MongoTaskRepository

__all__ = [
    "INVENTORY_INDEXES",
    "QUEUE_INDEXES",
    "SCHEDULE_INDEXES",
    "TASK_INDEXES",
    "MongoAssetInventory",
    "MongoKeySlotRepository",
    "MongoQueueRepository",
    "MongoScheduleRepository",
    "MongoTaskRepository",
    "create_indexes",
    "create_queue_indexes",
    "create_schedule_indexes",
    "create_task_indexes",
]
