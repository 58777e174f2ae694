"""The real providers as an operator sets them up: declared in the config file, credentials from
the environment, a discovery submitted over the HTTP API fills the inventory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import cam_tasks
from cam_tasks.config import load_settings
from cam_tasks.domain import ConfigurationError
from tests.support.waiting import eventually

API = "/api/v1/cam"


@pytest.fixture
async def aws_service(
    moto_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[TestClient[Any, Any]]:
    from tests.assets import aws_cloud

    aws_cloud.reset(moto_url)
    aws_cloud.client(moto_url, "ec2", "eu-west-1").create_vpc(CidrBlock="10.9.0.0/16")
    # The standard AWS chain: the keys come from the environment, never from the file.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    config = tmp_path / "cam.toml"
    config.write_text(
        "[auth]\nallow_anonymous = true\n[queue]\nprogress_interval_s = 0.02\n"
        f'[[providers.aws]]\nname = "prod-aws"\nendpoint_url = "{moto_url}"\n'
        'regions = ["us-east-1", "eu-west-1"]\n'
    )
    app = web.Application()
    cam_tasks.setup(app, load_settings(config))
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_discover_assets_over_http_fills_the_inventory_from_an_aws_account(
    aws_service: TestClient[Any, Any],
) -> None:
    client = aws_service
    listed = await (await client.get(f"{API}/providers")).json()
    assert {"name": "prod-aws", "kind": "aws"} in [
        {"name": p["name"], "kind": p["kind"]} for p in listed["data"]["providers"]
    ]

    answer = await client.post(
        f"{API}/tasks/discover-assets", json={"provider": "prod-aws", "account_id": "123456789012"}
    )
    assert answer.status == 202, await answer.text()
    task_id = (await answer.json())["data"]["task_id"]

    async def task() -> dict[str, Any]:
        data: dict[str, Any] = (await (await client.get(f"{API}/tasks/{task_id}")).json())["data"]
        return data

    final = await eventually(task, lambda t: t["status"] in ("completed", "failed"))
    assert final["status"] == "completed", final
    result = final["result"]
    assert set(result["regions"]) == {"us-east-1", "eu-west-1"}
    assert result["by_region"]["eu-west-1"]["vpc"] == 2  # the default VPC and ours
    assert "testing-secret" not in str(final)


def test_a_provider_whose_extra_is_missing_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "cam_tasks.assets.aliyun", None)  # as if not installed
    settings = load_settings(providers={"aliyun": [{"name": "ali"}]})
    with pytest.raises(ConfigurationError, match=r"pip install 'cam_tasks\[aliyun\]'"):
        cam_tasks.CamTasks(settings, load_plugins=False)


def test_aliyun_credentials_come_from_named_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("alibabacloud_ecs20140526", reason="the aliyun extra is not installed")
    monkeypatch.setenv("MY_KEY_ID", "id-1")
    monkeypatch.setenv("MY_KEY_SECRET", "secret-1")
    settings = load_settings(
        providers={
            "aliyun": [
                {
                    "name": "ali",
                    "access_key_id_env": "MY_KEY_ID",
                    "access_key_secret_env": "MY_KEY_SECRET",
                }
            ]
        }
    )
    runtime = cam_tasks.CamTasks(settings, load_plugins=False)
    assert "ali" in runtime.providers
    with pytest.raises(ConfigurationError, match="access_key_secret_env"):
        load_settings(providers={"aliyun": [{"name": "x", "access_key_id_env": "MY_KEY_ID"}]})
