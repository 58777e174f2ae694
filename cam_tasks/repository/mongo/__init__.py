"""The MongoDB backend: the task, schedule, inventory, queue-flag and key-slot stores on one
database (PyMongo async, Motor or mongomock-motor), their indexes (all declared in
:mod:`.indexes`, whose names are exported here too), and the driver's errors translated at this
boundary."""

from cam_tasks.repository.mongo import indexes
from cam_tasks.repository.mongo.indexes import *  # noqa: F403 - its __all__, re-exported below
from cam_tasks.repository.mongo.inventory import MongoAssetInventory
from cam_tasks.repository.mongo.queues import MongoQueueRepository
from cam_tasks.repository.mongo.schedules import MongoScheduleRepository
from cam_tasks.repository.mongo.slots import MongoKeySlotRepository
from cam_tasks.repository.mongo.tasks import MongoTaskRepository

__all__ = [
    "MongoAssetInventory",
    "MongoKeySlotRepository",
    "MongoQueueRepository",
    "MongoScheduleRepository",
    "MongoTaskRepository",
]
__all__ += indexes.__all__
