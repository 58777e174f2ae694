"""A real headless Chromium for tests: Debian's ``chromium`` driven through its ``chromedriver``
by Selenium (an explicit driver path, so Selenium Manager never downloads anything).

Without them the test is skipped, saying how to install them; under ``CI`` (where
``scripts/test`` installs them) it fails instead, so it is never skipped silently there.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest


def _find(name: str) -> str | None:
    found = shutil.which(name)
    if found is None and Path(f"/usr/bin/{name}").is_file():
        found = f"/usr/bin/{name}"
    return found


CHROMIUM = _find("chromium")
CHROMEDRIVER = _find("chromedriver")

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)


@contextmanager
def chromium(workdir: Path) -> Iterator[Any]:
    """A Selenium ``webdriver.Chrome`` with its profile and driver log under ``workdir``,
    recording the browser console (``driver.get_log("browser")``); quit at the end."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        reason = (
            "Chromium not found (needs Debian's chromium and chromium-driver: "
            "apt-get install -y chromium chromium-driver; scripts/test installs them)"
        )
        if os.environ.get("CI"):  # scripts/test installs them there: never skip silently
            pytest.fail(reason)
        pytest.skip(reason)
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={workdir / 'profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER, log_output=str(workdir / "chromedriver.log"))
    browser = webdriver.Chrome(options=options, service=service)
    try:
        yield browser
    finally:
        browser.quit()
