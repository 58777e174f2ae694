"""The fenced code blocks of the README and of ``docs/*.md``, each with its kind and directives.

A block is what lies between two fences (three or more backticks or tildes, possibly indented
as in a list item); its content is dedented by the fence's indentation. Its *kind* comes from the
fence's language tag (:data:`KINDS`): a tag outside that table is an error, so no new sample
can go unexecuted. A fence with no tag is prose (diagrams, trees, tables of output).

A *directive* is an HTML comment on the line right before the opening fence (blank lines
between are allowed), invisible once rendered::

    <!-- sample: prelude=host_app,my_sessions then=authenticates -->

Its body is split like a shell line (``shlex``), into ``key=value`` pairs and bare flags
(``log``); quote a value that holds spaces:
``response='POST /api/v1/cam/tasks {"type": "sync_assets"}'``.
"""

from __future__ import annotations

import enum
import re
import shlex
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Every page whose samples are executed, in reading order.
PAGES: tuple[Path, ...] = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))


class Kind(enum.Enum):
    PROSE = "prose"  # no language tag: not code
    PYTHON = "python"
    SHELL = "shell"
    JS = "js"
    TOML = "toml"
    YAML = "yaml"
    JSON = "json"


#: Fence language tag -> kind. Anything else fails the docs test.
KINDS: Mapping[str, Kind] = {
    "": Kind.PROSE,
    "python": Kind.PYTHON,
    "bash": Kind.SHELL,
    "sh": Kind.SHELL,
    "shell": Kind.SHELL,
    "js": Kind.JS,
    "javascript": Kind.JS,
    "toml": Kind.TOML,
    "yaml": Kind.YAML,
    "yml": Kind.YAML,
    "json": Kind.JSON,
}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<lang>[^`\s]*)[^`]*$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*sample:(?P<body>.*?)-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language tag, its dedented text, its directives."""

    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    directives: Mapping[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> Kind | None:
        """The kind, or None for a language tag the docs test does not know."""
        return KINDS.get(self.lang.lower())

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    def names(self, key: str) -> list[str]:
        """A comma-separated directive value as a list (``prelude=a,b`` -> ``["a", "b"]``)."""
        value = self.directives.get(key, "")
        return [name for name in value.split(",") if name]

    def __str__(self) -> str:
        return f"{self.where} ({self.lang or 'no language'})"


def parse_directive(line: str) -> dict[str, str] | None:
    """The ``key=value`` pairs of a ``<!-- sample: ... -->`` line, or None for any other line."""
    found = _DIRECTIVE.match(line)
    if found is None:
        return None
    pairs: dict[str, str] = {}
    for token in shlex.split(found["body"]):
        key, _, value = token.partition("=")
        if not key:
            raise ValueError(f"a sample directive takes key=value pairs or flags: {line}")
        pairs[key] = value
    return pairs


def blocks_of(page: Path) -> list[Block]:
    """Every fenced block of ``page``, in order. An unclosed fence is an error."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        start = index
        body: list[str] = []
        index += 1
        while True:
            if index >= len(lines):
                raise ValueError(f"{page}:{start + 1}: unclosed code fence")
            closing = lines[index].strip()
            if closing.startswith(fence[0] * len(fence)) and set(closing) == {fence[0]}:
                break
            body.append(lines[index][len(indent) :] if lines[index].startswith(indent) else "")
            index += 1
        blocks.append(
            Block(
                page=page,
                line=start + 1,
                lang=opening["lang"],
                code=textwrap.dedent("\n".join(body)) + "\n",
                directives=_directives_before(lines, start),
            )
        )
        index += 1
    return blocks


def _directives_before(lines: list[str], fence_index: int) -> dict[str, str]:
    index = fence_index - 1
    while index >= 0 and not lines[index].strip():
        index -= 1
    if index < 0:
        return {}
    return parse_directive(lines[index]) or {}


def all_blocks() -> list[Block]:
    return [block for page in PAGES for block in blocks_of(page)]
