"""Logging of ``cam-tasks serve``: one handler on stderr, text (the default) or JSON lines, and
the context every record gets (request id, process fields, the running task)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, TextIO

import orjson

from cam_tasks.config import LogSettings
from cam_tasks.executor.logcontext import TaskLogFilter
from cam_tasks.web import LogContextFilter

__all__ = ["JsonFormatter", "TextFormatter", "configure_logging", "log_handler"]

# Attributes every LogRecord has; anything else on a record came from ``extra=`` or a filter.
_RECORD_FIELDS: Final = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# The task's fields lead a text line's context, in this order; the rest follow by name.
_LEADING: Final = ("task_id", "type", "queue", "attempt")
# The same on every line of a process: in JSON for machines, left out of text for people.
_TEXT_OMITS: Final = frozenset({"owner"})


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and the record's ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_extras(record))
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def _logfmt(value: Any) -> str:
    text = str(value)
    if not text or any(c.isspace() or c in '="' for c in text):
        return orjson.dumps(text).decode()
    return text


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value …``: the record's ``extra`` fields (the task's
    first) follow the message, so a text line names the task it is about."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {k: v for k, v in _extras(record).items() if k not in _TEXT_OMITS}
        names = [k for k in _LEADING if k in extras] + sorted(set(extras) - set(_LEADING))
        context = " ".join(f"{name}={_logfmt(extras[name])}" for name in names)
        if not context:
            return line
        # The traceback (if any) stays last, under the line that names the task.
        head, newline, rest = line.partition("\n")
        return f"{head} {context}{newline}{rest}"


def log_handler(
    settings: LogSettings, stream: TextIO, fields: Mapping[str, str] | None = None
) -> tuple[logging.Handler, LogContextFilter]:
    """A handler writing to ``stream`` in ``settings.format`` whose records carry the request
    id, ``fields`` and the running task; the returned filter takes more fields later."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else TextFormatter())
    context = LogContextFilter(fields)
    handler.addFilter(context)
    handler.addFilter(TaskLogFilter())
    return handler, context


def configure_logging(
    settings: LogSettings, fields: Mapping[str, str] | None = None
) -> LogContextFilter:
    """Log to stderr as ``settings`` say (see :func:`log_handler`), replacing the root logger's
    handlers."""
    handler, context = log_handler(settings, sys.stderr, fields)
    logging.basicConfig(level=settings.level, handlers=[handler], force=True)
    return context
