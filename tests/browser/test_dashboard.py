"""The dashboard in a real headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven
by Selenium): submit a sync from the page, watch its bar reach 100 %, open it over server-sent
events, and keep a screenshot (``.artifacts/dashboard.png``).

The app is the real one: ``cam_tasks.setup`` on an aiohttp application, with the example
provider ``aliyun`` over the packaged sample inventory, served over TCP on the loopback.
Selenium is synchronous, so each of its calls runs in a thread while the event loop serves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import cam_tasks
from cam_tasks.config import AuthSettings, TokenSettings, load_settings
from tests.support.chromium import chromium
from tests.support.waiting import eventually

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".artifacts"
WAIT_S = 30.0

T = TypeVar("T")


def settings() -> cam_tasks.Settings:
    return load_settings(
        ROOT / "config.example.toml",
        queue={"progress_interval_s": 0.05, "heartbeat_interval_s": 0.5},
        providers={
            "static": [
                {"name": "aliyun", "inventory": "builtin:sample_inventory.toml", "latency_s": 0.05}
            ]
        },
    )


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path) as browser:
        yield browser


async def run(call: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(call, *args)


class Page:
    """The dashboard as a person uses it, one Selenium call at a time in a thread."""

    def __init__(self, driver: Any) -> None:
        from selenium.webdriver.common.by import By

        self.driver = driver
        self.by = By

    async def until(self, condition: Callable[[Any], T], message: str) -> T:
        """Wait (polling the page) until ``condition`` returns something truthy."""
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        # Rows are redrawn when their task changes: an element read may go stale meanwhile.
        wait = WebDriverWait(
            self.driver,
            WAIT_S,
            poll_frequency=0.05,
            ignored_exceptions=(StaleElementReferenceException,),
        )
        return await run(wait.until, condition, message)

    def element(self, element_id: str) -> Any:
        return self.driver.find_element(self.by.ID, element_id)

    async def text(self, element_id: str) -> str:
        return str(await run(lambda: self.element(element_id).text))

    async def fill(self, element_id: str, text: str) -> None:
        def type_in() -> None:
            field = self.element(element_id)
            field.clear()
            field.send_keys(text)

        await run(type_in)

    async def click(self, css: str) -> None:
        def clicked(driver: Any) -> bool:
            driver.find_element(self.by.CSS_SELECTOR, css).click()
            return True

        await self.until(clicked, f"could not click {css}")

    async def live(self) -> None:
        await self.until(
            lambda _: "live" in self.element("connection").get_attribute("class"),
            "the page never reached the API",
        )

    def confirmed(self, _: Any = None) -> str | None:
        task_id: str | None = self.element("notice").get_attribute("data-task-id")
        return task_id

    async def submit_sync(self, account_id: str) -> str:
        before = await run(self.confirmed)
        await self.fill("submit-provider", "aliyun")
        await self.fill("submit-account", account_id)
        await self.fill("submit-asset-types", "ecs, rds")
        await self.click("#submit-button")
        task_id: str = await self.until(
            lambda _: (found := self.confirmed()) != before and found,
            "the page did not confirm the submission",
        )
        return task_id

    @staticmethod
    def row(task_id: str) -> str:
        return f'tr[data-task-id="{task_id}"]'

    async def status_becomes(self, task_id: str, status: str) -> None:
        await self.until(
            lambda d: any(
                r.get_attribute("data-status") == status
                for r in d.find_elements(self.by.CSS_SELECTOR, self.row(task_id))
            ),
            f"the row of {task_id} never showed {status}",
        )

    async def runs_to_completion(self, task_id: str) -> None:
        """The row's bar climbs to 100 % (never going back) and it says completed."""
        seen: list[float] = []

        def finished(driver: Any) -> bool:
            rows = driver.find_elements(self.by.CSS_SELECTOR, self.row(task_id))
            if not rows:
                return False
            seen.append(
                float(rows[0].find_element(self.by.TAG_NAME, "progress").get_attribute("value"))
            )
            return rows[0].get_attribute("data-status") == "completed"

        await self.until(finished, f"the row of {task_id} never showed completed")
        assert seen == sorted(seen), seen

        def cells(driver: Any) -> tuple[str, str, str]:
            row = driver.find_element(self.by.CSS_SELECTOR, self.row(task_id))
            return (
                row.find_element(self.by.TAG_NAME, "progress").get_attribute("value"),
                row.find_element(self.by.CLASS_NAME, "percent").text,
                row.find_element(self.by.CLASS_NAME, "status").text,
            )

        shown = await self.until(cells, "the row could not be read")
        assert shown == ("100", "100 %", "completed")

    async def open_detail(self, task_id: str) -> None:
        await self.click(f"{self.row(task_id)} .task-id")

    async def detail_finished(self) -> str:
        await self.until(
            lambda _: self.element("detail-stream").text == "finished",
            "the detail panel never saw the task finish",
        )
        return await self.text("detail-body")

    async def severe_console_errors(self) -> list[Any]:
        logs = await run(self.driver.get_log, "browser")
        return [entry for entry in logs if entry.get("level") == "SEVERE"]


