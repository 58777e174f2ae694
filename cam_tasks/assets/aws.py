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
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
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

from cam_tasks.assets.protocol import AssetPage, ScopeDeniedError
from cam_tasks.domain import Asset, PermanentError, RetryableError

__all__ = ["AWS_ASSET_TYPES", "AwsAssetProvider"]

#: Where the asset types live and which call lists them.
AWS_ASSET_TYPES: frozenset[str] = frozenset(
    {"ec2", "ebs", "vpc", "security_group", "rds", "s3", "elb", "lambda"}
)

_SERVICE = {
    "ec2": "ec2",
    "ebs": "ec2",
    "vpc": "ec2",
    "security_group": "ec2",
    "rds": "rds",
    "s3": "s3",
    "elb": "elbv2",
    "lambda": "lambda",
}

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


def _tags(items: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in items or () if "Key" in t}


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != [] and v != {}}


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


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
        lister = _LISTERS.get(asset_type)
        if lister is None:
            raise PermanentError(f"provider {self.name!r} cannot list {asset_type!r}")
        service = _SERVICE[asset_type]
        async with await self._client(account_id, service, region) as client:
            pages = lister(_Lister(self, client, service, region, asset_type))
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


class _Lister:
    """What a lister needs: the client of the scope's service and the page helpers."""

    def __init__(
        self, provider: AwsAssetProvider, client: Any, service: str, region: str, asset_type: str
    ) -> None:
        self.provider = provider
        self.client = client
        self.service = service
        self.region = region
        self.asset_type = asset_type

    def pages(self, operation: str, **kw: Any) -> AsyncIterator[dict[str, Any]]:
        return self.client.get_paginator(operation).paginate(**kw)  # type: ignore[no-any-return]

    def asset(
        self, asset_id: str, name: str, state: Any, tags: dict[str, str], **attrs: Any
    ) -> Asset:
        attributes = _drop_none({k: _iso(v) for k, v in attrs.items()})
        if state is not None:
            attributes["state"] = state
        attributes["tags"] = tags
        return Asset(
            asset_id=asset_id,
            asset_type=self.asset_type,
            region=self.region,
            name=tags.get("Name") or name,
            attributes=attributes,
        )

    async def call(self, method: Callable[..., Any], **kw: Any) -> Any:
        return await self.provider._call(self.service, self.region, method, scope_denied=True, **kw)


async def _ec2(lister: _Lister) -> AsyncIterator[AssetPage]:
    async for page in lister.pages("describe_instances"):
        yield AssetPage(
            lister.asset(
                i["InstanceId"],
                i["InstanceId"],
                i.get("State", {}).get("Name"),
                _tags(i.get("Tags")),
                instance_type=i.get("InstanceType"),
                image_id=i.get("ImageId"),
                vpc_id=i.get("VpcId"),
                subnet_id=i.get("SubnetId"),
                private_ip=i.get("PrivateIpAddress"),
                public_ip=i.get("PublicIpAddress"),
                availability_zone=i.get("Placement", {}).get("AvailabilityZone"),
                architecture=i.get("Architecture"),
                platform=i.get("PlatformDetails"),
                launch_time=i.get("LaunchTime"),
                security_groups=sorted(g["GroupId"] for g in i.get("SecurityGroups", [])),
            )
            for r in page.get("Reservations", [])
            for i in r.get("Instances", [])
        )


async def _ebs(lister: _Lister) -> AsyncIterator[AssetPage]:
    async for page in lister.pages("describe_volumes"):
        yield AssetPage(
            lister.asset(
                v["VolumeId"],
                v["VolumeId"],
                v.get("State"),
                _tags(v.get("Tags")),
                size_gib=v.get("Size"),
                volume_type=v.get("VolumeType"),
                iops=v.get("Iops"),
                encrypted=v.get("Encrypted"),
                availability_zone=v.get("AvailabilityZone"),
                snapshot_id=v.get("SnapshotId") or None,
                attached_to=sorted(a["InstanceId"] for a in v.get("Attachments", [])),
                create_time=v.get("CreateTime"),
            )
            for v in page.get("Volumes", [])
        )


async def _vpc(lister: _Lister) -> AsyncIterator[AssetPage]:
    async for page in lister.pages("describe_vpcs"):
        yield AssetPage(
            lister.asset(
                v["VpcId"],
                v["VpcId"],
                v.get("State"),
                _tags(v.get("Tags")),
                cidr_block=v.get("CidrBlock"),
                is_default=v.get("IsDefault"),
                owner_id=v.get("OwnerId"),
                instance_tenancy=v.get("InstanceTenancy"),
            )
            for v in page.get("Vpcs", [])
        )


