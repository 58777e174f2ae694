"""Executors and asset providers installed as separate packages, found through entry points.

A plug-in package declares, in its ``pyproject.toml``::

    [project.entry-points."cam_tasks.executors"]
    export_assets = "cam_export.executor:ExportAssetsExecutor"

    [project.entry-points."cam_tasks.providers"]
    mycloud = "cam_mycloud:make_provider"

Each entry point names either a ready object (an executor or provider instance) or a factory:
a class or function called with no argument, or with one :class:`PluginContext` argument when
it takes one (to reach the settings, the provider registry, the inventory, the clock or the
shared HTTP session). Executors passed to ``setup()``/``CamTasks`` may be factories the same
way (:func:`build`). Every executor is checked as it is registered
(:func:`cam_tasks.executor.check_executor`): a mistake stops start-up with a ConfigurationError
naming the plug-in, never a task that fails later.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, TypeAlias

import aiohttp

from cam_tasks.domain import CamTasksError, Clock, ConfigurationError
from cam_tasks.executor import TaskExecutor, check_executor

if TYPE_CHECKING:
    from cam_tasks.assets import ProviderRegistry
    from cam_tasks.config import Settings
    from cam_tasks.repository import AssetInventory

__all__ = [
    "EXECUTOR_GROUP",
    "PROVIDER_GROUP",
    "ExecutorFactory",
    "Plugin",
    "PluginContext",
    "SharedHttpSession",
    "build",
    "discover",
    "load",
]

logger = logging.getLogger(__name__)

EXECUTOR_GROUP = "cam_tasks.executors"
PROVIDER_GROUP = "cam_tasks.providers"


class SharedHttpSession:
    """One :class:`aiohttp.ClientSession` shared by every executor and provider of a runtime
    (one connection pool, closed with the runtime).

    :meth:`session` opens it on first use, which must happen inside the running event loop (in
    ``execute``, not in a factory); the runtime's ``close()`` closes it. Not thread-safe.
    """

    __slots__ = ("_closed", "_session")

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def session(self) -> aiohttp.ClientSession:
        """The shared session, opened now if needed. CamTasksError once the runtime closed."""
        if self._closed:
            raise CamTasksError("the runtime is closed: its HTTP session is gone")
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        """Close the session if it was opened. Idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()


@dataclass(frozen=True, slots=True)
class PluginContext:
    """What the runtime shares with executor and provider factories (entry-point plug-ins and
    factories passed to ``setup()``/``CamTasks`` alike):

    - ``settings``: the runtime's :class:`cam_tasks.Settings`;
    - ``providers``: the asset provider registry (every provider of the runtime);
    - ``inventory``: the asset inventory (:class:`cam_tasks.AssetInventory`);
    - ``clock``: the runtime's clock (tz-aware UTC ``now()``);
    - ``http``: the runtime's :class:`SharedHttpSession`.
    """

    settings: Settings
    providers: ProviderRegistry
    inventory: AssetInventory
    clock: Clock
    http: SharedHttpSession


#: Something ``setup()``/``CamTasks`` build an executor with: called with a
#: :class:`PluginContext` when it takes an argument, else with none (a class counts).
ExecutorFactory: TypeAlias = Callable[[PluginContext], TaskExecutor] | Callable[[], TaskExecutor]


@dataclass(frozen=True, slots=True)
class Plugin:
    """One discovered entry point: its group, name, target (``module:attr``) and package."""

    group: str
    name: str
    target: str
    distribution: str | None

    def __str__(self) -> str:
        where = f" ({self.distribution})" if self.distribution else ""
        return f"{self.group}: {self.name} = {self.target}{where}"


def _entry_points(group: str) -> Iterator[EntryPoint]:
    yield from sorted(entry_points(group=group), key=lambda ep: ep.name)


def discover() -> list[Plugin]:
    """Every installed plug-in entry point, without importing anything."""
    found = []
    for group in (EXECUTOR_GROUP, PROVIDER_GROUP):
        for ep in _entry_points(group):
            dist = ep.dist.name if ep.dist is not None else None
            found.append(Plugin(group, ep.name, ep.value, dist))
    return found


def _is_factory(target: object) -> bool:
    """A class, a function or a partial is called to get the object; anything else is it."""
    return inspect.isclass(target) or inspect.isroutine(target) or isinstance(target, partial)


def _name(target: object) -> str:
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None) or repr(target)
    return f"{module}.{qualname}" if module else qualname


def _takes_context(parameter: inspect.Parameter) -> bool:
    """True unless the parameter is annotated as something other than a PluginContext."""
    annotation = parameter.annotation
    if annotation is parameter.empty or annotation is Any or annotation is PluginContext:
        return True
    return isinstance(annotation, str) and annotation.split(".")[-1] in ("PluginContext", "Any")


def _describe(parameter: inspect.Parameter) -> str:
    annotation = parameter.annotation
    if annotation is parameter.empty:
        return parameter.name
    shown = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    return f"{parameter.name}: {shown}"


def build(target: Any, context: PluginContext, *, what: str) -> Any:
    """``target`` itself when it is a ready object; when it is a factory (a class, function or
    ``functools.partial``), what calling it returns: with ``context`` when it has one required
    parameter (unannotated, or annotated ``PluginContext``), else with no argument.

    ConfigurationError, naming ``what`` and the factory, when the factory asks for something
    else, is async, or raises."""
    if not _is_factory(target):
        return target
    name = _name(target)
    try:
        parameters = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):  # no signature to read (a builtin): call it bare
        parameters = []
    required = [
        p
        for p in parameters
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if len(required) > 1 or (required and not _takes_context(required[0])):
        wanted = ", ".join(_describe(p) for p in required)
        raise ConfigurationError(
            f"{what}: the factory {name} must take no argument or one PluginContext, but it "
            f"requires ({wanted}); pass an instance, or a factory of the runtime's context"
        )
    if inspect.iscoroutinefunction(target):
        raise ConfigurationError(
            f"{what}: the factory {name} is async; it must return the object itself"
        )
    try:
        return target(context) if required else target()
    except CamTasksError:
        raise
    except Exception as exc:
        raise ConfigurationError(
            f"{what}: the factory {name} failed: {type(exc).__name__}: {exc}"
        ) from exc


def load(group: str, context: PluginContext) -> list[Any]:
    """Import and build every plug-in of ``group``; executors are also checked
    (:func:`check_executor`). ConfigurationError names the entry point and the package of any
    plug-in that fails to import, to build or to pass the check."""
    loaded = []
    for ep in _entry_points(group):
        dist = ep.dist.name if ep.dist is not None else "?"
        origin = f"plug-in {ep.name!r} ({group}) from package {dist!r}"
        try:
            target = ep.load()
        except Exception as exc:
            raise ConfigurationError(
                f"{origin} failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            built = build(target, context, what=origin)
        except ConfigurationError:
            raise
        except CamTasksError as exc:
            raise ConfigurationError(f"{origin} failed to build: {exc}") from exc
        if group == EXECUTOR_GROUP:
            check_executor(built, origin=origin)
        loaded.append(built)
        logger.info("loaded plug-in %s from %s", ep.name, dist, extra={"group": group})
    return loaded
