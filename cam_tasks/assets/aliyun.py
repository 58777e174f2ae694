"""The Alibaba Cloud provider (``pip install cam_tasks[aliyun]``): lists assets with the official
SDKs (``alibabacloud-ecs20140526``, ``-vpc20160428``, ``-rds20140815``, ``-slb20140515`` and
``alibabacloud-oss-v2``), through their async calls.

Every list call pages (``PageNumber``/``PageSize``, or ``NextToken`` where the API prefers it)
and reports the API's ``TotalCount`` with each page (:class:`AssetPage`), so the sync can show
a percentage. Throttling and transient errors (``Throttling``, ``Throttling.User``,
``ServiceUnavailable``, 5xx, connection errors) are retried inside the page with exponential
backoff and surface as :class:`RetryableError` once ``max_attempts`` are used up; access denied
raises :class:`ScopeDeniedError` (the sync reports the scope as skipped).

Credentials: the SDK's default chain (``ALIBABA_CLOUD_ACCESS_KEY_ID``… in the environment,
the credentials file, an ECS RAM role, OIDC), or :func:`env_credentials` naming the environment
variables that hold a key pair. They are never put in an asset, a message or a log line.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from alibabacloud_credentials.client import Client as CredentialClient
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_oss_v2.exceptions import RequestError as OssRequestError
from alibabacloud_tea_openapi.utils_models import Config
from darabonba.exceptions import RetryError
from darabonba.runtime import RuntimeOptions

from cam_tasks.assets.aliyun_listings import ALIYUN_ASSET_TYPES, CLIENTS, LISTINGS, PAGE_SIZE, dig
from cam_tasks.assets.protocol import AssetPage, ScopeDeniedError
from cam_tasks.domain import Asset, ConfigurationError, PermanentError, RetryableError

__all__ = ["ALIYUN_ASSET_TYPES", "AliyunAssetProvider", "AliyunCredentials", "env_credentials"]

_TRANSIENT = frozenset(
    {
        "Throttling",
        "Throttling.User",
        "Throttling.Api",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "Request.Timeout",
    }
)


@dataclass(frozen=True, slots=True)
class AliyunCredentials:
    """An AccessKey pair (and STS token). ``repr`` never shows the secret or the token."""

    access_key_id: str
    access_key_secret: str
    security_token: str | None = None

    def __repr__(self) -> str:
        return f"AliyunCredentials(access_key_id={self.access_key_id[:4]}…)"


def env_credentials(
    id_variable: str, secret_variable: str, token_variable: str | None = None
) -> Callable[[], AliyunCredentials]:
    """Credentials read, at each use, from the environment variables with those names.
    ConfigurationError (naming the variable, never a value) when one is unset."""

    def read() -> AliyunCredentials:
        values = {}
        for variable in (id_variable, secret_variable):
            value = os.environ.get(variable)
            if not value:
                raise ConfigurationError(f"environment variable {variable} is not set")
            values[variable] = value
        token = os.environ.get(token_variable) if token_variable else None
        return AliyunCredentials(values[id_variable], values[secret_variable], token or None)

    return read


class AliyunAssetProvider:
    """An :class:`~cam_tasks.assets.protocol.AssetProvider` over Alibaba Cloud accounts.

    ``regions``: the regions to list (None: ECS ``DescribeRegions``). ``endpoint``: one
    endpoint for every service, ``http://host:port`` or ``host`` (https), for tests.
    ``credentials``: a callable returning :class:`AliyunCredentials` (None: the SDK's default
    chain). ``max_attempts`` per call, with backoff from ``backoff_base_s`` doubling up to
    ``backoff_max_s`` (plus jitter). One provider serves one account (the credentials'): the
    task's ``account_id`` names it in the inventory. Safe for concurrent syncs.
    """

    kind = "aliyun"

    def __init__(
        self,
        name: str,
        *,
        regions: Sequence[str] | None = None,
        endpoint: str | None = None,
        credentials: Callable[[], AliyunCredentials] | None = None,
        max_attempts: int = 5,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 20.0,
        timeout_s: float = 30.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.name = name
        self.asset_types = ALIYUN_ASSET_TYPES
        self._regions = list(regions) if regions else None
        self._protocol, self._endpoint = "https", None
        if endpoint:
            parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
            self._protocol, self._endpoint = parts.scheme, parts.netloc
        self._credentials = credentials
        self._chain: CredentialClient | None = None
        self._max_attempts = max_attempts
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._timeout_ms = int(timeout_s * 1000)

    def __repr__(self) -> str:
        return f"AliyunAssetProvider({self.name!r}, regions={self._regions!r})"

    async def regions(self, account_id: str) -> list[str]:
        """The configured regions, or those ECS ``DescribeRegions`` lists."""
        if self._regions is not None:
            return list(self._regions)
        client = self._client("ecs", "cn-hangzhou")
        request = ecs_models.DescribeRegionsRequest()
        body = await self._call(
            "ecs",
            "cn-hangzhou",
            lambda: client.describe_regions_with_options_async(request, self._runtime()),
            scope_denied=False,
        )
        return [r["RegionId"] for r in dig(body, "Regions", "Region") or []]

    async def list_assets(
        self, account_id: str, region: str, asset_type: str
    ) -> AsyncIterator[list[Asset]]:
        """Pages of the scope's assets, one per API page, with the API's total count."""
        if asset_type == "oss":
            async for page in self._oss(region):
                yield page
            return
        listing = LISTINGS.get(asset_type)
        if listing is None:
            raise PermanentError(f"provider {self.name!r} cannot list {asset_type!r}")
        client = self._client(listing.client, region)
        method = getattr(client, listing.method)
        page_number, token = 1, None
        while True:
            if listing.next_token:
                request = listing.request(region_id=region, max_results=PAGE_SIZE, next_token=token)
            else:
                request = listing.request(
                    region_id=region, page_number=page_number, page_size=PAGE_SIZE
                )

            def call(request: Any = request) -> Awaitable[Any]:
                return method(request, self._runtime())  # type: ignore[no-any-return]

            body = await self._call(listing.client, region, call, scope_denied=True)
            items = dig(body, *listing.items) or []
            total = body.get(listing.total)
            yield AssetPage(
                (self._asset(region, asset_type, *listing.to_asset(item)) for item in items),
                scope_total=int(total) if total is not None else None,
            )
            if listing.next_token:
                token = body.get("NextToken") or None
                if token is None:
                    return
            else:
                if not items or total is None or page_number * PAGE_SIZE >= int(total):
                    return
                page_number += 1

    # -- plumbing ----------------------------------------------------------------------------

    def _asset(
        self,
        region: str,
        asset_type: str,
        asset_id: str,
        name: str,
        state: Any,
        tags: dict[str, str],
        attributes: dict[str, Any],
    ) -> Asset:
        kept = {k: v for k, v in attributes.items() if v is not None and v != [] and v != ""}
        if state is not None:
            kept["state"] = state
        kept["tags"] = tags
        return Asset(
            asset_id=asset_id,
            asset_type=asset_type,
            region=region,
            name=name or tags.get("Name", ""),
            attributes=kept,
        )

    def _config(self, region: str) -> Config:
        config = Config(
            region_id=region,
            endpoint=self._endpoint,
            protocol=self._protocol,
            read_timeout=self._timeout_ms,
            connect_timeout=self._timeout_ms,
        )
        if self._credentials is None:
            if self._chain is None:  # the SDK's default chain, resolved once and refreshed by it
                self._chain = CredentialClient()
            config.credential = self._chain
        else:
            keys = self._credentials()
            config.access_key_id = keys.access_key_id
            config.access_key_secret = keys.access_key_secret
            config.security_token = keys.security_token
        return config

    def _client(self, service: str, region: str) -> Any:
        return CLIENTS[service](self._config(region))

    @staticmethod
    def _runtime() -> RuntimeOptions:
        return RuntimeOptions(autoretry=False)  # retries are ours: per page, with backoff

    async def _call(
        self,
        service: str,
        region: str,
        call: Callable[[], Awaitable[Any]],
        *,
        scope_denied: bool,
    ) -> dict[str, Any]:
        """The answer's body as the API documents it, retrying transient errors with backoff;
        errors translated once, here."""
        where = f"provider {self.name!r}: {service} in {region}"
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = await call()
                body: dict[str, Any] = response.body.to_map()
                return body
            except Exception as raised:
                code, status, network = _classify(raised)
                if code.startswith(("Forbidden", "NoPermission")) or status == 403:
                    if scope_denied:
                        raise ScopeDeniedError(f"{service} in {region}: {code}") from None
                    raise PermanentError(f"{where}: {code}") from None
                transient = (
                    network
                    or code in _TRANSIENT
                    or code.startswith("Throttling")
                    or status >= 500
                    or status == 429
                )
                if not transient:
                    if code:
                        raise PermanentError(f"{where}: {code}") from None
                    raise
                if attempt == self._max_attempts:
                    what = code or "connection failed"
                    raise RetryableError(
                        f"{where}: {what} (still failing after {attempt} attempts)"
                    ) from None
            delay_s = min(self._backoff_max_s, self._backoff_base_s * 2 ** (attempt - 1))
            await asyncio.sleep(delay_s * (1 + random.random() / 5))  # jitter: spread retries
        raise AssertionError("unreachable")

    async def _oss(self, region: str) -> AsyncIterator[AssetPage]:
        # Buckets are global to the account: each region's scope keeps the buckets located in it.
        import alibabacloud_oss_v2 as oss
        from alibabacloud_oss_v2.aio import AsyncClient

        if self._credentials is None:
            provider: Any = oss.credentials.EnvironmentVariableCredentialsProvider()
        else:
            keys = self._credentials()
            provider = oss.credentials.StaticCredentialsProvider(
                keys.access_key_id, keys.access_key_secret, keys.security_token
            )
        config = oss.config.load_default()
        config.credentials_provider = provider
        config.region = region
        if self._endpoint is not None:
            config.endpoint = f"{self._protocol}://{self._endpoint}"
        config.retryer = oss.retry.NopRetryer()  # retries are ours, as for the RPC APIs
        async with AsyncClient(config) as client:
            marker = None
            while True:
                request = oss.models.ListBucketsRequest(marker=marker, max_keys=PAGE_SIZE)

                def call(request: Any = request) -> Awaitable[Any]:
                    return _OssAnswer.wrap(client.list_buckets(request))

                body = await self._call("oss", region, call, scope_denied=True)
                yield AssetPage(
                    self._asset(
                        region,
                        "oss",
                        f"acs:oss:*:*:{b.name}",
                        b.name,
                        None,
                        {},
                        {
                            "bucket": b.name,
                            "storage_class": b.storage_class,
                            "creation_date": str(b.creation_date or "") or None,
                        },
                    )
                    for b in body["buckets"]
                    if b.region == region or b.location == f"oss-{region}"
                )
                if not body["truncated"] or not body["next_marker"]:
                    return
                marker = body["next_marker"]


def _classify(raised: BaseException) -> tuple[str, int, bool]:
    """``(code, HTTP status, network failure)`` of an SDK error. The SDKs wrap: OSS's
    OperationError holds the service's error or a RequestError (network), Tea's
    UnretryableException holds a RetryError when the request never got an answer."""
    exc: BaseException = raised
    network = False
    for _ in range(4):  # unwrap a few layers at most
        network = network or isinstance(exc, (OSError, TimeoutError, OssRequestError, RetryError))
        inner = getattr(exc, "inner_exception", None)
        unwrap = getattr(exc, "unwrap", None)
        if isinstance(inner, BaseException):
            exc = inner
        elif callable(unwrap) and isinstance(unwrapped := unwrap(), BaseException):
            exc = unwrapped
        else:
            break
    network = network or isinstance(exc, (OSError, TimeoutError, OssRequestError, RetryError))
    code = str(getattr(exc, "code", "") or getattr(raised, "code", "") or "")
    status = int(getattr(exc, "status_code", 0) or getattr(raised, "status_code", 0) or 0)
    return code, status, network and not code


class _OssAnswer:
    """Gives an OSS result the ``.body.to_map()`` shape of the RPC SDKs, for :meth:`_call`."""

    def __init__(self, result: Any) -> None:
        self.body = self
        self._result = result

    def to_map(self) -> dict[str, Any]:
        r = self._result
        return {
            "buckets": list(r.buckets or []),
            "truncated": bool(r.is_truncated),
            "next_marker": r.next_marker,
        }

    @staticmethod
    async def wrap(pending: Awaitable[Any]) -> _OssAnswer:
        return _OssAnswer(await pending)