async def _security_group(lister: _Lister) -> AsyncIterator[AssetPage]:
    async for page in lister.pages("describe_security_groups"):
        yield AssetPage(
            lister.asset(
                g["GroupId"],
                g.get("GroupName", g["GroupId"]),
                None,
                _tags(g.get("Tags")),
                group_name=g.get("GroupName"),
                description=g.get("Description"),
                vpc_id=g.get("VpcId"),
                ingress=g.get("IpPermissions"),
                egress=g.get("IpPermissionsEgress"),
            )
            for g in page.get("SecurityGroups", [])
        )


async def _rds(lister: _Lister) -> AsyncIterator[AssetPage]:
    async for page in lister.pages("describe_db_instances"):
        yield AssetPage(
            lister.asset(
                d.get("DBInstanceArn") or d["DBInstanceIdentifier"],
                d["DBInstanceIdentifier"],
                d.get("DBInstanceStatus"),
                _tags(d.get("TagList")),
                engine=d.get("Engine"),
                engine_version=d.get("EngineVersion"),
                instance_class=d.get("DBInstanceClass"),
                allocated_storage_gib=d.get("AllocatedStorage"),
                storage_type=d.get("StorageType"),
                multi_az=d.get("MultiAZ"),
                endpoint=d.get("Endpoint", {}).get("Address"),
                vpc_id=d.get("DBSubnetGroup", {}).get("VpcId"),
            )
            for d in page.get("DBInstances", [])
        )


async def _elb(lister: _Lister) -> AsyncIterator[AssetPage]:
    async for page in lister.pages("describe_load_balancers"):
        balancers = page.get("LoadBalancers", [])
        tags: dict[str, dict[str, str]] = {}
        for start in range(0, len(balancers), 20):  # DescribeTags takes at most 20 ARNs
            arns = [b["LoadBalancerArn"] for b in balancers[start : start + 20]]
            answer = await lister.call(lister.client.describe_tags, ResourceArns=arns)
            for d in answer.get("TagDescriptions", []):
                tags[d["ResourceArn"]] = _tags(d.get("Tags"))
        yield AssetPage(
            lister.asset(
                b["LoadBalancerArn"],
                b["LoadBalancerName"],
                b.get("State", {}).get("Code"),
                tags.get(b["LoadBalancerArn"], {}),
                type=b.get("Type"),
                scheme=b.get("Scheme"),
                vpc_id=b.get("VpcId"),
                dns_name=b.get("DNSName"),
                ip_address_type=b.get("IpAddressType"),
                availability_zones=sorted(z["ZoneName"] for z in b.get("AvailabilityZones", [])),
                created_time=b.get("CreatedTime"),
            )
            for b in balancers
        )


async def _lambda(lister: _Lister) -> AsyncIterator[AssetPage]:
    async for page in lister.pages("list_functions"):
        assets = []
        for f in page.get("Functions", []):
            answer = await lister.call(lister.client.list_tags, Resource=f["FunctionArn"])
            assets.append(
                lister.asset(
                    f["FunctionArn"],
                    f["FunctionName"],
                    f.get("State"),
                    dict(answer.get("Tags", {})),
                    runtime=f.get("Runtime"),
                    handler=f.get("Handler"),
                    memory_mib=f.get("MemorySize"),
                    timeout_s=f.get("Timeout"),
                    role=f.get("Role"),
                    package_type=f.get("PackageType"),
                    code_sha256=f.get("CodeSha256"),
                    architectures=f.get("Architectures"),
                )
            )
        yield AssetPage(assets)


def _bucket_region(answer: Mapping[str, Any]) -> str:
    # GetBucketLocation answers None for us-east-1 and "EU" for the oldest eu-west-1 buckets.
    location = answer.get("LocationConstraint")
    if not location:
        return "us-east-1"
    return "eu-west-1" if location == "EU" else str(location)


async def _s3(lister: _Lister) -> AsyncIterator[AssetPage]:
    # Buckets are global: every region's scope lists them all and keeps those located in it.
    client = lister.client
    async for page in lister.pages("list_buckets"):
        assets = []
        for b in page.get("Buckets", []):
            name = b["Name"]
            region = b.get("BucketRegion") or _bucket_region(
                await lister.call(client.get_bucket_location, Bucket=name)
            )
            if region != lister.region:
                continue
            try:
                tagging = await lister.call(client.get_bucket_tagging, Bucket=name)
            except PermanentError as exc:
                if "NoSuchTagSet" not in str(exc):
                    raise
                tagging = {}
            assets.append(
                lister.asset(
                    f"arn:aws:s3:::{name}",
                    name,
                    None,
                    _tags(tagging.get("TagSet")),
                    bucket=name,
                    creation_date=b.get("CreationDate"),
                )
            )
        yield AssetPage(assets)


_LISTERS: dict[str, Callable[[_Lister], AsyncIterator[AssetPage]]] = {
    "ec2": _ec2,
    "ebs": _ebs,
    "vpc": _vpc,
    "security_group": _security_group,
    "rds": _rds,
    "s3": _s3,
    "elb": _elb,
    "lambda": _lambda,
}
