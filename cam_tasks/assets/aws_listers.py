"""What the AWS provider lists, type by type: which service and paginator, and how an API item
becomes an :class:`Asset` (stable id, ``Name`` tag, state, tags, the attributes a CAM user wants,
volatile fields left out so an unchanged resource stays unchanged).

Every lister is an async generator of pages run by :class:`~cam_tasks.assets.aws.AwsAssetProvider`,
which translates botocore's errors for the whole page, the extra calls made for it (tags,
bucket locations) included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from cam_tasks.assets.protocol import AssetPage
from cam_tasks.domain import Asset

__all__ = ["AWS_ASSET_TYPES", "LISTERS", "SERVICE_OF", "Lister"]

AWS_ASSET_TYPES: frozenset[str] = frozenset(
    {"ec2", "ebs", "vpc", "security_group", "rds", "s3", "elb", "lambda"}
)

#: The botocore service each asset type is listed with.
SERVICE_OF = {
    "ec2": "ec2",
    "ebs": "ec2",
    "vpc": "ec2",
    "security_group": "ec2",
    "rds": "rds",
    "s3": "s3",
    "elb": "elbv2",
    "lambda": "lambda",
}


def _tags(items: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in items or () if "Key" in t}


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != [] and v != {}}


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


class Lister:
    """What a lister needs: the client of the scope's service and the page helpers."""

    def __init__(self, client: Any, region: str, asset_type: str) -> None:
        self.client = client
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
        return await method(**kw)


async def _ec2(lister: Lister) -> AsyncIterator[AssetPage]:
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


async def _ebs(lister: Lister) -> AsyncIterator[AssetPage]:
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


async def _vpc(lister: Lister) -> AsyncIterator[AssetPage]:
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


async def _security_group(lister: Lister) -> AsyncIterator[AssetPage]:
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


async def _rds(lister: Lister) -> AsyncIterator[AssetPage]:
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


async def _elb(lister: Lister) -> AsyncIterator[AssetPage]:
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


async def _lambda(lister: Lister) -> AsyncIterator[AssetPage]:
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


async def _s3(lister: Lister) -> AsyncIterator[AssetPage]:
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
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NoSuchTagSet":
                    raise
                tagging = {}  # a bucket without tags
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


LISTERS: dict[str, Callable[[Lister], AsyncIterator[AssetPage]]] = {
    "ec2": _ec2,
    "ebs": _ebs,
    "vpc": _vpc,
    "security_group": _security_group,
    "rds": _rds,
    "s3": _s3,
    "elb": _elb,
    "lambda": _lambda,
}
