"""GET /providers: every configured provider with its name, kind and asset types, for clients
and the dashboard's submit form; authenticated like every read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from cam_tasks.assets import ProviderRegistry, StaticAssetProvider
from cam_tasks.domain import Asset, ManualClock, Principal, Role
from cam_tasks.repository.memory import MemoryTaskRepository
from cam_tasks.service import TaskService
from cam_tasks.web import BearerTokenAuthenticator
from tests.web.helpers import PREFIX, START, MakeClient, assert_error, assert_success, make_registry

VIEWER_TOKEN = "viewer-token-0123456789"


class PluginProvider:
    """A plug-in's provider that names no kind of its own."""

    name = "mycloud"
    asset_types = frozenset({"bucket", "vm"})

    async def regions(self, account_id: str) -> list[str]:
        return ["r1"]

    async def list_assets(
        self, account_id: str, region: str, asset_type: str
    ) -> AsyncIterator[list[Asset]]:
        yield []


def registry() -> ProviderRegistry:
    inventory: dict[str, Any] = {
        "accounts": {"1": {"regions": {"cn-shenzhen": {"ecs": [], "rds": []}}}}
    }
    return ProviderRegistry([PluginProvider(), StaticAssetProvider("demo", inventory)])


async def client_for(make_client: MakeClient, **options: Any) -> Any:
    clock = ManualClock(START)
    service = TaskService(MemoryTaskRepository(clock=clock), make_registry(), clock=clock)
    return await make_client(service, providers=registry(), **options)


async def test_it_lists_every_provider_with_kind_and_asset_types(make_client: MakeClient) -> None:
    client = await client_for(make_client)
    data = await assert_success(await client.get(f"{PREFIX}/providers"))
    assert data == {
        "providers": [
            {"name": "demo", "kind": "static", "asset_types": ["ecs", "rds"]},
            {"name": "mycloud", "kind": "plugin", "asset_types": ["bucket", "vm"]},
        ]
    }


async def test_a_query_is_refused(make_client: MakeClient) -> None:
    client = await client_for(make_client)
    await assert_error(await client.get(f"{PREFIX}/providers?kind=aws"), 400, "bad_request")


async def test_it_needs_credentials_and_any_role_may_read_it(make_client: MakeClient) -> None:
    viewer = Principal(name="v", projects=("p",), role=Role.VIEWER)
    client = await client_for(
        make_client, authenticate=BearerTokenAuthenticator({VIEWER_TOKEN: viewer})
    )
    await assert_error(await client.get(f"{PREFIX}/providers"), 401, "unauthorized")
    answer = await client.get(
        f"{PREFIX}/providers", headers={"Authorization": f"Bearer {VIEWER_TOKEN}"}
    )
    assert len((await assert_success(answer))["providers"]) == 2
