"""Assets: the provider seam, the provider registry, built-in providers and the sync engine.

The cloud providers (:mod:`cam_tasks.assets.aws`, :mod:`cam_tasks.assets.aliyun`) are not
imported here: each needs its optional extra (``cam_tasks[aws]``, ``cam_tasks[aliyun]``).
"""

from cam_tasks.assets.protocol import AssetPage, AssetProvider, ScopeDeniedError
from cam_tasks.assets.registry import (
    PLUGIN_KIND,
    ProviderRegistry,
    check_asset_types,
    provider_kind,
)
from cam_tasks.assets.static import StaticAssetProvider
from cam_tasks.assets.sync import DEFAULT_BATCH_SIZE, PageProgress, sync_scope

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "PLUGIN_KIND",
    "AssetPage",
    "AssetProvider",
    "PageProgress",
    "ProviderRegistry",
    "ScopeDeniedError",
    "StaticAssetProvider",
    "check_asset_types",
    "provider_kind",
    "sync_scope",
]
