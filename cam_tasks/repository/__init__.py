"""The storage layer: the store contracts (:mod:`.protocol`), their MongoDB (:mod:`.mongo`) and
in-process (:mod:`.memory`) backends laid out alike, the document mapping they share
(:mod:`.documents`), and what a store URI opens (:mod:`.connect`).

Everything each backend package exports is exported here too."""

from cam_tasks.repository import memory, mongo
from cam_tasks.repository.connect import SCHEMES, Stores, open_stores, stores_for_database
from cam_tasks.repository.memory import *  # noqa: F403 - its __all__, re-exported below
from cam_tasks.repository.mongo import *  # noqa: F403 - its __all__, re-exported below
from cam_tasks.repository.observed import ObservedTaskRepository
from cam_tasks.repository.protocol import (
    AssetInventory,
    ClaimOrder,
    Completion,
    KeySlotRepository,
    QueueRepository,
    ScheduleRepository,
    TaskRepository,
)

__all__ = [
    "SCHEMES",
    "AssetInventory",
    "ClaimOrder",
    "Completion",
    "KeySlotRepository",
    "ObservedTaskRepository",
    "QueueRepository",
    "ScheduleRepository",
    "Stores",
    "TaskRepository",
    "open_stores",
    "stores_for_database",
]
__all__ += memory.__all__
__all__ += mongo.__all__
