"""A MongoDB-wire server for the wire rows: ``MONGODB_URI`` when set, else SecantusDB started here.

SecantusDB (GPL-2.0) lives in its own virtualenv and only ever runs as a separate process: on a
free loopback port, with in-memory storage, stopped by its PID when the run ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CANDIDATES = (ROOT / ".venv-secantus/bin/secantusd-py", Path("/tmp/secvenv/bin/secantusd-py"))


def find_secantusd() -> str | None:
    """``$SECANTUSD``, then the project's .venv-secantus, then /tmp/secvenv, then PATH."""
    configured = os.environ.get("SECANTUSD")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    for candidate in CANDIDATES:
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("secantusd-py")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for_ping(uri: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    from pymongo import MongoClient

    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"secantusd exited with {process.returncode}")
        try:
            with MongoClient(uri, serverSelectionTimeoutMS=500) as client:
                client.admin.command("ping")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise RuntimeError("secantusd did not answer ping in time") from None
            time.sleep(0.2)


@contextlib.contextmanager
def wire_server(*, start: bool = True) -> Iterator[tuple[str | None, str]]:
    """Yield ``(uri, description)``; ``uri`` is None (with the reason) when there is no server.

    With ``start=False`` only ``MONGODB_URI`` is used (nothing is launched).
    """
    configured = os.environ.get("MONGODB_URI")
    if configured:
        yield configured, "MONGODB_URI"
        return
    binary = find_secantusd() if start else None
    if binary is None:
        yield None, "no wire server"
        return
    port = _free_port()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [binary, "--host", "127.0.0.1", "--port", str(port), "--storage-path", ":memory:"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
            try:
                _wait_for_ping(uri, process, timeout_s=60)
            except RuntimeError as exc:
                yield None, f"SecantusDB did not start ({exc})"
                return
            yield uri, f"SecantusDB pid {process.pid}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
