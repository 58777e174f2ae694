"""B5: the HTTP API on loopback under 64 connections, next to a bare aiohttp handler answering
the same JSON in the same server process (see ``benchmarks.http_server``).

Rows: ``GET /tasks/{id}`` of a finished sync, ``POST /tasks/sync-assets``, and conditional
``GET`` polls answered 304 when the API sends an ETag (skipped when it does not). Each is
loaded for a fixed time after a short warm-up, by wrk when installed (else an aiohttp client
process), with a cap on the number of requests as well.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import orjson

from benchmarks.common import Row, run, skipped
from benchmarks.http_load import LoadResult, generate
from benchmarks.http_server import PREFIX, SYNC_PARAMS

CONNECTIONS = 64


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def _server() -> Iterator[tuple[str, str]]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.http_server", "--port", str(port)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().split()
        if line[:1] != ["READY"]:
            raise RuntimeError(f"benchmark server did not start: {line}")
        yield f"http://127.0.0.1:{port}", line[1]
    finally:
        process.terminate()  # by its PID, never by name
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _etag(url: str) -> str | None:
    with urllib.request.urlopen(url, timeout=10) as answer:
        etag: str | None = answer.headers.get("ETag")
        return etag


def _rows(
    what: str,
    cam: LoadResult,
    ref: LoadResult,
    *,
    bound: float,
    ref_what: str = "bare aiohttp handler",
) -> list[Row]:
    note = f"{cam.requests} requests, {cam.errors} errors ({cam.tool}, {CONNECTIONS} connections)"
    if ref.errors or cam.errors:
        note += f"; reference errors {ref.errors}"
    return [
        Row(
            "B5",
            f"{what} req/s",
            cam.rps,
            "req/s",
            ref.rps,
            ref_what,
            target=f">= {bound:g}x",
            check=f"ratio>={bound}",
            note=note,
        ),
        Row(
            "B5",
            f"{what} p99",
            cam.p99_ms,
            "ms",
            ref.p99_ms,
            ref_what,
            target="report",
            note=f"p50 {cam.p50_ms:.2f} ms vs {ref.p50_ms:.2f} ms",
        ),
    ]


def main_sync(args: argparse.Namespace) -> list[Row]:
    duration_s = 1.0 if args.smoke else 4.0
    warmup_s = 0.0 if args.smoke else 1.0
    rows: list[Row] = []

    def load(url: str, **options: object) -> LoadResult:
        if warmup_s:
            generate(url, duration_s=warmup_s, connections=CONNECTIONS, **options)  # type: ignore[arg-type]
        return generate(url, duration_s=duration_s, connections=CONNECTIONS, **options)  # type: ignore[arg-type]

    json_headers = {"Content-Type": "application/json"}
    body = orjson.dumps(SYNC_PARAMS).decode()
    with _server() as (base, task_id):
        get_url = f"{base}{PREFIX}/tasks/{task_id}"
        cam_get = load(get_url)
        ref_get = load(f"{base}/ref/task")
        rows += _rows("GET /tasks/{id}", cam_get, ref_get, bound=0.5)
        cam_post = load(
            f"{base}{PREFIX}/tasks/sync-assets", method="POST", body=body, headers=json_headers
        )
        ref_post = load(f"{base}/ref/submit", method="POST", body=body, headers=json_headers)
        rows += _rows("POST /tasks/sync-assets", cam_post, ref_post, bound=0.33)
        etag = _etag(get_url)
        if etag is None:
            rows.append(
                skipped(
                    "B5", "GET /tasks/{id} 304 polls req/s", "the API sends no ETag yet", ">= 0.8x"
                )
            )
        else:
            cam_304 = load(get_url, headers={"If-None-Match": etag})
            rows += _rows(
                "GET /tasks/{id} 304 polls",
                cam_304,
                ref_get,
                bound=0.8,
                ref_what="bare aiohttp handler, 200 + JSON",
            )
    return rows


async def main(args: argparse.Namespace) -> list[Row]:
    return main_sync(args)


if __name__ == "__main__":
    run(main, __doc__ or "")
