"""The web layer: the task API as an aiohttp sub-application (``create_api``)."""

from cam_tasks.service.stats import WorkerPool
from cam_tasks.web.app import DEFAULT_MAX_BODY_BYTES, create_api
from cam_tasks.web.auth import (
    PRINCIPAL_KEY,
    Authenticate,
    AuthenticationError,
    BearerTokenAuthenticator,
    allow_anonymous,
    authentication_middleware,
    principal_of,
    token_digest,
)
from cam_tasks.web.cors import check_origins, enable_cors
from cam_tasks.web.errors import (
    ERROR_RULES,
    REQUEST_ID_HEADER,
    REQUEST_ID_KEY,
    ApiError,
    ErrorRule,
    error_middleware,
)
from cam_tasks.web.health import MetricsSource, ReadinessCheck, health_routes, metrics_routes
from cam_tasks.web.keys import SERVICE_KEY, WATCHER_KEY
from cam_tasks.web.limits import ApiLimits, RateLimitedError, RequestLimiter
from cam_tasks.web.log_context import LogContextFilter, current_request_id, request_id_middleware
from cam_tasks.web.requests import MAX_BODY_BYTES_KEY
from cam_tasks.web.schedule_routes import SCHEDULES_KEY
from cam_tasks.web.stats_routes import STATS_KEY, WORKERS_KEY

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "ERROR_RULES",
    "MAX_BODY_BYTES_KEY",
    "PRINCIPAL_KEY",
    "REQUEST_ID_HEADER",
    "REQUEST_ID_KEY",
    "SCHEDULES_KEY",
    "SERVICE_KEY",
    "STATS_KEY",
    "WATCHER_KEY",
    "WORKERS_KEY",
    "ApiError",
    "ApiLimits",
    "Authenticate",
    "AuthenticationError",
    "BearerTokenAuthenticator",
    "ErrorRule",
    "LogContextFilter",
    "MetricsSource",
    "RateLimitedError",
    "ReadinessCheck",
    "RequestLimiter",
    "WorkerPool",
    "allow_anonymous",
    "authentication_middleware",
    "check_origins",
    "create_api",
    "current_request_id",
    "enable_cors",
    "error_middleware",
    "health_routes",
    "metrics_routes",
    "principal_of",
    "request_id_middleware",
    "token_digest",
]
