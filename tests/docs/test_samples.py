"""Every code sample of the README and of ``docs/*.md`` runs, so a sample that rots fails here.

Each page is one test: its fenced blocks run in order, sharing a working directory (a temporary
one), the live service (:mod:`tests.docs.service`, started when a block first needs it) and the
shell state (the last submitted task's id, exported variables). A failure names the block's line.

How each kind runs (the modules say it in detail):

- no tag: prose (diagrams, trees, output), not run;
- ``python``: executed, with named preludes and checks (:mod:`tests.docs.python_samples`); a
  final ``web.run_app(app)`` is the one call replaced: the app is served with aiohttp's
  ``AppRunner`` on a free loopback port, exercised over HTTP, and stopped;
- ``bash``, ``sh``: command by command against the live service, placeholders replaced
  (:mod:`tests.docs.shell_samples`); what cannot run here is checked instead;
- ``js``: in headless Chromium against the live service (:mod:`tests.docs.js_samples`);
- ``toml``, ``yaml``, ``json``: loaded, and compared with the real configuration, metrics,
  answers and log records (:mod:`tests.docs.data_samples`).

Any other tag fails :func:`test_every_block_is_of_a_kind_the_docs_test_runs`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.docs.blocks import KINDS, PAGES, ROOT, Block, Kind, all_blocks, blocks_of
from tests.docs.data_samples import run_json, run_toml, run_yaml
from tests.docs.js_samples import run_js
from tests.docs.python_samples import run_python, unknown_names
from tests.docs.service import Service, running_service
from tests.docs.shell_samples import Shell
from tests.support.chromium import chromium


class PageRun:
    """What the blocks of one page share; the service and the browser start on first use."""

    def __init__(self, workdir: Path, stack: AsyncExitStack) -> None:
        self.workdir = workdir
        self._stack = stack
        self._service: Service | None = None
        self._shell: Shell | None = None
        self._browser: Any = None

    async def service(self) -> Service:
        if self._service is None:
            self._service = await self._stack.enter_async_context(running_service())
        return self._service

    async def shell(self) -> Shell:
        if self._shell is None:
            self._shell = Shell(await self.service(), self.workdir)
        return self._shell

    def browser(self) -> Any:
        if self._browser is None:
            self._browser = self._stack.enter_context(chromium(self.workdir))
        return self._browser

    async def run(self, block: Block) -> None:
        match block.kind:
            case Kind.PROSE:
                pass
            case Kind.PYTHON:
                await run_python(block)
            case Kind.SHELL:
                await (await self.shell()).run_block(block)
            case Kind.JS:
                await run_js(block, await self.service(), self.browser())
            case Kind.TOML:
                await run_toml(block, self.workdir)
            case Kind.YAML:
                await run_yaml(block, await self.service())
            case Kind.JSON:
                await run_json(block, await self.service())
            case None:
                raise AssertionError(f"no way to run a {block.lang!r} block")


@asynccontextmanager
async def page_run(workdir: Path) -> AsyncIterator[PageRun]:
    async with AsyncExitStack() as stack:
        yield PageRun(workdir, stack)


@contextmanager
def located(block: Block) -> Iterator[None]:
    try:
        yield
    except BaseException as exc:
        exc.add_note(f"in the sample at {block}")
        raise


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def test_every_block_is_of_a_kind_the_docs_test_runs() -> None:
    unknown = [str(block) for block in all_blocks() if block.kind is None]
    assert unknown == [], f"known language tags: {sorted(KINDS)}"


def test_every_directive_names_a_prelude_page_or_check_that_exists() -> None:
    problems = {str(block): unknown_names(block) for block in all_blocks() if unknown_names(block)}
    assert problems == {}


def test_the_readmes_python_samples_run_as_a_reader_copies_them() -> None:
    """A README sample may stand on files the reader has (``host_files``), never on names
    another page defines (``prelude=docs/….md``): a reader copying it would get a NameError."""
    borrowing = {
        str(block): [name for name in block.names("prelude") if name.endswith(".md")]
        for block in blocks_of(ROOT / "README.md")
        if block.kind is Kind.PYTHON
    }
    assert {where: pages for where, pages in borrowing.items() if pages} == {}


def test_directives_only_stand_before_blocks_that_use_them() -> None:
    allowed = {
        Kind.PYTHON: {"prelude", "then"},
        Kind.JSON: {"response", "exact", "log"},
    }
    misplaced = {
        str(block): sorted(block.directives)
        for block in all_blocks()
        if block.kind is not None and not set(block.directives) <= allowed.get(block.kind, set())
    }
    assert misplaced == {}


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
async def test_every_sample_of_the_page_runs(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # samples that read or write files do it here
    async with page_run(tmp_path) as run:
        for block in blocks_of(page):
            with located(block):
                await run.run(block)
