"""Settings: one TOML file, overridden by ``CAM_TASKS_*`` environment variables.

Nested keys use ``__`` in the environment: ``[queue] worker_count`` is
``CAM_TASKS_QUEUE__WORKER_COUNT``. Lists and tables (``providers``) take JSON there. The
environment wins over the file, the file over the defaults below. Configuration enters the
program here and in :mod:`cam_tasks.module` only; lower layers take explicit arguments.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from cam_tasks.domain import DEFAULT_QUEUE, QUEUE_NAME_PATTERN, ConfigurationError

__all__ = [
    "BUILTIN_EXECUTORS",
    "AliyunProviderSettings",
    "ApiSettings",
    "AuthSettings",
    "AwsProviderSettings",
    "CorsSettings",
    "ExecutorSettings",
    "LimitSettings",
    "LogSettings",
    "MongoSettings",
    "MonitoringSettings",
    "QueueDefinition",
    "QueueSettings",
    "RetrySettings",
    "ScheduleSettings",
    "SchedulerSettings",
    "ServerSettings",
    "Settings",
    "StaticProviderSettings",
    "TaskSettings",
    "TokenSettings",
    "TracingSettings",
    "WorkerSettings",
    "load_settings",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    """Where ``cam-tasks serve`` listens."""

    host: str = Field("127.0.0.1", description="Interface to bind; 0.0.0.0 in containers.")
    port: int = Field(8001, ge=0, le=65535, description="TCP port.")
    workers: bool = Field(
        True,
        description="Run workers and the scheduler beside the API. false: API only (submits are "
        "validated and stored; worker processes run them). `serve --no-workers` sets false.",
    )


class WorkerSettings(_Section):
    """What ``cam-tasks worker`` serves (workers and the scheduler, no HTTP API), and its small
    health and metrics server."""

    host: str = Field(
        "127.0.0.1", description="Interface of the health/metrics server; 0.0.0.0 in containers."
    )
    port: int = Field(
        8002,
        ge=0,
        le=65535,
        description="Port of /health/live, /health/ready and /metrics (0: no server).",
    )
    health: bool = Field(
        True, description="Serve the small health/metrics server (false: no server)."
    )
    queues: list[str] | None = Field(
        None,
        min_length=1,
        description="Queues this process serves (unset: every declared queue). "
        "`--queues a,b` overrides it. Also applies to `serve` with workers.",
    )


#: A task type cam_tasks brings an executor for.
BuiltinExecutor = Literal["sync_assets", "discover_assets"]
#: The built-in executors, in the order they register.
BUILTIN_EXECUTORS: tuple[BuiltinExecutor, ...] = ("sync_assets", "discover_assets")


class ExecutorSettings(_Section):
    """Which executors this process registers (it only accepts and runs registered types)."""

    builtin: list[BuiltinExecutor] = Field(
        default_factory=lambda: list(BUILTIN_EXECUTORS),
        description="Built-in executors to register ([] none): a process registering exactly "
        "one type claims only tasks of that type and answers 422 to submits of others.",
    )


class MongoSettings(_Section):
    """The task store."""

    uri: str = Field(
        "memory://",
        description="memory:// (in process, nothing survives a restart), "
        "mongodb://… or mongodb+srv://…",
    )
    database: str = Field("cam_tasks", description="Database name when the URI names none.")
    server_selection_timeout_s: float = Field(
        5.0, gt=0, description="How long an operation waits to find a server (then 503)."
    )
    operation_timeout_s: float = Field(
        10.0,
        gt=0,
        description="How long an operation waits for each reply from the server, so a server "
        "that stops answering (paused, network black hole) also gives 503 instead of a hung "
        "request. A timeoutMS in the URI replaces it and server_selection_timeout_s.",
    )
    allow_memory: bool = Field(
        True,
        description="Accept an in-process store (memory://, mongomock://), where nothing "
        "survives a restart and no other instance sees the tasks. false (the container image's "
        "setting): start-up fails with ConfigurationError on such a URI, so a forgotten "
        "CAM_TASKS_MONGO__URI cannot lose tasks silently.",
    )


class QueueSettings(_Section):
    """The dispatcher of this process (its queues are declared under ``[queues.NAME]``)."""

    worker_count: int = Field(
        5,
        ge=1,
        description="Concurrency of the default queue when [queues.default] does not set it.",
    )
    buffer_size: int = Field(
        0,
        ge=0,
        description="Ignored since 0.2 (kept so older files load): tasks are claimed only for a "
        "free worker slot, so none waits claimed in a buffer.",
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
    fair_claim_every: int = Field(
        10,
        ge=0,
        description="Every Nth claim of this process takes the oldest due task whatever its "
        "priority, so a due task is among the next N x (due tasks older than it + 1) claims "
        "(docs/scheduling.md). 0: strict priority (lower priorities can starve under load).",
    )

    @model_validator(mode="after")
    def _lease_outlives_heartbeats(self) -> QueueSettings:
        if self.lease_s < 2 * self.heartbeat_interval_s:
            raise ValueError("lease_s must be at least twice heartbeat_interval_s")
        return self


class QueueDefinition(_Section):
    """One named queue (``[queues.NAME]``): tasks of a queue run in worker slots of their own,
    so a busy queue never starves another; priorities order tasks within a queue."""

    concurrency: int = Field(
        5, ge=1, le=10_000, description="Tasks of this queue one process runs at once."
    )


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
    body_read_timeout_s: float = Field(
        30.0,
        gt=0,
        allow_inf_nan=False,
        description="A request body that has not all arrived this long after the API started "
        "reading it gets 408.",
    )


class TokenSettings(_Section):
    """One bearer token and the principal it authenticates (keyed by the principal's name).

    Give the token itself (``token``, at least 16 characters; best from the environment) or
    only its SHA-256 (``token_sha256``, 64 hex digits), which a file may hold safely.
    """

    token: SecretStr | None = Field(None, description="The bearer token (a secret).")
    token_sha256: str | None = Field(
        None, pattern=r"^[0-9a-fA-F]{64}$", description="Hex SHA-256 of the token instead."
    )
    projects: list[str] = Field(
        default_factory=list,
        description="Projects it works in; the first receives its submissions. "
        "Required unless role is admin.",
    )
    role: Literal["admin", "operator", "viewer"] = Field(
        "viewer", description="admin: everything; operator: its projects; viewer: read only."
    )

    @model_validator(mode="after")
    def _one_secret(self) -> TokenSettings:
        if (self.token is None) == (self.token_sha256 is None):
            raise ValueError("give exactly one of token and token_sha256")
        if self.token is not None and len(self.token.get_secret_value()) < 16:
            raise ValueError("token must have at least 16 characters")
        return self


class AuthSettings(_Section):
    """Who may use the HTTP API (see docs/security.md)."""

    allow_anonymous: bool = Field(
        False,
        description="Serve requests without credentials as the admin 'anonymous'. Only for a "
        "trusted network or behind a gateway that authenticates; logged at start-up.",
    )
    tokens: dict[str, TokenSettings] = Field(
        default_factory=dict,
        description="Principal name -> bearer token and grants; from the environment as "
        "JSON in CAM_TASKS_AUTH__TOKENS (see config.example.toml).",
    )
    public_paths: list[str] = Field(
        default_factory=list,
        description="API route templates (relative to the API prefix) served without "
        "authentication.",
    )


class LimitSettings(_Section):
    """Per-principal limits on the HTTP API (see docs/security.md)."""

    submit_rate_per_s: float | None = Field(
        None, gt=0, description="Submits per second per principal, per instance (None: no limit)."
    )
    submit_burst: int = Field(10, ge=1, description="Submits a principal may make at once.")
    max_pending_per_principal: int | None = Field(
        None, ge=1, description="Pending tasks one principal may have (None: no cap)."
    )
    params_max_depth: int = Field(10, ge=1, description="Deepest nesting of params (422 past it).")
    params_max_keys: int = Field(
        10_000, ge=1, description="Most keys and array items in params (422 past it)."
    )


class CorsSettings(_Section):
    """Cross-origin browser access to the HTTP API. Off while ``origins`` is empty."""

    origins: list[str] = Field(
        default_factory=list,
        description='Allowed origins, exactly ("https://console.example.com"); "*" only '
        "without allow_credentials.",
    )
    allow_credentials: bool = Field(
        False, description="Let browsers send cookies/credentials cross-origin."
    )

    @model_validator(mode="after")
    def _never_any_origin_with_credentials(self) -> CorsSettings:
        if self.allow_credentials and "*" in self.origins:
            raise ValueError('origin "*" cannot be combined with allow_credentials')
        return self


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    format: Literal["text", "json"] = Field("text", description="text, or one JSON object a line.")


class MonitoringSettings(_Section):
    """Health probes and the Prometheus scrape, mounted on the host application by setup()."""

    health: bool = Field(True, description="Serve GET /health/live and /health/ready.")
    metrics: bool = Field(True, description="Serve the Prometheus metrics at metrics_path.")
    metrics_path: str = Field(
        "/metrics", pattern=r"^/\S*$", description="Where the metrics are served."
    )
    ready_timeout_s: float = Field(
        2.0, gt=0, description="Longest a readiness check (the database ping) may take."
    )


class StaticProviderSettings(_Section):
    """An asset provider that serves an inventory file (JSON or TOML)."""

    name: str = Field(min_length=1, description="Provider name used in task params.")
    inventory: str = Field(
        description="Path (relative to the config file) or builtin:<file> for a packaged one."
    )
    latency_s: float = Field(0.0, ge=0, description="Simulated API latency per page.")


class AwsProviderSettings(_Section):
    """An AWS provider (``pip install cam_tasks[aws]``; docs/providers.md). Credentials come from
    the standard AWS chain (environment, shared profile, container/instance role), never from
    this file."""

    name: str = Field(min_length=1, description="Provider name used in task params.")
    regions: list[str] | None = Field(
        None, min_length=1, description="Regions to list (default: every enabled region)."
    )
    endpoint_url: str | None = Field(
        None, description="One endpoint for every service (tests, AWS-compatible endpoints)."
    )
    profile: str | None = Field(None, description="Shared config/credentials profile.")
    role_arn: str | None = Field(
        None,
        pattern=r"^arn:aws[a-z-]*:iam::",
        description="Role assumed per account; {account_id} is replaced by the task's.",
    )
    max_attempts: int = Field(
        5, ge=1, description="Attempts per API call (throttling and 5xx retried with backoff)."
    )


class AliyunProviderSettings(_Section):
    """An Alibaba Cloud provider (``pip install cam_tasks[aliyun]``; docs/providers.md).
    Credentials come from the SDK's default chain, or from the environment variables named
    here; never from this file."""

    name: str = Field(min_length=1, description="Provider name used in task params.")
    regions: list[str] | None = Field(
        None, min_length=1, description="Regions to list (default: ECS DescribeRegions)."
    )
    endpoint: str | None = Field(
        None, description="One endpoint for every service, e.g. http://127.0.0.1:9000 (tests)."
    )
    access_key_id_env: str | None = Field(
        None, description="Environment variable holding the AccessKey id (default: SDK chain)."
    )
    access_key_secret_env: str | None = Field(
        None, description="Environment variable holding the AccessKey secret."
    )
    security_token_env: str | None = Field(
        None, description="Environment variable holding an STS token, if any."
    )
    max_attempts: int = Field(
        5, ge=1, description="Attempts per API call (throttling and 5xx retried with backoff)."
    )

    @model_validator(mode="after")
    def _key_pair(self) -> AliyunProviderSettings:
        if (self.access_key_id_env is None) != (self.access_key_secret_env is None):
            raise ValueError("give both access_key_id_env and access_key_secret_env, or neither")
        return self


class ProviderSettings(_Section):
    static: list[StaticProviderSettings] = Field(default_factory=list)
    aws: list[AwsProviderSettings] = Field(default_factory=list)
    aliyun: list[AliyunProviderSettings] = Field(default_factory=list)


class SchedulerSettings(_Section):
    """The scheduler of this process: fires due schedules (see docs/scheduling.md)."""

    poll_interval_s: float = Field(
        5.0, gt=0, description="Longest sleep before looking for schedules changed elsewhere."
    )
    misfire: Literal["fire_once", "skip"] = Field(
        "fire_once",
        description="A fire time found late (everything was down): fire_once fires one task and "
        "continues after now; skip only moves on.",
    )
    misfire_grace_s: float = Field(
        60.0, ge=0, description="How late a fire time may be found before it counts as missed."
    )


class TracingSettings(_Section):
    """OpenTelemetry spans of submit, claim and execution (docs/operations.md, "Tracing")."""

    enabled: bool = Field(
        False,
        description="Record spans through the global (or given) tracer provider and store the "
        "submitter's trace context with each task, so its execution joins the caller's trace. "
        "Needs the extra: pip install 'cam_tasks[otel]'.",
    )


class ScheduleSettings(_Section):
    """A schedule declared in the file: created at start-up, or updated to match."""

    name: str = Field(min_length=1, description="Unique name (letters, digits, '.', '_', '-').")
    expression: str = Field(description="Cron: five fields, or @hourly/@daily/@weekly/…")
    timezone: str = Field("UTC", description="IANA time zone the expression is read in.")
    type: str = Field(min_length=1, description="Task type to fire.")
    params: dict[str, Any] = Field(default_factory=dict, description="The task's params.")
    priority: int | str = Field("normal", description="low, normal, high, urgent, or 0 to 3.")
    active: bool | None = Field(
        None, description="Unset: new schedules start active, existing ones keep their state."
    )


class Settings(BaseSettings):
    """Everything cam_tasks reads from the outside world."""

    model_config = SettingsConfigDict(
        env_prefix="CAM_TASKS_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    server: ServerSettings = ServerSettings()
    worker: WorkerSettings = WorkerSettings()
    executors: ExecutorSettings = ExecutorSettings()
    mongo: MongoSettings = MongoSettings()
    queue: QueueSettings = QueueSettings()
    retry: RetrySettings = RetrySettings()
    tasks: TaskSettings = TaskSettings()
    api: ApiSettings = ApiSettings()
    auth: AuthSettings = AuthSettings()
    limits: LimitSettings = LimitSettings()
    cors: CorsSettings = CorsSettings()
    log: LogSettings = LogSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    providers: ProviderSettings = ProviderSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    tracing: TracingSettings = TracingSettings()
    schedules: list[ScheduleSettings] = Field(default_factory=list)
    queues: dict[str, QueueDefinition] = Field(
        default_factory=dict,
        description="Named queues, [queues.NAME] concurrency = N. The default queue always "
        "exists (its concurrency is [queue] worker_count unless declared here).",
    )
    concurrency_limits: dict[str, int] = Field(
        default_factory=dict,
        description="Key pattern -> limit: at most that many tasks whose concurrency_key matches "
        'the pattern (fnmatch: "assets:aliyun:*"; the longest matching pattern wins) run at '
        "once across all instances.",
    )
    #: Directory relative paths in the file are resolved against (set by load_settings).
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    @model_validator(mode="after")
    def _check_queues(self) -> Settings:
        pattern = re.compile(QUEUE_NAME_PATTERN)
        bad = [name for name in self.queues if not pattern.fullmatch(name)]
        if bad:
            raise ValueError(
                f"queue names must match {QUEUE_NAME_PATTERN}: {', '.join(map(repr, bad))}"
            )
        selected = self.worker.queues or []
        bad = [name for name in selected if not pattern.fullmatch(name)]
        if bad:
            raise ValueError(
                f"[worker] queues must match {QUEUE_NAME_PATTERN}: {', '.join(map(repr, bad))}"
            )
        limits = [key for key, limit in self.concurrency_limits.items() if limit < 1 or not key]
        if limits:
            raise ValueError(f"concurrency_limits need a key pattern and a limit >= 1: {limits}")
        return self

    def queue_concurrency(self) -> dict[str, int]:
        """Every declared queue and its concurrency, the default queue included."""
        declared = {name: queue.concurrency for name, queue in self.queues.items()}
        declared.setdefault(DEFAULT_QUEUE, self.queue.worker_count)
        return declared

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
