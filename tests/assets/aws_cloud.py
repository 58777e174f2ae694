"""AWS for the tests: moto in server mode (real HTTP, real SigV4 signing from aiobotocore), and
a small aiohttp proxy in front of it that injects the errors moto does not give by itself
(throttling, access denied), chosen per service and region."""

from __future__ import annotations

import io
import re
import urllib.request
import zipfile
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from aiobotocore.session import AioSession
from aiohttp import ClientSession, web

ACCOUNT_ID = "123456789012"  # moto's default account
REGIONS = ("us-east-1", "eu-west-1")
_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
#: ``Credential=<key>/<date>/<region>/<service>/aws4_request`` in a SigV4 Authorization header.
_SESSION = web.AppKey("session", ClientSession)
_SCOPE = re.compile(r"Credential=[^/]+/\d+/([\w-]+)/([\w-]+)/aws4_request")


def session() -> AioSession:
    """An aiobotocore session with moto's dummy keys (the provider's own chain otherwise)."""
    s = AioSession()
    s.set_credentials("testing", "testing")
    return s


def reset(moto_url: str) -> None:
    """Forget every resource moto holds (its documented reset endpoint)."""
    request = urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


def client(moto_url: str, service: str, region: str) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=moto_url, **_KEYS)


@dataclass
class Faults:
    """What the proxy breaks: ``throttle[(service, region)]`` answers that many requests with a
    throttling error before letting them through; ``deny`` services answer AccessDenied."""

    throttle: Counter[tuple[str, str]] = field(default_factory=Counter)
    deny: set[str] = field(default_factory=set)
    seen: Counter[tuple[str, str]] = field(default_factory=Counter)
    log: list[tuple[str, str, str, str]] = field(default_factory=list)


def fault_proxy(moto_url: str, faults: Faults) -> web.Application:
    """An aiohttp app forwarding every request to moto unless ``faults`` say otherwise."""

    async def forward(request: web.Request) -> web.StreamResponse:
        match = _SCOPE.search(request.headers.get("Authorization", ""))
        region, service = match.groups() if match else ("?", "?")
        faults.seen[(service, region)] += 1
        faults.log.append((service, region, request.method, request.path_qs))
        if service in faults.deny:
            return _error(service, 403, "AccessDenied", "User is not authorized")
        if faults.throttle[(service, region)] > 0:
            faults.throttle[(service, region)] -= 1
            return _error(
                service, 503 if service == "ec2" else 400, _throttle_code(service), "Slow down"
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with request.app[_SESSION].request(
            request.method, moto_url + request.path_qs, headers=headers, data=await request.read()
        ) as answer:
            body = await answer.read()
            out = web.Response(status=answer.status, body=body)
            for name in ("Content-Type", "x-amzn-requestid", "x-amz-request-id"):
                if name in answer.headers:
                    out.headers[name] = answer.headers[name]
            return out

    async def client_session(app: web.Application) -> AsyncIterator[None]:
        app[_SESSION] = ClientSession()
        yield
        await app[_SESSION].close()

    app = web.Application()
    app.cleanup_ctx.append(client_session)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def _throttle_code(service: str) -> str:
    return "RequestLimitExceeded" if service == "ec2" else "Throttling"


def _error(service: str, status: int, code: str, message: str) -> web.Response:
    """The error in the service's own protocol, as botocore parses it."""
    if service == "lambda":  # rest-json
        return web.json_response(
            {"Type": "User", "message": message},
            status=status,
            headers={"x-amzn-ErrorType": f"{code}Exception" if code == "AccessDenied" else code},
        )
    if service == "ec2":  # ec2 query protocol
        body = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error>"
            "</Errors><RequestID>fault</RequestID></Response>"
        )
    elif service == "s3":
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    else:  # rds, elbv2, sts: the query protocol
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>fault</RequestId></ErrorResponse>"
        )
    return web.Response(status=status, body=body.encode(), content_type="text/xml")


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def create_every_type(moto_url: str, region: str) -> dict[str, str]:
    """One resource of every asset type (plus what AWS makes with them: default VPC and
    security group, root volumes) in ``region``; returns the ids the tests change later."""
    ec2 = client(moto_url, "ec2", region)
    instance = ec2.run_instances(
        ImageId="ami-12345678",  # moto runs any image id; listing its catalogue is slow
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": f"web-{region}"}]}
        ],
    )["Instances"][0]["InstanceId"]
    ec2.create_volume(Size=10, AvailabilityZone=f"{region}a")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{n}.0/24", AvailabilityZone=f"{region}{z}")[
            "Subnet"
        ]["SubnetId"]
        for n, z in ((1, "a"), (2, "b"))
    ]
    group = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    client(moto_url, "rds", region).create_db_instance(
        DBInstanceIdentifier="orders",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="admin_user",
        MasterUserPassword="not-a-secret-1",
    )
    s3 = client(moto_url, "s3", region)
    bucket = f"logs-{region}"
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    client(moto_url, "elbv2", region).create_load_balancer(Name="front", Subnets=subnets)
    role = client(moto_url, "iam", region).create_role(
        RoleName=f"fn-{region}", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    client(moto_url, "lambda", region).create_function(
        FunctionName="resize",
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": _zip()},
        Tags={"team": "media"},
    )
    return {"instance": instance, "group": group, "bucket": bucket, "vpc": vpc}
