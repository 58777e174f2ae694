"""Generates docs/configuration.md from the settings model, so the reference cannot drift.

``python -m cam_tasks.config_reference > docs/configuration.md``; a test fails when the file
differs from what this prints, and when config.example.toml and the model disagree.
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from cam_tasks.config import Settings

__all__ = ["reference_markdown", "setting_keys"]

_HEADER = """\
# Configuration reference

Generated from `cam_tasks/config.py` by `python -m cam_tasks.config_reference`; do not edit by
hand (a test compares the two). Settings come from a TOML file (`cam-tasks serve --config
FILE`), overridden by environment variables: `CAM_TASKS_<SECTION>__<KEY>`. Lists and tables take
JSON in the environment (`CAM_TASKS_PROVIDERS__STATIC='[{"name": "aliyun", …}]'`).
See [config.example.toml](../config.example.toml) for a commented file.
"""


def _sections() -> Iterator[tuple[str, type[BaseModel], FieldInfo]]:
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield name, annotation, field


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value: Any = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "see below"
    if value is None:
        return "none"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value!r}`" if not isinstance(value, list) else "`[]`"


def _type(field: FieldInfo) -> str:
    text = str(field.annotation).replace("typing.", "")
    for prefix in ("<class '", "'>"):
        text = text.replace(prefix, "")
    return text.replace("cam_tasks.config.", "")


def _top_level_lists() -> Iterator[tuple[str, type[BaseModel]]]:
    """Settings that are lists of tables at the top of the file (``[[schedules]]``)."""
    for name, field in Settings.model_fields.items():
        item = _list_item_model(field)
        if item is not None:
            yield name, item


def _dict_value(field: FieldInfo) -> Any:
    """The value type of a ``dict[str, X]`` setting, else None."""
    if typing.get_origin(field.annotation) is not dict:
        return None
    return typing.get_args(field.annotation)[1]


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _dict_tables() -> Iterator[tuple[str, type[BaseModel]]]:
    """Settings that are tables of named tables (``[queues.NAME]``)."""
    for name, field in Settings.model_fields.items():
        value = _dict_value(field)
        if _is_model(value):
            yield name, value


def _plain_tables() -> Iterator[tuple[str, FieldInfo]]:
    """Top-level tables of plain values (``[concurrency_limits]``: pattern = limit)."""
    for name, field in Settings.model_fields.items():
        value = _dict_value(field)
        if value is not None and not _is_model(value):
            yield name, field


def setting_keys() -> set[str]:
    """Every ``section.key`` of the model (nested lists of tables as ``section.table.key``,
    top-level lists of tables as ``table.key``, tables of named tables as ``table.*.key``)."""
    keys = {f"{name}.{key}" for name, item in _top_level_lists() for key in item.model_fields}
    keys |= {f"{name}.*.{key}" for name, item in _dict_tables() for key in item.model_fields}
    for section, model, _ in _sections():
        for key, field in model.model_fields.items():
            inner = _list_item_model(field)
            if inner is None:
                keys.add(f"{section}.{key}")
            else:
                keys.update(f"{section}.{key}.{sub}" for sub in inner.model_fields)
    return keys


def _list_item_model(field: FieldInfo) -> type[BaseModel] | None:
    args = getattr(field.annotation, "__args__", ())
    if args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0]
    return None


def _table(prefix: str, env: str, model: type[BaseModel]) -> list[str]:
    lines = ["| key | type | default | environment | meaning |", "|---|---|---|---|---|"]
    for key, field in model.model_fields.items():
        lines.append(
            f"| `{prefix}{key}` | `{_type(field)}` | {_default(field)} | "
            f"`{env}{key.upper()}` | {field.description or ''} |"
        )
    return lines


def reference_markdown() -> str:
    out = [_HEADER]
    for section, model, _ in _sections():
        out.append(f"## `[{section}]`\n")
        if model.__doc__:
            out.append(" ".join(model.__doc__.split()) + "\n")
        env = f"CAM_TASKS_{section.upper()}__"
        nested = [(k, f) for k, f in model.model_fields.items() if _list_item_model(f)]
        plain = [k for k in model.model_fields if k not in dict(nested)]
        if plain:
            out.extend(_table("", env, model))
            out.append("")
        for key, field in nested:
            item = _list_item_model(field)
            assert item is not None
            out.append(f"### `[[{section}.{key}]]` (a list; `{env}{key.upper()}` as JSON)\n")
            if item.__doc__:
                out.append(" ".join(item.__doc__.split()) + "\n")
            out.extend(_table("", "", item))  # in the environment: the whole list as JSON
            out.append("")
    for name, item in _dict_tables():
        out.append(f"## `[{name}.NAME]` (one table per name; `CAM_TASKS_{name.upper()}` as JSON)\n")
        description = Settings.model_fields[name].description
        if description:
            out.append(description + "\n")
        if item.__doc__:
            out.append(" ".join(item.__doc__.split()) + "\n")
        out.extend(_table("", "", item))
        out.append("")
    for name, field in _plain_tables():
        out.append(f"## `[{name}]` (keys and values; `CAM_TASKS_{name.upper()}` as JSON)\n")
        out.append(f"{field.description or ''}\n")
    for name, item in _top_level_lists():
        out.append(f"## `[[{name}]]` (a list; `CAM_TASKS_{name.upper()}` as JSON)\n")
        if item.__doc__:
            out.append(" ".join(item.__doc__.split()) + "\n")
        out.extend(_table("", "", item))
        out.append("")
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(reference_markdown())
