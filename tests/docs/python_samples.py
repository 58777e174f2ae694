"""Running the docs' ``python`` blocks for real.

A block is compiled as one module (top-level ``await`` allowed: it then runs as a coroutine on
the test's event loop), with line numbers matching the page, in a fresh namespace.

A fragment that uses names it does not define says where they come from in a directive right
before the block (see :mod:`tests.docs.blocks`):

- ``prelude=NAME[,NAME...]``: each name is either a page (``docs/executors.md``: its own
  ``python`` blocks run first, in order, each with its own preludes) or one of
  :data:`tests.docs.preludes.PRELUDES`, which puts the names its docstring lists into the
  namespace (and cleans up after the block).
- ``then=NAME[,NAME...]``: one of :data:`tests.docs.preludes.CHECKS`, run after the block on
  what it defined.

A block whose last statement is ``web.run_app(app)`` has that one call replaced (and only that
call: any other ``run_app`` fails the test). Instead of blocking forever,
:func:`tests.docs.service.exercise` serves ``app`` with aiohttp's ``AppRunner`` on a free
loopback port, checks ``/health/ready`` answers 200, runs one task of every task type and one
sync of every provider the sample added (beyond the built-ins and plug-ins) to completion over
HTTP, and stops the app. Task types a sample adds are submitted with ``{"account_id":
"123"}``: every executor in the docs exports an account's assets, like the example's.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

from tests.docs.blocks import ROOT, Block, Kind, blocks_of
from tests.docs.preludes import CHECKS, PRELUDES, Namespace
from tests.docs.service import exercise


def _page_named(name: str) -> Path | None:
    path = ROOT / name
    return path if name.endswith(".md") and path.is_file() else None


def unknown_names(block: Block) -> list[str]:
    """Directive names of ``block`` that name no prelude, page or check."""
    return [
        *(n for n in block.names("prelude") if n not in PRELUDES and _page_named(n) is None),
        *(n for n in block.names("then") if n not in CHECKS),
    ]


def _split_run_app(tree: ast.Module) -> str | None:
    """Remove a final ``web.run_app(NAME)`` from ``tree``; the name of the app it served."""
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("run_app")
    ]
    if not calls:
        return None
    last = tree.body[-1]
    final = (
        isinstance(last, ast.Expr)
        and isinstance(last.value, ast.Call)
        and ast.unparse(last.value.func) == "web.run_app"
        and len(last.value.args) == 1
        and isinstance(last.value.args[0], ast.Name)
        and not last.value.keywords
    )
    assert final, "only a final `web.run_app(app)` can be stood in for"
    assert len(calls) == 1, "only a final `web.run_app(app)` can be stood in for"
    assert isinstance(last, ast.Expr)
    assert isinstance(last.value, ast.Call)
    served_name = last.value.args[0]
    assert isinstance(served_name, ast.Name)
    tree.body.pop()
    return served_name.id


async def execute(block: Block, namespace: Namespace) -> None:
    """Run ``block``'s code in ``namespace`` (awaiting it if it has top-level ``await``)."""
    source = "\n" * block.line + block.code  # tracebacks name the page's own line numbers
    tree = ast.parse(source, filename=str(block.page))
    app_name = _split_run_app(tree)
    code = compile(tree, str(block.page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)
    if inspect.iscoroutine(result):
        await result
    if app_name is not None:
        await exercise(namespace[app_name])


def _python_blocks(page: Path) -> Iterator[Block]:
    return (block for block in blocks_of(page) if block.kind is Kind.PYTHON)


async def _prepare(block: Block, namespace: Namespace, stack: AsyncExitStack) -> None:
    for name in block.names("prelude"):
        page = _page_named(name)
        if page is not None:
            for earlier in _python_blocks(page):
                await _prepare(earlier, namespace, stack)
                await execute(earlier, namespace)
        else:
            namespace.update(await stack.enter_async_context(PRELUDES[name]()))


async def run_python(block: Block) -> None:
    """Run one ``python`` block with its preludes, then its checks."""
    namespace: Namespace = {"__name__": "docs_sample"}
    async with AsyncExitStack() as stack:
        await _prepare(block, namespace, stack)
        before = dict(namespace)
        await execute(block, namespace)
        defined = {
            name: value
            for name, value in namespace.items()
            if name not in before or before[name] is not value
        }
        for check in block.names("then"):
            await CHECKS[check](namespace, defined)
