"""The dashboard in a real headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven
by Selenium), as an operator uses it: the overview, the task list with its filters and pages,
a task at its own URL followed live to the end, the schedules, the submit form generated from
the API's schema, the token flow and a read-only token. Queues, bulk actions and assets are
driven when the server's OpenAPI document has their routes, and skipped (saying so) when not.

Screenshots are kept under ``.artifacts/`` (desktop and phone). The app is the real one:
``cam_tasks.setup`` on an aiohttp application, with the example provider ``aliyun`` over the
packaged sample inventory, served over TCP on the loopback. Selenium is synchronous, so each of
its calls runs in a thread while the event loop serves. One browser serves the whole module.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
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
API = "/api/v1/cam"
WAIT_S = 30.0
ADMIN_TOKEN = "dashboard-admin-token-0123456789abcdef"
VIEWER_TOKEN = "dashboard-viewer-token-0123456789abcdef"
PROJECT = "ops"
SYNC = {"provider": "aliyun", "asset_types": ["ecs", "rds"]}

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


def secured() -> cam_tasks.Settings:
    tokens = {
        # The admin's submissions go to its first project, which the viewer may read.
        "console": TokenSettings(token=ADMIN_TOKEN, role="admin", projects=[PROJECT]),
        "watcher": TokenSettings(token=VIEWER_TOKEN, role="viewer", projects=[PROJECT]),
    }
    return settings().model_copy(update={"auth": AuthSettings(tokens=tokens)})


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(tmp_path_factory.mktemp("chromium")) as driver:
        yield driver


async def run(call: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(call, *args)


class Api:
    """The HTTP API beside the page: to arrange tasks and to check what the page did."""

    def __init__(self, session: aiohttp.ClientSession, server: TestServer, token: str | None):
        self.session = session
        self.server = server
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        url = self.server.make_url(API + path)
        async with self.session.request(method, url, json=body, headers=self.headers) as answer:
            envelope = await answer.json()
        assert envelope["code"] == 0, envelope
        return envelope["data"]

    async def submit(self, account_id: str) -> str:
        body = {"type": "sync_assets", "params": {**SYNC, "account_id": account_id}}
        task_id: str = (await self.call("POST", "/tasks", body))["task_id"]
        return task_id

    async def status(self, task_id: str, status: str) -> dict[str, Any]:
        async def task() -> dict[str, Any]:
            found: dict[str, Any] = await self.call("GET", f"/tasks/{task_id}")
            return found

        return await eventually(task, lambda t: t["status"] == status, timeout_s=WAIT_S)

    async def routes(self) -> set[tuple[str, str]]:
        async with self.session.get(self.server.make_url(f"{API}/openapi.json")) as answer:
            document = await answer.json()
        return {(m.upper(), path) for path, item in document["paths"].items() for m in item}


@asynccontextmanager
async def serving(
    config: cam_tasks.Settings, token: str | None = None
) -> AsyncIterator[tuple[TestServer, Api]]:
    app = web.Application()
    cam_tasks.setup(app, config)
    async with (
        TestServer(app, host="127.0.0.1") as server,
        aiohttp.ClientSession() as session,
    ):
        yield server, Api(session, server, token)


class Page:
    """The dashboard as a person uses it, one Selenium call at a time in a thread."""

    def __init__(self, driver: Any, server: TestServer) -> None:
        from selenium.webdriver.common.by import By

        self.driver = driver
        self.server = server
        self.by = By

    async def open(self, fragment: str = "") -> None:
        await run(self.driver.set_window_size, 1400, 1000)
        await run(self.driver.get_log, "browser")  # what earlier pages logged is theirs
        await run(self.driver.get, str(self.server.make_url("/cam/")) + fragment)

    async def go(self, fragment: str) -> None:
        await run(self.driver.execute_script, f"location.hash = {fragment!r}")

    async def until(self, condition: Callable[[Any], T], message: str) -> T:
        """Wait (polling the page) until ``condition`` returns something truthy."""
        from selenium.common.exceptions import (
            NoSuchElementException,
            StaleElementReferenceException,
        )
        from selenium.webdriver.support.ui import WebDriverWait

        # Rows are redrawn when their task changes: an element read may go stale meanwhile.
        wait = WebDriverWait(
            self.driver,
            WAIT_S,
            poll_frequency=0.05,
            ignored_exceptions=(StaleElementReferenceException, NoSuchElementException),
        )
        return await run(wait.until, condition, message)

    def element(self, element_id: str) -> Any:
        return self.driver.find_element(self.by.ID, element_id)

    def all(self, css: str) -> list[Any]:
        found: list[Any] = self.driver.find_elements(self.by.CSS_SELECTOR, css)
        return found

    async def text(self, element_id: str) -> str:
        return str(await run(lambda: self.element(element_id).text))

    async def shows(self, element_id: str, words: str) -> str:
        return await self.until(
            lambda _: words in (found := self.element(element_id).text) and found,
            f"#{element_id} never said {words!r}",
        )

    async def fill(self, element_id: str, text: str) -> None:
        def type_in() -> None:
            field = self.element(element_id)
            field.clear()
            field.send_keys(text)

        await run(type_in)

    async def choose(self, element_id: str, value: str) -> None:
        from selenium.webdriver.support.ui import Select

        await run(lambda: Select(self.element(element_id)).select_by_value(value))

    async def click(self, css: str) -> None:
        def clicked(driver: Any) -> bool:
            driver.find_element(self.by.CSS_SELECTOR, css).click()
            return True

        await self.until(clicked, f"could not click {css}")

    async def confirm(self) -> str:
        """Accept the confirmation the page asked for; its text."""

        def accepted(driver: Any) -> str:
            alert = driver.switch_to.alert
            text = str(alert.text)
            alert.accept()
            return text

        from selenium.common.exceptions import NoAlertPresentException
        from selenium.webdriver.support.ui import WebDriverWait

        wait = WebDriverWait(
            self.driver, WAIT_S, poll_frequency=0.05, ignored_exceptions=(NoAlertPresentException,)
        )
        return str(await run(wait.until, accepted, "no confirmation was asked"))

    async def live(self) -> None:
        await self.until(
            lambda _: "live" in self.element("connection").get_attribute("class"),
            "the page never reached the API",
        )

    @staticmethod
    def row(task_id: str) -> str:
        return f'tr[data-task-id="{task_id}"]'

    async def row_status(self, task_id: str, status: str) -> None:
        await self.until(
            lambda _: any(
                r.get_attribute("data-status") == status for r in self.all(self.row(task_id))
            ),
            f"the row of {task_id} never showed {status}",
        )

    def notice_task(self, _: Any = None) -> str | None:
        task_id: str | None = self.element("notice").get_attribute("data-task-id")
        return task_id

    def visible(self, css: str) -> list[Any]:
        return [e for e in self.all(css) if e.is_displayed()]

    async def severe_console_errors(self) -> list[Any]:
        logs = await run(self.driver.get_log, "browser")
        return [entry for entry in logs if entry.get("level") == "SEVERE"]

    async def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        assert await run(self.driver.save_screenshot, str(ARTIFACTS / name))


async def test_overview_task_list_and_a_task_at_its_own_url(browser: Any) -> None:
    async with serving(settings()) as (server, api):
        failing = [await api.submit(f"no-such-account-{n}") for n in range(52)]
        await api.status(failing[-1], "failed")
        page = Page(browser, server)
        await page.open()
        await page.live()

        # The overview: counts by status (each a link to its tasks), the last hour, workers.
        await page.until(
            lambda _: (
                page.element("status-cards")
                .find_element(page.by.CSS_SELECTOR, '[data-status="failed"] .count')
                .text
                == "52"
            ),
            "the overview never counted the failed tasks",
        )
        await page.shows("hour-summary", "52 finished (0.9/min), 52 failed; failure rate 100 %")
        assert len(await run(page.all, "#hour-chart rect.bar")) == 12
        assert "/ 5" in await page.shows("workers", "Workers busy")
        assert await page.text("oldest-pending") == "none\nOLDEST PENDING"

        # Keyboard: the failed card is a link; Enter on it opens the failed tasks.
        from selenium.webdriver.common.keys import Keys

        card = await run(page.driver.find_element, page.by.CSS_SELECTOR, 'a[data-status="failed"]')
        await run(card.send_keys, Keys.ENTER)
        await page.shows("summary", "1-50 of 52")
        await page.click("#page-next")
        await page.shows("summary", "51-52 of 52")
        await page.click("#page-prev")
        await page.shows("summary", "1-50 of 52")

        # Sorting by a column reverses the page; the id search finds one task by its whole id.
        newest_first = [
            r.get_attribute("data-task-id") for r in await run(page.all, "#task-rows tr")
        ]
        assert newest_first == failing[::-1][:50]
        await page.click('#tasks .sort[data-sort="created_at"]')
        await page.until(
            lambda _: page.all("#task-rows tr")[0].get_attribute("data-task-id") == failing[2],
            "sorting by creation time did not reverse the page",
        )
        queue = await run(lambda: page.all(f"{page.row(failing[2])} .queue")[0].text)
        assert queue == "default"  # under the type
        await page.fill("filter-id", failing[7])
        await page.click("#task-filters button[type=submit]")
        await page.until(
            lambda _: len(page.all("#task-rows tr")) == 1, "the id search did not narrow"
        )

        # Retry from the row; its page (#/tasks/<id>) shows both attempts and their errors.
        await page.click(f"{page.row(failing[7])} .retry")
        await page.shows("notice", "will run again")
        await eventually(
            lambda: api.call("GET", f"/tasks/{failing[7]}"),
            lambda t: len(t["history"]) == 2 and t["status"] == "failed",
            timeout_s=WAIT_S,
        )
        await page.click(f"{page.row(failing[7])} a.task-id")
        await page.until(lambda d: d.current_url.endswith(f"#/tasks/{failing[7]}"), "no own URL")
        await page.until(
            lambda _: len(page.all("#detail-attempts li.outcome-failed")) == 2,
            "the attempts timeline never showed both attempts",
        )
        assert "no account 'no-such-account-7'" in await page.text("detail-attempts")
        assert '"account_id": "no-such-account-7"' in await page.text("detail-params")

        # Submit from the form generated from the schema: provider and its asset types offered.
        await page.go("#/submit")
        await page.until(lambda _: page.element("param-provider").is_displayed(), "no form")
        assert [o.text for o in await run(page.all, "#submit-type option")] == [
            "discover_assets",
            "sync_assets",
        ]
        await page.fill("param-account_id", "123")
        await page.click('#param-asset_types input[value="ecs"]')
        await page.click('#param-asset_types input[value="rds"]')
        before = await run(page.notice_task)  # the retry's notice names its task too
        await page.click("#submit-button")
        task_id = await page.until(
            lambda _: (found := page.notice_task()) != before and found,
            "the page did not confirm the submission",
        )

        # Its own URL, opened in a fresh page: followed over server-sent events to the end.
        await page.open(f"#/tasks/{task_id}")
        seen: list[float] = []

        def finished(_: Any) -> bool:
            seen.append(float(page.element("detail-progress").get_attribute("value")))
            return page.element("detail-stream").text == "finished"

        await page.until(finished, "the task page never saw the task finish")
        assert seen == sorted(seen), seen
        assert await page.text("detail-percent") == "100 %"
        assert '"added_count"' in await page.text("detail-result")
        assert "completed" in await page.text("detail-attempts")
        await page.screenshot("dashboard-task.png")

        await page.go("#/overview")
        await page.shows("hour-summary", "53 finished (")
        await page.screenshot("dashboard.png")
        assert await page.severe_console_errors() == []

        # A 390 px phone: no view is wider than the screen (tables scroll inside their box).
        await run(browser.set_window_size, 390, 844)
        overflow = (
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        for fragment, ready, words in (
            ("#/overview", "hour-summary", "53 finished"),
            (f"#/tasks/{task_id}", "detail-stream", "finished"),
            ("#/schedules", "schedule-rows", "nightly-aliyun-sync"),
            ("#/submit", "submit-fields", "Account Id"),
            ("#/tasks?", "summary", "of 53"),  # no filter
        ):
            await page.go(fragment)
            await page.shows(ready, words)
            assert await run(browser.execute_script, overflow) <= 0, fragment
        await page.screenshot("dashboard-phone.png")


async def test_schedules_are_created_previewed_paused_run_edited_and_deleted(browser: Any) -> None:
    async with serving(settings()) as (server, api):
        page = Page(browser, server)
        await page.open("#/schedules")
        await page.live()

        await page.fill("schedule-name", "nightly-sync")
        await page.fill("schedule-expression", "*/5 * * * *")
        await page.shows("cron-words", "every 5 minutes")
        assert len(await run(page.all, "#cron-next li")) == 5
        await page.fill("schedule-expression", "61 * * * *")
        await page.shows("cron-preview", "Cannot preview")
        await page.fill("schedule-expression", "30 2 * * MON-FRI")
        await page.shows("cron-words", "at 02:30, on Monday, Tuesday, Wednesday, Thursday, Friday")
        await page.choose("schedule-type", "sync_assets")
        await page.fill(
            "schedule-params", '{"provider": "aliyun", "account_id": "123", "asset_types": ["ecs"]}'
        )
        await page.click("#schedule-save")
        await page.shows("notice", "Schedule nightly-sync created.")
        row = 'tr[data-schedule="nightly-sync"]'
        await page.until(lambda _: page.all(row), "the new schedule is not listed")
        stored = await api.call("GET", "/schedules/nightly-sync")
        assert stored["expression"] == "30 2 * * MON-FRI"

        await page.click(f"{row} .pause")
        await page.until(
            lambda _: page.all(row)[0].get_attribute("data-active") == "false", "not paused"
        )
        assert (await api.call("GET", "/schedules/nightly-sync"))["next_run_at"] is None
        await page.click(f"{row} .resume")
        await page.until(
            lambda _: page.all(row)[0].get_attribute("data-active") == "true", "not resumed"
        )

        await page.click(f"{row} .run-now")
        task_id = await page.until(page.notice_task, "run now did not say which task")
        assert (await api.status(task_id, "completed"))["type"] == "sync_assets"

        await page.click(f"{row} .edit")
        await page.fill("schedule-expression", "0 3 * * *")
        await page.shows("cron-words", "at 03:00, every day")
        await page.screenshot("dashboard-schedules.png")
        await page.click("#schedule-save")
        await page.shows("notice", "Schedule nightly-sync saved.")
        assert (await api.call("GET", "/schedules/nightly-sync"))["expression"] == "0 3 * * *"

        await page.click(f"{row} .delete")
        assert "nightly-sync" in await page.confirm()
        await page.until(lambda _: not page.all(row), "the schedule is still listed")
        names = [s["name"] for s in (await api.call("GET", "/schedules"))["schedules"]]
        assert "nightly-sync" not in names
        assert await page.severe_console_errors() == []


async def test_a_token_is_asked_for_once_and_a_viewer_sees_no_write_actions(
    browser: Any,
) -> None:
    async with serving(secured(), ADMIN_TOKEN) as (server, api):
        page = Page(browser, server)
        await page.open()
        # Refused: the page says so and asks for a token, instead of retrying as "offline".
        await page.shows("auth-message", "requires an API token (HTTP 401")
        assert await page.text("connection") == "token needed"
        refused = [e for e in await page.severe_console_errors() if "401" in e["message"]]
        assert refused

        # A viewer: reads everything, and once a write is refused no write action is offered.
        task_id = await api.submit("123")
        await api.status(task_id, "completed")
        await page.fill("token", VIEWER_TOKEN)
        await page.click("#token-form button[type=submit]")
        await page.live()
        await page.go("#/tasks")
        await page.row_status(task_id, "completed")
        if ("POST", "/tasks/retry") not in await api.routes():
            # No write probe on this server: the first refused write tells the page.
            await page.click(f"{page.row(task_id)} .delete")
            await page.confirm()
        await page.shows("role", "read-only")
        assert await run(page.visible, ".write") == []
        assert await run(page.visible, "button.cancel, button.retry, button.delete") == []
        assert (await api.call("GET", f"/tasks/{task_id}"))["status"] == "completed"

        # An admin token: the write actions are back, and a task page long-polls with it.
        await page.click("#token-change")
        await page.fill("token", ADMIN_TOKEN)
        await page.click("#token-form button[type=submit]")
        await page.live()
        await page.until(lambda _: page.visible(f"{page.row(task_id)} .delete"), "no delete")
        await page.go(f"#/tasks/{task_id}")
        await page.shows("detail-stream", "finished")
        assert '"added_count"' in await page.text("detail-result")
        # The only console errors: the refusals above (401 before a token, 403 for the viewer).
        errors = await page.severe_console_errors()
        assert all("401" in e["message"] or "403" in e["message"] for e in errors), errors


async def test_queues_are_listed_paused_and_resumed(browser: Any) -> None:
    async with serving(settings()) as (server, api):
        if ("GET", "/queues") not in await api.routes():
            pytest.skip("this server's OpenAPI document has no GET /queues")
        page = Page(browser, server)
        await page.open("#/queues")
        await page.live()
        row = 'tr[data-queue="default"]'
        await page.until(lambda _: page.all(row), "the default queue is not listed")
        await page.click(f"{row} .pause")
        await page.until(lambda _: page.all(row)[0].get_attribute("data-paused") == "true", "")
        queues = (await api.call("GET", "/queues"))["queues"]
        assert next(q for q in queues if q["name"] == "default")["paused"] is True
        await page.screenshot("dashboard-queues.png")
        await page.click(f"{row} .resume")
        await page.until(lambda _: page.all(row)[0].get_attribute("data-paused") == "false", "")
        assert await page.severe_console_errors() == []


async def test_bulk_retry_and_delete_follow_the_filter(browser: Any) -> None:
    async with serving(settings()) as (server, api):
        routes = await api.routes()
        if ("POST", "/tasks/retry") not in routes or ("DELETE", "/tasks") not in routes:
            pytest.skip(
                "this server's OpenAPI document has no bulk POST /tasks/retry, DELETE /tasks"
            )
        failing = [await api.submit(f"no-such-account-{n}") for n in range(3)]
        for task_id in failing:
            await api.status(task_id, "failed")
        page = Page(browser, server)
        await page.open("#/tasks?status=failed")
        await page.live()
        await page.shows("summary", "of 3")
        await page.click("#bulk-retry")
        await page.shows("notice", "3 failed tasks will run again.")
        for task_id in failing:
            await eventually(
                lambda t=task_id: api.call("GET", f"/tasks/{t}"),
                lambda t: len(t["history"]) == 2 and t["status"] == "failed",
                timeout_s=WAIT_S,
            )
        await page.click("#bulk-delete")
        assert "cannot be undone" in await page.confirm()
        await page.shows("notice", "3 finished tasks deleted.")
        assert (await api.call("GET", "/tasks"))["total"] == 0
        assert await page.severe_console_errors() == []


async def test_assets_are_summarised_and_searched(browser: Any) -> None:
    async with serving(settings()) as (server, api):
        if ("GET", "/assets") not in await api.routes():
            pytest.skip("this server's OpenAPI document has no GET /assets")
        await api.status(await api.submit("123"), "completed")
        total = (await api.call("GET", "/assets"))["total"]
        assert total > 0
        page = Page(browser, server)
        await page.open("#/assets")
        await page.live()
        await page.shows("asset-count", f"of {total}")
        await page.fill("asset-type", "ecs")
        await page.click("#asset-filters button[type=submit]")
        ecs = (await api.call("GET", "/assets?type=ecs"))["total"]
        await page.shows("asset-count", f"of {ecs}")
        assert await page.severe_console_errors() == []
