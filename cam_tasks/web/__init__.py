"""The web layer: the task API as an aiohttp sub-application (``create_api``)."""

from cam_tasks.web.app import DEFAULT_MAX_BODY_BYTES, create_api
from cam_tasks.web.errors import (
    ERROR_RULES,
    REQUEST_ID_HEADER,
    REQUEST_ID_KEY,
    ApiError,
    ErrorRule,
    error_middleware,
)
from cam_tasks.web.routes import MAX_BODY_BYTES_KEY, SERVICE_KEY

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "ERROR_RULES",
    "MAX_BODY_BYTES_KEY",
    "REQUEST_ID_HEADER",
    "REQUEST_ID_KEY",
    "SERVICE_KEY",
    "ApiError",
    "ErrorRule",
    "create_api",
    "error_middleware",
]
