"""One small cloud per provider, behind one interface, for the provider contract suite:
create, retag and delete an asset of one type, and build the provider that lists them."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Protocol

from cam_tasks.assets import AssetProvider, StaticAssetProvider


class Cloud(Protocol):
    """``asset_type`` in ``regions`` of ``account_id``; changes are visible to the next
    ``provider()``'s listings (a real cloud's are to the same provider)."""

    asset_type: str
    regions: tuple[str, str]
    account_id: str

    def provider(self) -> AssetProvider: ...

    def create(self, region: str, name: str) -> str:
        """Create an asset; its id as the provider reports it."""
        ...

    def retag(self, region: str, asset_id: str) -> None: ...

    def delete(self, region: str, asset_id: str) -> None: ...


@dataclass
class StaticCloud:
    asset_type: str = "ecs"
    regions: tuple[str, str] = ("cn-shenzhen", "cn-beijing")
    account_id: str = "123"
    _assets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def provider(self) -> AssetProvider:
        regions = {r: {self.asset_type: self._assets.get(r, [])} for r in self.regions}
        inventory = {"accounts": {self.account_id: {"regions": regions}}}
        return StaticAssetProvider("static", inventory, page_size=2)

    def create(self, region: str, name: str) -> str:
        asset_id = f"i-{next(self._ids)}"
        self._assets.setdefault(region, []).append({"id": asset_id, "name": name})
        return asset_id

    def retag(self, region: str, asset_id: str) -> None:
        for entry in self._assets[region]:
            if entry["id"] == asset_id:
                entry["attributes"] = {"tags": {"env": "prod"}}

    def delete(self, region: str, asset_id: str) -> None:
        self._assets[region] = [e for e in self._assets[region] if e["id"] != asset_id]


@dataclass
class AwsCloud:
    """VPCs in moto (each region also holds its default VPC, which the provider lists too)."""

    url: str
    asset_type: str = "vpc"
    regions: tuple[str, str] = ("us-east-1", "eu-west-1")
    account_id: str = "123456789012"
    _cidrs: itertools.count[int] = field(default_factory=lambda: itertools.count(10))

    def provider(self) -> AssetProvider:
        from cam_tasks.assets.aws import AwsAssetProvider
        from tests.assets import aws_cloud

        return AwsAssetProvider(
            "aws",
            regions=list(self.regions),
            endpoint_url=self.url,
            session_factory=aws_cloud.session,
        )

    def _ec2(self, region: str) -> Any:
        from tests.assets import aws_cloud

        return aws_cloud.client(self.url, "ec2", region)

    def create(self, region: str, name: str) -> str:
        vpc = self._ec2(region).create_vpc(
            CidrBlock=f"10.{next(self._cidrs)}.0.0/16",
            TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": name}]}],
        )
        return str(vpc["Vpc"]["VpcId"])

    def retag(self, region: str, asset_id: str) -> None:
        self._ec2(region).create_tags(Resources=[asset_id], Tags=[{"Key": "env", "Value": "prod"}])

    def delete(self, region: str, asset_id: str) -> None:
        self._ec2(region).delete_vpc(VpcId=asset_id)


@dataclass
class AliyunCloud:
    """ECS instances in the Alibaba Cloud fake."""

    fake: Any
    url: str
    asset_type: str = "ecs"
    regions: tuple[str, str] = ("cn-hangzhou", "cn-beijing")
    account_id: str = "1688"
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def provider(self) -> AssetProvider:
        from cam_tasks.assets.aliyun import AliyunAssetProvider, AliyunCredentials

        return AliyunAssetProvider(
            "aliyun",
            endpoint=self.url,
            credentials=lambda: AliyunCredentials("test-key-id", "test-key-secret"),
            backoff_base_s=0.0,
        )

    def create(self, region: str, name: str) -> str:
        asset_id = f"i-{next(self._ids):04}"
        self.fake.add(region, "ecs", asset_id, name, InstanceType="ecs.g7.large")
        return asset_id

    def retag(self, region: str, asset_id: str) -> None:
        self.fake.find(region, "ecs", asset_id)["Tags"] = {
            "Tag": [{"TagKey": "env", "TagValue": "prod"}]
        }

    def delete(self, region: str, asset_id: str) -> None:
        self.fake.remove(region, "ecs", asset_id)
