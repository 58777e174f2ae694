"""Settings: one TOML file, overridden by ``CAM_TASKS_*`` environment variables.

Nested keys use ``__`` in the environment: ``[queue] worker_count`` is
``CAM_TASKS_QUEUE__WORKER_COUNT``. Lists and tables (``providers``) take JSON there. The
environment wins over the file, the file over the defaults below. Configuration enters the
program here and in :mod:`cam_tasks.module` only; lower layers take explicit arguments.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from cam_tasks.domain import ConfigurationError

__all__ = [
    "ApiSettings",
    "LogSettings",
    "MongoSettings",
    "QueueSettings",
    "RetrySettings",
    "ServerSettings",
    "Settings",
    "StaticProviderSettings",
    "TaskSettings",
    "load_settings",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    """Where ``cam-tasks serve`` listens."""

    host: str = Field("127.0.0.1", description="Interface to bind; 0.0.0.0 in containers.")
    port: int = Field(8001, ge=0, le=65535, description="TCP port.")


class MongoSettings(_Section):
    """The task store."""

    uri: str = Field(
        "memory://",
        description="memory:// (in process, nothing survives a restart), "
        "mongodb://… or mongodb+srv://…",
    )
    database: str = Field("cam_tasks", description="Database name when the URI names none.")
    server_selection_timeout_s: float = Field(
        5.0, gt=0, description="How long a request waits for an unreachable server (then 503)."
    )


class QueueSettings(_Section):
    """The dispatcher of this process."""

    worker_count: int = Field(5, ge=1, description="Tasks run at once by this process.")
    buffer_size: int = Field(
        10, ge=0, description="Claimed tasks waiting for a worker, beyond the running ones."
    )
    lease_s: float = Field(
        30.0, gt=0, description="A claim's lifetime without renewal; then others rescue it."
    )
    heartbeat_interval_s: float = Field(5.0, gt=0, description="How often leases are renewed.")
    progress_interval_s: float = Field(
        0.5, gt=0, description="Most frequent progress write per task."
    )
    rescue_interval_s: float = Field(10.0, gt=0, description="How often expired leases are swept.")
    poll_interval_s: float = Field(
        1.0, gt=0, description="Longest idle sleep before looking for work submitted elsewhere."
    )
    shutdown_timeout_s: float = Field(
        30.0, ge=0, description="Grace period for running tasks on stop; then they are handed back."
    )

    @model_validator(mode="after")
    def _lease_outlives_heartbeats(self) -> QueueSettings:
        if self.lease_s < 2 * self.heartbeat_interval_s:
            raise ValueError("lease_s must be at least twice heartbeat_interval_s")
        return self


class RetrySettings(_Section):
    """Backoff between attempts of a failing task."""

    backoff_base_s: float = Field(1.0, gt=0, description="Delay after the first failure.")
    backoff_max_s: float = Field(300.0, gt=0, description="Cap on any delay.")
    jitter: float = Field(0.2, ge=0, le=1, description="Up to this fraction is added at random.")


class TaskSettings(_Section):
    """Task defaults and limits."""

    retention_s: float | None = Field(
        7 * 24 * 3600.0,
        gt=0,
        description="Finished tasks are deleted this long after they end (None: keep forever).",
    )
    max_pending: int | None = Field(
        None, ge=1, description="Submits beyond this many pending tasks answer 429 (None: no cap)."
    )


class ApiSettings(_Section):
    """The HTTP API."""

    prefix: str = Field("/api/v1/cam", description="Where the API is mounted.")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Larger request bodies get 413.")


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    format: Literal["text", "json"] = Field("text", description="text, or one JSON object a line.")


class StaticProviderSettings(_Section):
    """An asset provider that serves an inventory file (JSON or TOML)."""

    name: str = Field(min_length=1, description="Provider name used in task params.")
    inventory: str = Field(
        description="Path (relative to the config file) or builtin:<file> for a packaged one."
    )
    latency_s: float = Field(0.0, ge=0, description="Simulated API latency per page.")


class ProviderSettings(_Section):
    static: list[StaticProviderSettings] = Field(default_factory=list)


class Settings(BaseSettings):
    """Everything cam_tasks reads from the outside world."""

    model_config = SettingsConfigDict(
        env_prefix="CAM_TASKS_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    server: ServerSettings = ServerSettings()
    mongo: MongoSettings = MongoSettings()
    queue: QueueSettings = QueueSettings()
    retry: RetrySettings = RetrySettings()
    tasks: TaskSettings = TaskSettings()
    api: ApiSettings = ApiSettings()
    log: LogSettings = LogSettings()
    providers: ProviderSettings = ProviderSettings()
    #: Directory relative paths in the file are resolved against (set by load_settings).
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file, whose values arrive as init arguments.
        return env_settings, init_settings


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read ``path`` (TOML) if given, apply ``CAM_TASKS_*`` variables, validate.

    Raises ConfigurationError naming the file and every invalid key.
    """
    data: dict[str, Any] = {}
    base_dir = Path.cwd()
    if path is not None:
        file = Path(path)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError(f"cannot read config file {file}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"config file {file} is not valid TOML: {exc}") from None
        base_dir = file.resolve().parent
    data.update(overrides)
    data.setdefault("base_dir", base_dir)
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        where = f" in {path}" if path is not None else ""
        raise ConfigurationError(f"invalid settings{where}: {problems}") from None
