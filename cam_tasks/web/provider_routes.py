"""``GET /providers``: what this service can sync from, for clients and the dashboard's submit
form. Answers ``data.providers``: one entry per registered provider, sorted by name, with its
``name``, ``kind`` (``static``, ``aws``, ``aliyun``, or a plug-in's) and ``asset_types``
(sorted). Authenticated like every read; any role may call it. Nothing about credentials or
endpoints is shown.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from cam_tasks.assets import ProviderRegistry, provider_kind
from cam_tasks.domain import Permission
from cam_tasks.web.auth import principal_of
from cam_tasks.web.envelope import success_response
from cam_tasks.web.operations import Operation, Reply, documented
from cam_tasks.web.requests import reject_query

__all__ = ["PROVIDERS_KEY", "ProviderListView", "ProviderView", "provider_routes"]

#: The provider registry the handler lists.
PROVIDERS_KEY: Final = web.AppKey("cam_tasks.providers", ProviderRegistry)

provider_routes = web.RouteTableDef()


class ProviderView(BaseModel):
    """One provider: its name (a task's ``provider``), kind and the asset types it lists."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: str
    asset_types: list[str]


class ProviderListView(BaseModel):
    """``data`` of ``GET /providers``."""

    model_config = ConfigDict(frozen=True)

    providers: list[ProviderView]


@provider_routes.get("/providers")
@documented(
    Operation(
        "list_providers",
        "assets",
        "What can be synced",
        "Every configured asset provider: its `name` (a task's `provider`), its `kind` "
        "(`static`, `aws`, `aliyun`, or a plug-in's) and the `asset_types` it lists. "
        "Takes no query (400).",
        (Reply(200, "The providers, sorted by name.", ProviderListView),),
        errors=frozenset({400}),
    )
)
async def list_providers(request: web.Request) -> web.Response:
    """Every registered provider; 400 for any query parameter."""
    principal_of(request).require(Permission.READ)
    reject_query(request)
    registry = request.app[PROVIDERS_KEY]
    view = ProviderListView(
        providers=[
            ProviderView(
                name=provider.name,
                kind=provider_kind(provider),
                asset_types=sorted(provider.asset_types),
            )
            for provider in sorted(registry, key=lambda p: p.name)
        ]
    )
    return success_response(view.model_dump(mode="json"))
