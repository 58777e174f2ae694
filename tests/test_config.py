"""Settings: defaults, the TOML file, CAM_TASKS_* overriding it, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

import cam_tasks
from cam_tasks.config import Settings, load_settings
from cam_tasks.domain import ConfigurationError

ROOT = Path(__file__).resolve().parent.parent


def test_the_defaults_run_on_memory() -> None:
    settings = Settings()
    assert settings.mongo.uri == "memory://"
    assert settings.queue.worker_count >= 1
    assert settings.api.prefix == "/api/v1/cam"


def test_the_example_file_loads_and_declares_the_sample_provider() -> None:
    settings = load_settings(ROOT / "config.example.toml")
    assert [p.name for p in settings.providers.static] == ["aliyun"]
    assert settings.base_dir == ROOT


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "cam.toml"
    config.write_text('[queue]\nworker_count = 3\n[mongo]\nuri = "memory://"\n')
    monkeypatch.setenv("CAM_TASKS_QUEUE__WORKER_COUNT", "9")
    monkeypatch.setenv("CAM_TASKS_MONGO__DATABASE", "cam_prod")
    settings = load_settings(config)
    assert settings.queue.worker_count == 9
    assert settings.mongo.database == "cam_prod"
    assert settings.mongo.uri == "memory://"


def test_unknown_keys_and_bad_values_name_the_file_and_the_key(tmp_path: Path) -> None:
    config = tmp_path / "cam.toml"
    config.write_text("[queue]\nworker_count = 0\nworkers = 4\n")
    with pytest.raises(ConfigurationError) as info:
        load_settings(config)
    message = str(info.value)
    assert str(config) in message
    assert "queue.worker_count" in message
    assert "queue.workers" in message


def test_a_lease_shorter_than_two_heartbeats_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="lease_s"):
        load_settings(queue={"lease_s": 5, "heartbeat_interval_s": 5})


def test_fair_claim_every_defaults_to_10_refuses_negatives_and_reaches_the_dispatcher() -> None:
    assert Settings().queue.fair_claim_every == 10
    with pytest.raises(ConfigurationError, match=r"queue\.fair_claim_every"):
        load_settings(queue={"fair_claim_every": -1})
    for every in (0, 3):
        runtime = cam_tasks.CamTasks(
            load_settings(queue={"fair_claim_every": every}), load_plugins=False
        )
        assert runtime.dispatcher.fair_claim_every == every


def test_a_missing_or_malformed_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_settings(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[queue\n")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_settings(broken)


def test_a_provider_inventory_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    from cam_tasks import CamTasks

    (tmp_path / "inv.toml").write_text(
        '[accounts."1".regions."r1"]\nvm = [{ id = "a", name = "x" }]\n'
    )
    config = tmp_path / "cam.toml"
    config.write_text(
        '[[providers.static]]\nname = "lab"\ninventory = "inv.toml"\n'
        '[[providers.static]]\nname = "gone"\ninventory = "missing.toml"\n'
    )
    with pytest.raises(ConfigurationError, match=r"missing\.toml"):
        CamTasks(load_settings(config))
    config.write_text('[[providers.static]]\nname = "lab"\ninventory = "inv.toml"\n')
    runtime = CamTasks(load_settings(config))
    assert "lab" in runtime.providers


def test_process_roles_default_to_everything_and_read_from_file_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    defaults = Settings()
    assert defaults.server.workers is True
    assert (defaults.worker.host, defaults.worker.port, defaults.worker.health) == (
        "127.0.0.1",
        8002,
        True,
    )
    assert defaults.worker.queues is None
    assert defaults.executors.builtin == ["sync_assets", "discover_assets"]
    file = tmp_path / "roles.toml"
    file.write_text(
        '[server]\nworkers = false\n[worker]\nport = 0\nqueues = ["default"]\n'
        '[executors]\nbuiltin = ["discover_assets"]\n'
    )
    monkeypatch.setenv("CAM_TASKS_EXECUTORS__BUILTIN", "[]")
    loaded = load_settings(file)
    assert loaded.server.workers is False
    assert loaded.worker.port == 0
    assert loaded.worker.queues == ["default"]
    assert loaded.executors.builtin == []


@pytest.mark.parametrize(
    ("section", "value", "named"),
    [
        ("executors", {"builtin": ["sync_asset"]}, "executors.builtin.0"),
        ("worker", {"queues": []}, "worker.queues"),
        ("worker", {"queues": ["no spaces"]}, "[worker] queues must match"),
        ("worker", {"port": 70000}, "worker.port"),
    ],
)
def test_bad_role_settings_are_refused_naming_the_key(
    section: str, value: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(**{section: value})
    assert named in str(raised.value)


def test_an_in_process_store_runs_by_default_and_is_refused_when_not_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The library and the example file allow it: the README's first command keeps working.
    assert Settings().mongo.allow_memory is True
    assert cam_tasks.CamTasks(Settings(), load_plugins=False).stores.backend == "memory"
    for uri in ("memory://", "mongomock://cam"):
        refused = Settings(mongo={"uri": uri, "allow_memory": False})
        with pytest.raises(ConfigurationError) as error:
            cam_tasks.CamTasks(refused, load_plugins=False)
        message = str(error.value)
        # Says why, and both ways out.
        assert "lost on a restart" in message
        assert "CAM_TASKS_MONGO__URI" in message
        assert "CAM_TASKS_MONGO__ALLOW_MEMORY=true" in message
    # The environment opts back in, as the message says.
    monkeypatch.setenv("CAM_TASKS_MONGO__ALLOW_MEMORY", "true")
    allowed = load_settings(mongo={"uri": "memory://", "allow_memory": False})
    assert cam_tasks.CamTasks(allowed, load_plugins=False).stores.backend == "memory"
    # A database handle given by the host is the host's choice: the URI is not used.
    from mongomock_motor import AsyncMongoMockClient

    handle = AsyncMongoMockClient()["host"]
    refused = Settings(mongo={"allow_memory": False})
    assert cam_tasks.CamTasks(refused, database=handle, load_plugins=False).stores.backend
