"""What the Alibaba Cloud provider lists, type by type: which SDK client, request model and
``*_with_options_async`` call, where the items are in the documented answer, which field holds
the total, how paging works, and how an item becomes an asset's id, name, state, tags and
attributes (volatile fields left out, so an unchanged resource stays unchanged)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_rds20140815 import models as rds_models
from alibabacloud_rds20140815.client import Client as RdsClient
from alibabacloud_slb20140515 import models as slb_models
from alibabacloud_slb20140515.client import Client as SlbClient
from alibabacloud_tea_openapi.utils_models import Config
from alibabacloud_vpc20160428 import models as vpc_models
from alibabacloud_vpc20160428.client import Client as VpcClient

__all__ = ["ALIYUN_ASSET_TYPES", "CLIENTS", "LISTINGS", "PAGE_SIZE", "Listing", "dig"]

ALIYUN_ASSET_TYPES: frozenset[str] = frozenset(
    {"ecs", "disk", "vpc", "vswitch", "security_group", "rds", "slb", "oss"}
)
PAGE_SIZE = 100  # the largest page every one of these APIs accepts


@dataclass(frozen=True, slots=True)
class Listing:
    """How one asset type is listed: its client, request, call, where the items are in the
    answer, how they map to assets, and its paging (``next_token``: NextToken paging)."""

    client: str
    request: Callable[..., Any]
    method: str
    items: tuple[str, ...]
    total: str
    to_asset: Callable[[Mapping[str, Any]], tuple[str, str, Any, dict[str, str], dict[str, Any]]]
    next_token: bool = False


def _tags(item: Mapping[str, Any]) -> dict[str, str]:
    raw = item.get("Tags") or {}
    if isinstance(raw, Mapping):
        raw = raw.get("Tag", [])
    return {
        str(t.get("TagKey", t.get("Key"))): str(t.get("TagValue", t.get("Value", "")))
        for t in raw
        if t.get("TagKey", t.get("Key")) is not None
    }


def dig(item: Mapping[str, Any], *path: str) -> Any:
    value: Any = item
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _ecs(i: Mapping[str, Any]) -> tuple[str, str, Any, dict[str, str], dict[str, Any]]:
    return (
        i["InstanceId"],
        i.get("InstanceName", ""),
        i.get("Status"),
        _tags(i),
        {
            "instance_type": i.get("InstanceType"),
            "cpu": i.get("Cpu"),
            "memory_mib": i.get("Memory"),
            "os_name": i.get("OSName"),
            "image_id": i.get("ImageId"),
            "zone_id": i.get("ZoneId"),
            "vpc_id": dig(i, "VpcAttributes", "VpcId"),
            "vswitch_id": dig(i, "VpcAttributes", "VSwitchId"),
            "private_ips": dig(i, "VpcAttributes", "PrivateIpAddress", "IpAddress"),
            "public_ips": dig(i, "PublicIpAddress", "IpAddress"),
            "charge_type": i.get("InstanceChargeType"),
            "creation_time": i.get("CreationTime"),
        },
    )


def _disk(d: Mapping[str, Any]) -> tuple[str, str, Any, dict[str, str], dict[str, Any]]:
    return (
        d["DiskId"],
        d.get("DiskName", ""),
        d.get("Status"),
        _tags(d),
        {
            "size_gib": d.get("Size"),
            "category": d.get("Category"),
            "type": d.get("Type"),
            "encrypted": d.get("Encrypted"),
            "instance_id": d.get("InstanceId") or None,
            "zone_id": d.get("ZoneId"),
            "creation_time": d.get("CreationTime"),
        },
    )


def _vpc(v: Mapping[str, Any]) -> tuple[str, str, Any, dict[str, str], dict[str, Any]]:
    return (
        v["VpcId"],
        v.get("VpcName", ""),
        v.get("Status"),
        _tags(v),
        {"cidr_block": v.get("CidrBlock"), "is_default": v.get("IsDefault")},
    )


def _vswitch(v: Mapping[str, Any]) -> tuple[str, str, Any, dict[str, str], dict[str, Any]]:
    return (
        v["VSwitchId"],
        v.get("VSwitchName", ""),
        v.get("Status"),
        _tags(v),
        {"cidr_block": v.get("CidrBlock"), "vpc_id": v.get("VpcId"), "zone_id": v.get("ZoneId")},
    )


def _security_group(g: Mapping[str, Any]) -> tuple[str, str, Any, dict[str, str], dict[str, Any]]:
    return (
        g["SecurityGroupId"],
        g.get("SecurityGroupName", ""),
        None,
        _tags(g),
        {
            "vpc_id": g.get("VpcId"),
            "description": g.get("Description"),
            "type": g.get("SecurityGroupType"),
        },
    )


def _rds(d: Mapping[str, Any]) -> tuple[str, str, Any, dict[str, str], dict[str, Any]]:
    return (
        d["DBInstanceId"],
        d.get("DBInstanceDescription", ""),
        d.get("DBInstanceStatus"),
        _tags(d),
        {
            "engine": d.get("Engine"),
            "engine_version": d.get("EngineVersion"),
            "instance_class": d.get("DBInstanceClass"),
            "vpc_id": d.get("VpcId"),
            "zone_id": d.get("ZoneId"),
            "net_type": d.get("InstanceNetworkType"),
        },
    )


def _slb(b: Mapping[str, Any]) -> tuple[str, str, Any, dict[str, str], dict[str, Any]]:
    return (
        b["LoadBalancerId"],
        b.get("LoadBalancerName", ""),
        b.get("LoadBalancerStatus"),
        _tags(b),
        {
            "address": b.get("Address"),
            "address_type": b.get("AddressType"),
            "network_type": b.get("NetworkType"),
            "vpc_id": b.get("VpcId") or None,
            "spec": b.get("LoadBalancerSpec"),
        },
    )


LISTINGS: dict[str, Listing] = {
    "ecs": Listing(
        "ecs",
        ecs_models.DescribeInstancesRequest,
        "describe_instances_with_options_async",
        ("Instances", "Instance"),
        "TotalCount",
        _ecs,
        next_token=True,
    ),
    "disk": Listing(
        "ecs",
        ecs_models.DescribeDisksRequest,
        "describe_disks_with_options_async",
        ("Disks", "Disk"),
        "TotalCount",
        _disk,
    ),
    "security_group": Listing(
        "ecs",
        ecs_models.DescribeSecurityGroupsRequest,
        "describe_security_groups_with_options_async",
        ("SecurityGroups", "SecurityGroup"),
        "TotalCount",
        _security_group,
    ),
    "vpc": Listing(
        "vpc",
        vpc_models.DescribeVpcsRequest,
        "describe_vpcs_with_options_async",
        ("Vpcs", "Vpc"),
        "TotalCount",
        _vpc,
    ),
    "vswitch": Listing(
        "vpc",
        vpc_models.DescribeVSwitchesRequest,
        "describe_vswitches_with_options_async",
        ("VSwitches", "VSwitch"),
        "TotalCount",
        _vswitch,
    ),
    "rds": Listing(
        "rds",
        rds_models.DescribeDBInstancesRequest,
        "describe_dbinstances_with_options_async",
        ("Items", "DBInstance"),
        "TotalRecordCount",
        _rds,
    ),
    "slb": Listing(
        "slb",
        slb_models.DescribeLoadBalancersRequest,
        "describe_load_balancers_with_options_async",
        ("LoadBalancers", "LoadBalancer"),
        "TotalCount",
        _slb,
    ),
}

CLIENTS: dict[str, Callable[[Config], Any]] = {
    "ecs": EcsClient,
    "vpc": VpcClient,
    "rds": RdsClient,
    "slb": SlbClient,
}
