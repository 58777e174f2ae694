"""An aiohttp application served on the loopback from a thread of its own, for clients that
block (``requests``, as schemathesis uses): the test thread calls it while the server's event
loop runs undisturbed in the other thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType

from aiohttp import web

#: Longest wait for the server to start or to stop.
START_STOP_TIMEOUT_S = 30.0


class ThreadedServer:
    """``with ThreadedServer(make_app) as url:`` serves ``make_app()`` (called in the server's
    thread, so everything it makes belongs to that loop) at ``url`` (``http://127.0.0.1:<port>``)
    until the block ends; then the app's cleanup runs (its ``cleanup_ctx`` included)."""

    def __init__(self, make_app: Callable[[], web.Application]) -> None:
        self._make_app = make_app
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="threaded-server", daemon=True)
        self.url = ""

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # handed to the test thread, which raises it
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = web.AppRunner(self._make_app())
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            self.url = f"http://127.0.0.1:{port}"
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def __enter__(self) -> str:
        self._thread.start()
        if not self._ready.wait(START_STOP_TIMEOUT_S):
            raise TimeoutError("the server did not start")
        if self._error is not None:
            raise self._error
        return self.url

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(START_STOP_TIMEOUT_S)
        if self._thread.is_alive():
            raise TimeoutError("the server did not stop")
        if self._error is not None:
            raise self._error
