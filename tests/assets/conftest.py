"""Cloud servers the provider tests share: moto (started once per session on a free loopback
port) for AWS; the Alibaba Cloud fake is started per test (it is a small aiohttp app)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.network import free_port


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    pytest.importorskip("aiobotocore", reason="the aws extra is not installed")
    server_module = pytest.importorskip("moto.server", reason="moto[server] is not installed")
    port = free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
