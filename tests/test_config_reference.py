"""The configuration reference and the example file agree with the settings model."""

from __future__ import annotations

import re
from pathlib import Path

from cam_tasks.config_reference import reference_markdown, setting_keys

ROOT = Path(__file__).resolve().parent.parent
_HEADER = re.compile(r"^(?:#\s*)?\[\[?([\w.]+)\]\]?\s*(#.*)?$")  # commented-out tables count
_KEY = re.compile(r"^#?\s*(\w+)\s*=")


def example_keys() -> set[str]:
    """Keys set or shown commented-out in config.example.toml, as ``section.key``."""
    keys: set[str] = set()
    section = None
    for line in (ROOT / "config.example.toml").read_text().splitlines():
        header = _HEADER.match(line.strip())
        if header:
            section = header.group(1)
            continue
        key = _KEY.match(line.strip())
        if section and key:
            # A table of named tables ([queues.default]) documents them all: queues.*.key.
            if section.startswith("queues."):
                section = "queues.*"
            keys.add(f"{section}.{key.group(1)}")
    return keys


def test_docs_configuration_md_is_generated_from_the_model() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == reference_markdown(), (
        "docs/configuration.md is stale: run "
        "`.venv/bin/python -m cam_tasks.config_reference > docs/configuration.md`"
    )


def test_the_example_file_documents_every_setting_and_only_real_ones() -> None:
    documented = example_keys()
    model = setting_keys()
    assert model - documented == set(), "settings missing from config.example.toml"
    assert documented - model == set(), "config.example.toml names settings that do not exist"
