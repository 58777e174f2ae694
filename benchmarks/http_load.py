"""The load generator of B5, always a separate process, bounded in time and in count, aimed at
127.0.0.1 only.

``wrk`` (Debian package ``wrk``) when it is installed, else an aiohttp client with the same
number of connections (``python -m benchmarks.http_load``). Both report requests/s, p50 and
p99 latency and the number of unexpected answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from benchmarks.common import percentile


@dataclass(frozen=True)
class LoadResult:
    tool: str
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float


def _check_target(url: str) -> None:
    if urlsplit(url).hostname != "127.0.0.1":
        raise ValueError(f"load is only ever generated against 127.0.0.1, not {url}")


def _lua_string(value: str) -> str:
    return "[==[" + value + "]==]"


def _wrk_script(method: str, body: str | None, headers: dict[str, str], max_requests: int) -> str:
    lines = [f"wrk.method = {_lua_string(method)}"]
    if body is not None:
        lines.append(f"wrk.body = {_lua_string(body)}")
    for name, value in headers.items():
        lines.append(f"wrk.headers[ {_lua_string(name)} ] = {_lua_string(value)}")
    # The count bound: each thread stops after its share of max_requests.
    lines += [
        "local sent = 0",
        "request = function()",
        "  sent = sent + 1",
        f"  if sent > {max_requests} then wrk.thread:stop() end",
        "  return wrk.format()",
        "end",
    ]
    return "\n".join(lines) + "\n"


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if match is None:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(
    url: str,
    *,
    method: str,
    body: str | None,
    headers: dict[str, str],
    connections: int,
    duration_s: float,
    max_requests: int,
) -> LoadResult:
    _check_target(url)
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(_wrk_script(method, body, headers, max_requests))
        script.flush()
        output = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(duration_s))}s",
                "--latency",
                "-s",
                script.name,
                url,
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=duration_s + 60,
        ).stdout
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = int(bad.group(1)) if bad else 0
    socket_errors = re.search(r"Socket errors: (.*)", output)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return LoadResult("wrk", requests, errors, rps, p50, p99)


async def _aiohttp_load(
    url: str,
    *,
    method: str,
    body: str | None,
    headers: dict[str, str],
    connections: int,
    duration_s: float,
    max_requests: int,
) -> LoadResult:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    sent = 0
    payload = None if body is None else body.encode()
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        deadline = start + duration_s

        async def client() -> None:
            nonlocal errors, sent
            while sent < max_requests and time.perf_counter() < deadline:
                sent += 1
                t0 = time.perf_counter()
                async with session.request(method, url, data=payload, headers=headers) as answer:
                    await answer.read()
                    if answer.status >= 400:
                        errors += 1
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(client() for _ in range(connections)))
        elapsed = time.perf_counter() - start
    return LoadResult(
        "aiohttp client",
        len(latencies),
        errors,
        len(latencies) / elapsed,
        percentile(latencies, 0.5) * 1e3,
        percentile(latencies, 0.99) * 1e3,
    )


def generate(
    url: str,
    *,
    method: str = "GET",
    body: str | None = None,
    headers: dict[str, str] | None = None,
    connections: int = 64,
    duration_s: float = 3.0,
    max_requests: int = 500_000,
    use_wrk: bool = True,
) -> LoadResult:
    """Load ``url`` from a separate process; wrk when installed and ``use_wrk``."""
    _check_target(url)
    headers = headers or {}
    if use_wrk and shutil.which("wrk"):
        return run_wrk(
            url,
            method=method,
            body=body,
            headers=headers,
            connections=connections,
            duration_s=duration_s,
            max_requests=max_requests,
        )
    command = [
        sys.executable,
        "-m",
        "benchmarks.http_load",
        url,
        "--method",
        method,
        "--connections",
        str(connections),
        "--duration",
        str(duration_s),
        "--max-requests",
        str(max_requests),
        "--headers",
        json.dumps(headers),
    ]
    if body is not None:
        command += ["--body", body]
    output = subprocess.run(
        command, check=True, capture_output=True, text=True, timeout=duration_s + 120
    ).stdout
    return LoadResult(**json.loads(output.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", default=None)
    parser.add_argument("--headers", default="{}")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--max-requests", type=int, default=500_000)
    args = parser.parse_args()
    result = asyncio.run(
        _aiohttp_load(
            args.url,
            method=args.method,
            body=args.body,
            headers=json.loads(args.headers),
            connections=args.connections,
            duration_s=args.duration,
            max_requests=args.max_requests,
        )
    )
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
