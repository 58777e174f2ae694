"""A small fake of the Alibaba Cloud APIs the provider calls, as an aiohttp app on the loopback.

No emulator exists for Alibaba Cloud, so this answers the RPC-style actions (``DescribeRegions``,
``DescribeInstances``…, parameters in the query string, JSON bodies in the documented shape,
``PageNumber``/``PageSize`` or ``NextToken``/``MaxResults`` paging) and OSS ``ListBuckets``
(XML, ``marker``/``max-keys``). It records every request's action, region and page so tests
check what the SDK sent, and injects throttling and error answers on demand. It does not check
signatures: the SDK signs, the fake only reads.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

#: Asset type -> (action, the answer's list keys, id field, name field, state field).
SHAPES: dict[str, tuple[str, tuple[str, str], str, str, str | None]] = {
    "ecs": ("DescribeInstances", ("Instances", "Instance"), "InstanceId", "InstanceName", "Status"),
    "disk": ("DescribeDisks", ("Disks", "Disk"), "DiskId", "DiskName", "Status"),
    "security_group": (
        "DescribeSecurityGroups",
        ("SecurityGroups", "SecurityGroup"),
        "SecurityGroupId",
        "SecurityGroupName",
        None,
    ),
    "vpc": ("DescribeVpcs", ("Vpcs", "Vpc"), "VpcId", "VpcName", "Status"),
    "vswitch": (
        "DescribeVSwitches",
        ("VSwitches", "VSwitch"),
        "VSwitchId",
        "VSwitchName",
        "Status",
    ),
    "rds": (
        "DescribeDBInstances",
        ("Items", "DBInstance"),
        "DBInstanceId",
        "DBInstanceDescription",
        "DBInstanceStatus",
    ),
    "slb": (
        "DescribeLoadBalancers",
        ("LoadBalancers", "LoadBalancer"),
        "LoadBalancerId",
        "LoadBalancerName",
        "LoadBalancerStatus",
    ),
}
_BY_ACTION = {shape[0]: asset_type for asset_type, shape in SHAPES.items()}
_TOTAL_KEY = {"DescribeDBInstances": "TotalRecordCount"}


@dataclass
class AliyunFake:
    """The fake's state: ``resources[region][asset_type]`` (API-shaped items, in order),
    ``buckets`` (OSS, any region), and the faults: ``throttle[action]`` answers that many
    requests with ``Throttling.User``, ``deny`` actions answer ``Forbidden.RAM``, ``fail``
    maps an action to an error code answered every time (status 400)."""

    regions: list[str]
    resources: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    buckets: list[dict[str, str]] = field(default_factory=list)
    throttle: Counter[str] = field(default_factory=Counter)
    deny: set[str] = field(default_factory=set)
    fail: dict[str, str] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)

    def add(
        self,
        region: str,
        asset_type: str,
        asset_id: str,
        name: str = "",
        *,
        state: str | None = "Running",
        tags: dict[str, str] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Create a resource; returns its (mutable) API item."""
        if asset_type == "oss":
            bucket = {"Name": asset_id, "Region": region, "Location": f"oss-{region}"}
            self.buckets.append(bucket)
            return bucket
        _, _, id_field, name_field, state_field = SHAPES[asset_type]
        item: dict[str, Any] = {id_field: asset_id, name_field: name, **extra}
        if state_field is not None and state is not None:
            item[state_field] = state
        item["Tags"] = {"Tag": [{"TagKey": k, "TagValue": v} for k, v in (tags or {}).items()]}
        self.resources.setdefault(region, {}).setdefault(asset_type, []).append(item)
        return item

    def remove(self, region: str, asset_type: str, asset_id: str) -> None:
        if asset_type == "oss":
            self.buckets = [b for b in self.buckets if b["Name"] != asset_id]
            return
        id_field = SHAPES[asset_type][2]
        items = self.resources[region][asset_type]
        items[:] = [i for i in items if i[id_field] != asset_id]

    def find(self, region: str, asset_type: str, asset_id: str) -> dict[str, Any]:
        id_field = SHAPES[asset_type][2]
        return next(i for i in self.resources[region][asset_type] if i[id_field] == asset_id)

    # -- the HTTP side -----------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        if request.content_type == "application/x-www-form-urlencoded":
            params.update({k: str(v) for k, v in (await request.post()).items()})
        # The SDKs send the action as a query parameter (signature v2) or, with the v3
        # signature (ACS3-HMAC-SHA256) the current ones use, in the x-acs-action header.
        action = params.get("Action") or request.headers.get("x-acs-action")
        if action is not None:
            params["Action"] = action
        if action is None:  # OSS: GET / is ListBuckets
            return self._list_buckets(params)
        self.requests.append(
            {
                k: params[k]
                for k in ("Action", "RegionId", "PageNumber", "PageSize", "NextToken", "MaxResults")
                if k in params
            }
        )
        if action in self.deny:
            return _rpc_error(
                403, "Forbidden.RAM", "User not authorized to operate on the resource."
            )
        if self.throttle[action] > 0:
            self.throttle[action] -= 1
            return _rpc_error(
                400, "Throttling.User", "Request was denied due to user flow control."
            )
        if action in self.fail:
            return _rpc_error(400, self.fail[action], "The specified parameter is not valid.")
        if action == "DescribeRegions":
            return web.json_response(
                {
                    "RequestId": "r",
                    "Regions": {"Region": [{"RegionId": r, "LocalName": r} for r in self.regions]},
                }
            )
        asset_type = _BY_ACTION.get(action)
        if asset_type is None:
            return _rpc_error(400, "InvalidAction.NotFound", f"{action} is not supported.")
        region = params.get("RegionId", "")
        if region not in self.regions:
            return _rpc_error(400, "InvalidRegionId.NotFound", "The region does not exist.")
        items = self.resources.get(region, {}).get(asset_type, [])
        outer, inner = SHAPES[asset_type][1]
        body: dict[str, Any] = {"RequestId": "r", _TOTAL_KEY.get(action, "TotalCount"): len(items)}
        if "MaxResults" in params or "NextToken" in params:
            start = int(params.get("NextToken") or 0)
            size = int(params.get("MaxResults") or 10)
            body["NextToken"] = str(start + size) if start + size < len(items) else ""
        else:
            number, size = int(params.get("PageNumber") or 1), int(params.get("PageSize") or 10)
            start = (number - 1) * size
            body.update(PageNumber=number, PageSize=size)
        body[outer] = {inner: items[start : start + size]}
        return web.json_response(body)

    def _list_buckets(self, params: dict[str, str]) -> web.Response:
        self.requests.append({"Action": "ListBuckets", "marker": params.get("marker", "")})
        if "ListBuckets" in self.deny:
            return _oss_error(403, "AccessDenied", "You have no right to access this object.")
        if self.throttle["ListBuckets"] > 0:
            self.throttle["ListBuckets"] -= 1
            return _oss_error(503, "ServiceUnavailable", "Please slow down.")
        buckets = sorted(self.buckets, key=lambda b: b["Name"])
        marker, size = params.get("marker", ""), int(params.get("max-keys") or 100)
        after = [b for b in buckets if b["Name"] > marker]
        page, more = after[:size], len(after) > size
        xml = "".join(
            f"<Bucket><Name>{escape(b['Name'])}</Name><Region>{b['Region']}</Region>"
            f"<Location>{b['Location']}</Location><StorageClass>Standard</StorageClass>"
            "<CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket>"
            for b in page
        )
        tail = f"<NextMarker>{escape(page[-1]['Name'])}</NextMarker>" if more and page else ""
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult>'
            "<Owner><ID>1</ID><DisplayName>1</DisplayName></Owner>"
            f"<Buckets>{xml}</Buckets><IsTruncated>{'true' if more else 'false'}</IsTruncated>"
            f"{tail}</ListAllMyBucketsResult>"
        )
        return web.Response(body=body.encode(), content_type="application/xml")


def _rpc_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"RequestId": "r", "HostId": "fake", "Code": code, "Message": message}, status=status
    )


def _oss_error(status: int, code: str, message: str) -> web.Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><Error>'
        f"<Code>{code}</Code><Message>{message}</Message><RequestId>r</RequestId></Error>"
    )
    return web.Response(
        status=status,
        body=body.encode(),
        content_type="application/xml",
        headers={"x-oss-request-id": "r"},
    )
