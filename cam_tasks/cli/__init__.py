"""The ``cam-tasks`` command: ``serve`` runs the service, ``worker`` a worker-only process; the
other commands drive a running one over its HTTP API (see docs/operations.md).

Modules: :mod:`~cam_tasks.cli.main` (parser and dispatch), :mod:`~cam_tasks.cli.serve`,
:mod:`~cam_tasks.cli.worker`, :mod:`~cam_tasks.cli.commands` (tasks, stats),
:mod:`~cam_tasks.cli.schedules`, :mod:`~cam_tasks.cli.watch`, :mod:`~cam_tasks.cli.render`
(text for people),
:mod:`~cam_tasks.cli.session` (what client commands share), :mod:`~cam_tasks.cli.logs`,
:mod:`~cam_tasks.cli.exits` (exit statuses).
"""

from cam_tasks.cli.exits import ExitCode
from cam_tasks.cli.logs import JsonFormatter, TextFormatter, configure_logging
from cam_tasks.cli.main import main
from cam_tasks.cli.serve import build_app

__all__ = [
    "ExitCode",
    "JsonFormatter",
    "TextFormatter",
    "build_app",
    "configure_logging",
    "main",
]
