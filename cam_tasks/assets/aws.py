"""The AWS provider (``pip install cam_tasks[aws]``): lists assets with aiobotocore.

aiobotocore is botocore made async: the same request signing, credential chain, retry modes
and paginators as boto3. Every list call goes through a paginator; throttling and transient
errors (``Throttling``, ``RequestLimitExceeded``, 5xx, connection resets) are retried by
botocore's ``standard`` retry mode inside the page (exponential backoff with jitter), and
surface as :class:`RetryableError` once its attempts are used up. Access denied to one service
or region raises :class:`ScopeDeniedError` (the sync reports the scope as skipped).

Credentials come from the standard chain (environment, shared ``profile``, container or
instance role); with ``role_arn`` (``{account_id}`` is replaced by the task's account id) the
provider assumes that role per account and caches the temporary credentials until shortly
before they expire. No credential is ever put in an asset, a message or a log line; AWS error
messages are redacted of access key ids before they are passed on.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from cam_tasks.assets.aws_listers import AWS_ASSET_TYPES, LISTERS, SERVICE_OF, Lister
from cam_tasks.assets.protocol import ScopeDeniedError
from cam_tasks.domain import Asset, PermanentError, RetryableError

__all__ = ["AWS_ASSET_TYPES", "AwsAssetProvider"]

#: Error codes that mean "not allowed here" (the scope is skipped, not the sync failed).
_DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "OptInRequired",
        "AuthorizationError",
    }
)
#: Error codes botocore already retried with backoff: the task may try again later.
_TRANSIENT = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
    }
)
_ACCESS_KEY = re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{12,}\b")
#: Temporary credentials are renewed this long before they expire.
_RENEW_BEFORE = timedelta(minutes=5)


def _redact(text: str) -> str:
    return _ACCESS_KEY.sub("<redacted>", text)


class AwsAssetProvider:
    """An :class:`~cam_tasks.assets.protocol.AssetProvider` over AWS accounts.

    ``regions``: the regions to list (None: every region enabled for the account, from EC2
    ``DescribeRegions``). ``endpoint_url``: one endpoint for every service (tests, AWS-compatible
    servers). ``profile``: a shared-config profile. ``role_arn``: a role to assume per account,
    ``{account_id}`` replaced by the task's. ``max_attempts``: botocore's attempts per call
    (retries of throttling and transient errors, with backoff). Safe for concurrent syncs.
    """

    kind = "aws"

    def __init__(
        self,
        name: str,
        *,
        regions: Sequence[str] | None = None,
        endpoint_url: str | None = None,
        profile: str | None = None,
        role_arn: str | None = None,
        max_attempts: int = 5,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 60.0,
        session_factory: Callable[[], AioSession] | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.name = name
        self.asset_types = AWS_ASSET_TYPES
        self._regions = list(regions) if regions else None
        self._endpoint_url = endpoint_url
        self._profile = profile
        self._role_arn = role_arn
        self._session_factory = session_factory or (lambda: AioSession(profile=profile))
        self._session: AioSession | None = None
        self._config = AioConfig(
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            s3={"addressing_style": "path"} if endpoint_url else None,
        )
        self._assumed: dict[str, tuple[dict[str, str], datetime]] = {}
        self._assume_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"AwsAssetProvider({self.name!r}, regions={self._regions!r})"

    # -- the protocol ----------------------------------------------------------------------

    async def regions(self, account_id: str) -> list[str]:
        """The configured regions, or the account's enabled ones (EC2 ``DescribeRegions``)."""
        if self._regions is not None:
            return list(self._regions)
        home = "us-east-1"
        async with await self._client(account_id, "ec2", home) as ec2:
            answer = await self._call(
                "ec2", home, ec2.describe_regions, scope_denied=False, AllRegions=False
            )
        return sorted(r["RegionName"] for r in answer.get("Regions", []))

    async def list_assets(
        self, account_id: str, region: str, asset_type: str
    ) -> AsyncIterator[list[Asset]]:
        """Pages of the scope's assets, one per API page. PermanentError for an unknown type."""
        lister = LISTERS.get(asset_type)
        if lister is None:
            raise PermanentError(f"provider {self.name!r} cannot list {asset_type!r}")
        service = SERVICE_OF[asset_type]
        async with await self._client(account_id, service, region) as client:
            pages = lister(Lister(client, region, asset_type))
            while True:
                try:
                    page = await self._guard(service, region, anext(pages), scope_denied=True)
                except StopAsyncIteration:
                    return
                yield page

    # -- clients, credentials, errors ------------------------------------------------------

    async def _client(
        self, account_id: str, service: str, region: str
    ) -> AbstractAsyncContextManager[Any]:
        if self._session is None:
            self._session = self._session_factory()
        credentials = await self._credentials(account_id)
        return self._session.create_client(  # type: ignore[no-any-return]
            service,
            region_name=region,
            endpoint_url=self._endpoint_url,
            config=self._config,
            **credentials,
        )

    async def _credentials(self, account_id: str) -> dict[str, str]:
        if self._role_arn is None:
            return {}
        async with self._assume_lock:  # one AssumeRole per account at a time
            cached = self._assumed.get(account_id)
            if cached is not None and cached[1] - _RENEW_BEFORE > datetime.now(UTC):
                return cached[0]
            assert self._session is not None
            role = self._role_arn.replace("{account_id}", account_id)
            async with self._session.create_client(
                "sts", region_name="us-east-1", endpoint_url=self._endpoint_url, config=self._config
            ) as sts:
                answer = await self._call(
                    "sts",
                    "us-east-1",
                    sts.assume_role,
                    scope_denied=False,
                    RoleArn=role,
                    RoleSessionName=f"cam-tasks-{self.name}"[:64],
                )
            raw = answer["Credentials"]
            credentials = {
                "aws_access_key_id": raw["AccessKeyId"],
                "aws_secret_access_key": raw["SecretAccessKey"],
                "aws_session_token": raw["SessionToken"],
            }
            self._assumed[account_id] = (credentials, raw["Expiration"])
            return credentials

    async def _call(
        self,
        service: str,
        region: str,
        method: Callable[..., Any],
        *,
        scope_denied: bool,
        **kw: Any,
    ) -> Any:
        async def call() -> Any:
            return await method(**kw)

        return await self._guard(service, region, call(), scope_denied=scope_denied)

    async def _guard(self, service: str, region: str, awaitable: Any, *, scope_denied: bool) -> Any:
        """Await ``awaitable``, translating botocore's errors once, here."""
        where = f"provider {self.name!r}: {service} in {region}"
        try:
            return await awaitable
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "Unknown"))
            message = _redact(str(error.get("Message", "")))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            text = f"{where}: {code}: {message}".rstrip(": ")
            if code in _DENIED or status == 403:
                if scope_denied:
                    raise ScopeDeniedError(f"{service} in {region}: {code}") from None
                raise PermanentError(text) from None
            if code in _TRANSIENT or status >= 500 or status == 429:
                raise RetryableError(f"{text} (still failing after retries)") from None
            raise PermanentError(text) from None
        except (NoCredentialsError, NoRegionError) as exc:
            raise PermanentError(f"{where}: {exc}") from None
        except (BotoConnectionError, HTTPClientError) as exc:
            raise RetryableError(f"{where}: {type(exc).__name__}") from None
        except BotoCoreError as exc:
            raise RetryableError(f"{where}: {type(exc).__name__}: {_redact(str(exc))}") from None
