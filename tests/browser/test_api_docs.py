"""The API documentation page in a real headless Chromium: it reads ``openapi.json`` and shows
every operation of the document, with no token, no error in the console and nothing fetched
from elsewhere (its Content-Security-Policy would block it and log an error). The test keeps a
screenshot (``.artifacts/api-docs.png``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import cam_tasks
from cam_tasks.config import AuthSettings, TokenSettings
from tests.browser.test_dashboard import ARTIFACTS, run, settings
from tests.support.chromium import chromium
from tests.web.helpers import PREFIX

pytestmark = pytest.mark.browser

TOKEN = "docs-test-token-0123456789abcdef"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path) as driver:
        yield driver


async def test_the_page_shows_every_operation_of_the_document(browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    app = web.Application()
    # Tokens only: the page and the document it reads need none.
    secured = settings().model_copy(
        update={"auth": AuthSettings(tokens={"console": TokenSettings(token=TOKEN, role="admin")})}
    )
    cam_tasks.setup(app, secured)
    async with TestServer(app, host="127.0.0.1") as server:
        url = server.make_url(f"{PREFIX}/openapi.json")
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            document = await response.json()
        expected = {
            (method.upper(), path) for path, item in document["paths"].items() for method in item
        }

        await run(browser.get, str(server.make_url(f"{PREFIX}/docs")))

        def rendered(driver: Any) -> bool:
            return driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true"

        await run(WebDriverWait(browser, 30, poll_frequency=0.05).until, rendered)

        def operations(driver: Any) -> list[tuple[str, str, str]]:
            return [
                (
                    card.get_attribute("data-method"),
                    card.get_attribute("data-path"),
                    card.find_element(By.CSS_SELECTOR, "h3 .summary").text,
                )
                for card in driver.find_elements(By.CSS_SELECTOR, "section.op")
            ]

        shown = await run(operations, browser)
        assert {(method, path) for method, path, _ in shown} == expected
        assert len(shown) == len(expected)
        assert all(summary for _, _, summary in shown)
        links = await run(browser.find_elements, By.CSS_SELECTOR, "nav a")
        assert len(links) >= len(expected)

        # The submit body lists the task types, the variants of the discriminated union.
        def submit_card(driver: Any) -> str:
            return str(driver.find_element(By.ID, "op-submit_task").text)

        card = await run(submit_card, browser)
        assert "SubmitTaskRequest" in card
        assert "Idempotency-Key" in card
        schema = await run(browser.find_element, By.ID, "schema-SyncAssetsParams")
        assert "asset_types" in await run(lambda: schema.text)

        ARTIFACTS.mkdir(exist_ok=True)
        assert await run(browser.save_screenshot, str(ARTIFACTS / "api-docs.png"))
        logs = await run(browser.get_log, "browser")
        assert [entry for entry in logs if entry.get("level") == "SEVERE"] == []
