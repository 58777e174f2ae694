"""The ``probe`` executor as an installed plug-in (entry point ``cam_tasks.executors``), so that
real ``cam-tasks serve`` and ``cam-tasks worker`` processes register it as a deployment would.

Each process records what it executes in the ``executions`` collection of its own database
(through a client of its own: what it records is what really ran), with its pid.
"""

from __future__ import annotations

import os
from typing import Any

from pymongo import AsyncMongoClient

from cam_tasks.plugins import PluginContext
from tests.crash.worker_process import ProbeExecutor

#: The dist-info directory that makes this module an installed plug-in (see :func:`install`).
ENTRY_POINTS = "[cam_tasks.executors]\nprobe = tests.crash.roles_plugin:probe_executor\n"


def probe_executor(context: PluginContext) -> ProbeExecutor:
    mongo = context.settings.mongo
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo.uri, tz_aware=True)
    return ProbeExecutor(client[mongo.database], owner=f"pid-{os.getpid()}")


def install(site: os.PathLike[str] | str) -> None:
    """Write a distribution ``roles-probe`` declaring the entry point into directory ``site``;
    a process with ``site`` on its ``PYTHONPATH`` loads the plug-in."""
    dist_info = os.path.join(site, "roles_probe-0.1.dist-info")
    os.makedirs(dist_info, exist_ok=True)
    with open(os.path.join(dist_info, "METADATA"), "w", encoding="utf-8") as metadata:
        metadata.write("Metadata-Version: 2.1\nName: roles-probe\nVersion: 0.1\n")
    with open(os.path.join(dist_info, "entry_points.txt"), "w", encoding="utf-8") as points:
        points.write(ENTRY_POINTS)
