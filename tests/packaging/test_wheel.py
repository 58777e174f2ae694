"""A wheel built from the checkout installs into a fresh virtualenv and serves from there."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import aiohttp
import pytest

from tests.support.network import free_port
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Build from a copy of the checkout: setuptools writes build/ and *.egg-info next to the
    # sources, which must neither dirty the work tree nor collide with a concurrent build.
    source = tmp_path_factory.mktemp("source") / "cam_tasks"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".artifacts", ".*_cache"
        ),
    )
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)],
        check=True,
    )
    (built,) = out.glob("cam_tasks-*.whl")
    return built


def test_the_wheel_carries_the_package_data_and_typing_marker(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "cam_tasks/py.typed" in names
    assert "cam_tasks/data/sample_inventory.toml" in names
    for page in ("api-docs.html", "api-docs.js", "api-docs.css"):  # the API's docs page
        assert f"cam_tasks/web/static/{page}" in names
    assert not any(name.startswith("tests/") for name in names)
    # The license the metadata names travels with the package (PEP 639).
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "cam-tasks = cam_tasks.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


@pytest.fixture
def fresh_venv(wheel: Path, tmp_path: Path) -> Path:
    """A new virtualenv with nothing but the wheel (and its dependencies) installed."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "--quiet", f"{wheel}[uvloop]"],
        check=True,
    )
    return venv


@pytest.mark.timeout(300)
async def test_cam_tasks_serve_runs_from_a_fresh_virtualenv(
    fresh_venv: Path, tmp_path: Path
) -> None:
    venv = fresh_venv
    # The image's entry command, run directly: cam-tasks serve --config <a copied config>.
    config = tmp_path / "config.toml"
    shutil.copy(ROOT / "config.example.toml", config)
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        str(venv / "bin" / "cam-tasks"), "serve", "--config", str(config), "--port", str(port),
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/api/v1/cam"
    try:
        async with aiohttp.ClientSession() as session:

            async def listing() -> int:
                try:
                    async with session.get(f"{base}/tasks") as response:
                        return response.status
                except aiohttp.ClientConnectionError:
                    assert process.returncode is None, "cam-tasks serve exited"
                    return 0

            assert await eventually(listing, bool, timeout_s=60, interval_s=0.2) == 200
            body = {"provider": "aliyun", "account_id": "456", "asset_types": ["ecs"]}
            async with session.post(f"{base}/tasks/sync-assets", json=body) as response:
                assert response.status == 202
                task_id = (await response.json())["data"]["task_id"]

            async def status() -> str:
                async with session.get(f"{base}/tasks/{task_id}") as response:
                    return str((await response.json())["data"]["status"])

            assert await eventually(
                status, lambda s: s in ("completed", "failed"), timeout_s=30
            ) == ("completed")
            async with session.get(f"{base}/docs") as response:  # the API's page, installed
                assert response.status == 200
                assert "openapi.json" in await response.text()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        output = (await asyncio.wait_for(process.communicate(), 60))[0].decode()
    assert process.returncode == 0, output
    assert "uvloop not installed" not in output
