"""A client generated from the OpenAPI document (openapi-python-client, as a frontend team would
generate one) works against the live service: for answers that succeed, and for error answers,
whose details it can read. The generator once dropped every error answer ("int can't be merged
with Literal[404]") because the error envelope narrowed its ``code`` with an ``allOf``."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.threaded_server import ThreadedServer
from tests.test_end_to_end import settings as example_settings
from tests.web.fuzz import document_of, make_app
from tests.web.helpers import PREFIX

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "cam_generated_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    """The generated package (imported) and what the generator said."""
    workdir = tmp_path_factory.mktemp("client")
    document = workdir / "openapi.json"
    document.write_text(json.dumps(document_of(make_app(example_settings()))))
    output = workdir / PACKAGE
    run = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            *("--path", str(document)),
            *("--meta", "none"),
            *("--output-path", str(output)),
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    sys.path.insert(0, str(workdir))
    try:
        yield importlib.import_module(PACKAGE), run.stdout + run.stderr
    finally:
        sys.path.remove(str(workdir))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with ThreadedServer(lambda: make_app(example_settings())) as url:
        yield f"{url}{PREFIX}"


def test_the_generator_keeps_every_answer(generated: tuple[Any, str]) -> None:
    _, said = generated
    assert "Cannot parse" not in said, said


def test_a_generated_client_reads_successes_and_error_details(
    generated: tuple[Any, str], base_url: str
) -> None:
    package, _ = generated
    client_module = importlib.import_module(f"{PACKAGE}.client")
    get_task = importlib.import_module(f"{PACKAGE}.api.tasks.get_task")
    list_tasks = importlib.import_module(f"{PACKAGE}.api.tasks.list_tasks")
    with client_module.Client(base_url=base_url) as client:
        listed = list_tasks.sync(client=client)
        assert listed.code == 0
        assert listed.data.total >= 0

        missing = get_task.sync("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", client=client)
        assert type(missing).__name__ == "GetTaskResponse404"
        assert missing.code == 404
        assert str(missing.data.error.value) == "not_found"

        malformed = list_tasks.sync(client=client, limit=0)
        assert type(malformed).__name__ == "ListTasksResponse400"
        assert [detail.to_dict()["loc"] for detail in malformed.data.details] == [
            ["query", "limit"]
        ]
    assert package.__name__ == PACKAGE
