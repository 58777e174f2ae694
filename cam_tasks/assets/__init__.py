"""Assets: the provider seam, the provider registry, built-in providers and the sync engine."""

from cam_tasks.assets.protocol import AssetProvider
from cam_tasks.assets.registry import ProviderRegistry, check_asset_types
from cam_tasks.assets.static import StaticAssetProvider
from cam_tasks.assets.sync import DEFAULT_BATCH_SIZE, sync_scope

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "AssetProvider",
    "ProviderRegistry",
    "StaticAssetProvider",
    "check_asset_types",
    "sync_scope",
]