async def test_a_sync_submitted_from_the_dashboard_runs_to_100_percent(driver: Any) -> None:
    app = web.Application()
    cam_tasks.setup(app, settings())
    page = Page(driver)
    async with TestServer(app, host="127.0.0.1") as server:
        await run(driver.get, str(server.make_url("/cam/")))
        await page.live()

        # A sync of an account the provider does not know fails; its Retry button runs it again.
        failing = await page.submit_sync("no-such-account")
        await page.status_becomes(failing, "failed")
        await page.click(f"{page.row(failing)} .retry")
        await page.until(
            lambda _: "will run again" in page.element("notice").text,
            "the page did not confirm the retry",
        )
        async with aiohttp.ClientSession() as session:
            url = server.make_url(f"/api/v1/cam/tasks/{failing}")

            async def attempts() -> int:
                async with session.get(url) as response:
                    return len((await response.json())["data"]["history"])

            await eventually(attempts, lambda n: n == 2)  # it ran (and failed) once more
        await page.status_becomes(failing, "failed")

        task_id = await page.submit_sync("123")
        # The detail panel, opened at once, follows the task over server-sent events to ``done``.
        await page.open_detail(task_id)
        await page.runs_to_completion(task_id)
        detail = await page.detail_finished()
        assert '"status": "completed"' in detail
        assert '"added_count"' in detail
        assert await page.text("detail-stream") == "finished"
        # The task's queue shows in its row and in the panel's title.
        assert await page.text("detail-id") == f"{task_id} (queue default)"
        queue = await run(
            lambda: driver.find_element(page.by.CSS_SELECTOR, f"{page.row(task_id)} .queue").text
        )
        assert queue == "default"

        ARTIFACTS.mkdir(exist_ok=True)
        assert await run(driver.save_screenshot, str(ARTIFACTS / "dashboard.png"))
        assert await page.severe_console_errors() == []


TOKEN = "dashboard-test-token-0123456789abcdef"


async def test_with_a_token_the_dashboard_authenticates_and_long_polls(driver: Any) -> None:
    app = web.Application()
    secured = settings().model_copy(
        update={"auth": AuthSettings(tokens={"console": TokenSettings(token=TOKEN, role="admin")})}
    )
    cam_tasks.setup(app, secured)
    page = Page(driver)
    async with TestServer(app, host="127.0.0.1") as server:
        await run(driver.get, str(server.make_url("/cam/")))
        await page.until(
            lambda _: "offline" in page.element("connection").get_attribute("class"),
            "the page did not say it is refused",
        )
        await page.fill("token", TOKEN)
        await page.click("#token-form button")
        await page.live()

        task_id = await page.submit_sync("123")
        # EventSource cannot send the token (it would get 401 and never finish): the panel
        # follows the task by long poll instead.
        await page.open_detail(task_id)
        await page.runs_to_completion(task_id)
        detail = await page.detail_finished()
        assert '"status": "completed"' in detail
        # The only console errors are the 401s of the requests made before the token was set.
        errors = await page.severe_console_errors()
        assert all("401" in entry["message"] for entry in errors), errors
