"""A plug-in package installed into the environment is discovered, listed and run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cam_tasks import CamTasks
from cam_tasks.config import Settings
from cam_tasks.domain import TaskStatus
from tests.support.waiting import eventually

PLUGIN_SOURCE = Path(__file__).parent / "demo_plugin"


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """pip-installs the demo plug-in into a target directory put on sys.path for the test."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--target", str(target), str(PLUGIN_SOURCE)],
        check=True, cwd=build, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )  # fmt: skip
    sys.path.insert(0, str(target))
    try:
        yield target
    finally:
        sys.path.remove(str(target))
        for name in [m for m in sys.modules if m.startswith("cam_tasks_demo_plugin")]:
            del sys.modules[name]


def test_cam_tasks_plugins_lists_the_installed_entry_points(installed_plugin: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed_plugin), *sys.path])}
    listing = subprocess.run(
        [sys.executable, "-m", "cam_tasks.cli", "plugins"],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert (
        "cam_tasks.executors: word_count = cam_tasks_demo_plugin:WordCountExecutor"
        in listing.stdout
    )
    assert "cam_tasks.providers: lab = cam_tasks_demo_plugin:make_provider" in listing.stdout


async def test_an_installed_executor_and_provider_run(installed_plugin: Path) -> None:
    async with CamTasks(Settings()) as cam:
        assert "word_count" in cam.registry
        assert "lab" in cam.providers
        task = await cam.service.submit("word_count", {"text": "one two three"})
        done = await eventually(lambda: cam.service.get(task.id), lambda t: t.status.is_terminal)
        assert done.status is TaskStatus.COMPLETED
        assert done.result == {"words": 3}

        sync = await cam.service.submit(
            "sync_assets", {"provider": "lab", "account_id": "7", "asset_types": ["vm"]}
        )
        synced = await eventually(lambda: cam.service.get(sync.id), lambda t: t.status.is_terminal)
        assert synced.status is TaskStatus.COMPLETED, synced.error
        assert synced.result["added_count"] == 1


def test_plugins_can_be_turned_off(installed_plugin: Path) -> None:
    cam = CamTasks(Settings(), load_plugins=False)
    assert "word_count" not in cam.registry
