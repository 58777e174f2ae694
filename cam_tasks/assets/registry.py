"""The provider registry: which clouds this process can list assets from.

Validating a task's ``provider`` against it happens at submit time, inside pydantic: each asset
executor is built with a registry and derives its own ``params_model`` from it, whose validators
call :meth:`ProviderRegistry.check_name` and :func:`check_asset_types`. Those raise
``PydanticCustomError`` (a ``ValueError``), so ``ExecutorRegistry.validate`` turns an unknown
provider or asset type into an ``InvalidParamsError`` with field details such as
``{"loc": ["params", "provider"], "type": "unknown_provider", "msg": "unknown provider 'x';
known providers: aliyun"}`` — a 422 at the HTTP layer, before anything is stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from pydantic_core import PydanticCustomError

from cam_tasks.assets.protocol import AssetProvider
from cam_tasks.domain import ConfigurationError

__all__ = ["PLUGIN_KIND", "ProviderRegistry", "check_asset_types", "provider_kind"]

#: The kind shown for a provider that does not name its own.
PLUGIN_KIND = "plugin"


class ProviderRegistry:
    """Maps provider names to providers. Registration happens at start-up; lookups are
    lock-free reads of a dict."""

    def __init__(self, providers: Iterable[AssetProvider] = ()) -> None:
        self._providers: dict[str, AssetProvider] = {}
        for provider in providers:
            self.register(provider)

    def register(self, provider: AssetProvider) -> AssetProvider:
        """Register ``provider`` under its ``name``. ConfigurationError on a duplicate name or a
        provider without a name, asset types, ``regions`` or ``list_assets``."""
        name = getattr(provider, "name", None)
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"{provider!r} has no provider name")
        asset_types = getattr(provider, "asset_types", None)
        if not isinstance(asset_types, frozenset) or not all(
            isinstance(t, str) and t for t in asset_types
        ):
            raise ConfigurationError(f"provider {name!r}: asset_types must be a frozenset of str")
        for method in ("regions", "list_assets"):
            if not callable(getattr(provider, method, None)):
                raise ConfigurationError(f"provider {name!r} has no {method}()")
        if name in self._providers:
            raise ConfigurationError(f"provider {name!r} registered twice")
        self._providers[name] = provider
        return provider

    def get(self, name: str) -> AssetProvider:
        """The provider called ``name``; ConfigurationError naming the known ones otherwise.

        For code that looks a provider up; task parameters are checked by :meth:`check_name`.
        """
        try:
            return self._providers[name]
        except KeyError:
            raise ConfigurationError(
                f"provider {name!r} is not registered; known providers: {self._known()}"
            ) from None

    def check_name(self, name: str) -> str:
        """For pydantic validators: ``name`` when registered, else PydanticCustomError
        ``unknown_provider`` whose message lists the known providers."""
        if name not in self._providers:
            raise PydanticCustomError(
                "unknown_provider",
                "unknown provider {provider}; known providers: {known}",
                {"provider": repr(name), "known": self._known()},
            )
        return name

    @property
    def names(self) -> tuple[str, ...]:
        """Registered provider names, sorted."""
        return tuple(sorted(self._providers))

    def __contains__(self, name: object) -> bool:
        return name in self._providers

    def __iter__(self) -> Iterator[AssetProvider]:
        return iter(self._providers.values())

    def __len__(self) -> int:
        return len(self._providers)

    def _known(self) -> str:
        return ", ".join(self.names) or "(none)"


def check_asset_types(provider: AssetProvider, asset_types: Sequence[str]) -> list[str]:
    """For pydantic validators: ``asset_types`` when ``provider`` lists every one of them, else
    PydanticCustomError ``unknown_asset_type`` naming the unknown and the supported types."""
    unknown = [t for t in asset_types if t not in provider.asset_types]
    if unknown:
        raise PydanticCustomError(
            "unknown_asset_type",
            "unknown asset type(s) {unknown} for provider {provider}; supported: {supported}",
            {
                "unknown": ", ".join(repr(t) for t in unknown),
                "provider": repr(provider.name),
                "supported": ", ".join(sorted(provider.asset_types)),
            },
        )
    return list(asset_types)


def provider_kind(provider: AssetProvider) -> str:
    """The provider's ``kind`` attribute (``"static"``, ``"aws"``…) when it has a non-empty
    string one, else :data:`PLUGIN_KIND`."""
    kind = getattr(provider, "kind", None)
    return kind if isinstance(kind, str) and kind else PLUGIN_KIND
