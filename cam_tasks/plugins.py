"""Executors and asset providers installed as separate packages, found through entry points.

A plug-in package declares, in its ``pyproject.toml``::

    [project.entry-points."cam_tasks.executors"]
    export_assets = "cam_export.executor:ExportAssetsExecutor"

    [project.entry-points."cam_tasks.providers"]
    mycloud = "cam_mycloud:make_provider"

Each entry point names either a ready object (an executor or provider instance) or a factory:
a class or function called with no argument, or with one :class:`PluginContext` argument when
it takes one (to reach the settings, the provider registry or the inventory).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from cam_tasks.domain import ConfigurationError

__all__ = ["EXECUTOR_GROUP", "PROVIDER_GROUP", "Plugin", "PluginContext", "discover", "load"]

logger = logging.getLogger(__name__)

EXECUTOR_GROUP = "cam_tasks.executors"
PROVIDER_GROUP = "cam_tasks.providers"


@dataclass(frozen=True, slots=True)
class PluginContext:
    """What a plug-in factory may use: ``settings`` (cam_tasks.Settings), ``providers`` (the
    provider registry), ``inventory`` (the asset inventory store) and ``clock``."""

    settings: Any
    providers: Any
    inventory: Any
    clock: Any


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


def _instantiate(target: Any, context: PluginContext) -> Any:
    if not (inspect.isclass(target) or inspect.isroutine(target)):
        return target  # a ready instance
    factory: Callable[..., Any] = target
    parameters = inspect.signature(factory).parameters
    required = [
        p
        for p in parameters.values()
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    return factory(context) if required else factory()


def load(group: str, context: PluginContext) -> list[Any]:
    """Import and build every plug-in of ``group``. ConfigurationError names the entry point
    and the package of any plug-in that fails to import or build."""
    loaded = []
    for ep in _entry_points(group):
        dist = ep.dist.name if ep.dist is not None else "?"
        try:
            loaded.append(_instantiate(ep.load(), context))
        except Exception as exc:
            raise ConfigurationError(
                f"plug-in {ep.name!r} ({group}) from package {dist!r} failed to load: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        logger.info("loaded plug-in %s from %s", ep.name, dist, extra={"group": group})
    return loaded
