"""Checking the docs' data blocks against the real thing: ``toml``, ``yaml`` and ``json``.

- ``toml`` (configuration): loaded with ``cam_tasks.load_settings``, which must then hold every
  value the block sets. When it declares ``[[schedules]]``, a ``CamTasks`` starts with it (plus
  the example's ``aliyun`` provider, which the schedules' params name) and stores each schedule
  as declared.
- ``yaml``: a Prometheus rule file (``groups``): every rule has a name and an expression, and
  every ``cam_tasks_*`` metric an expression names, with its label matchers' names, is in a real
  ``/metrics`` scrape of the live service. Kubernetes probes (``livenessProbe`` and the like):
  each probe's port is the default ``[server] port`` and its path answers 200 on the service.
  Any other YAML fails the test.
- ``json``: parsed, a bare ``...`` or ``…`` standing for any value. A directive says what it
  shows, and the test fetches the real one to compare the keys of the top level (and of
  ``data``, in an envelope): ``response='METHOD PATH [JSON BODY]'`` is an answer of the live
  service to that request (in an envelope, ``code`` is also checked: 0 on success, else the
  HTTP status; with the flag ``exact``, the whole answer must be the sample, ``...`` aside);
  ``log`` is a log record, which the test captures the way docs/operations.md
  says a host gets it (``JsonFormatter`` and ``LogContextFilter`` with the dispatcher's owner
  on its handler) while it submits a sync over the API. A JSON block without one fails.
"""

from __future__ import annotations

import json
import logging
import re
import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families

import cam_tasks
from cam_tasks.cli import JsonFormatter
from cam_tasks.web import LogContextFilter
from tests.docs.blocks import Block
from tests.docs.service import API, Service, example_settings, run_over_http
from tests.support.waiting import eventually

# -- toml --------------------------------------------------------------------------------------


def _holds(loaded: Any, declared: Any, where: str) -> None:
    """``loaded`` (a settings model) holds every value of ``declared`` (the TOML data)."""
    if isinstance(declared, dict) and not isinstance(loaded, dict):  # a settings section
        for key, value in declared.items():
            _holds(getattr(loaded, key), value, f"{where}.{key}")
    elif (
        isinstance(declared, dict)
        and declared
        and all(isinstance(value, dict) for value in declared.values())
    ):  # a table of named tables ([queues.NAME]): the same names, each holding its values
        assert set(loaded) == set(declared), f"{where}: loaded {sorted(loaded)}"
        for key, value in declared.items():
            _holds(loaded[key], value, f"{where}.{key}")
    elif isinstance(declared, list) and declared and isinstance(declared[0], dict):
        assert len(loaded) == len(declared), where
        for index, (item, value) in enumerate(zip(loaded, declared, strict=True)):
            _holds(item, value, f"{where}[{index}]")
    else:
        assert loaded == declared, f"{where}: loaded {loaded!r}, the sample says {declared!r}"


async def run_toml(block: Block, workdir: Path) -> None:
    path = workdir / f"sample-{block.line}.toml"
    path.write_text(block.code, encoding="utf-8")
    declared = tomllib.loads(block.code)
    settings = cam_tasks.load_settings(path)
    _holds(settings, declared, "settings")
    if settings.schedules:
        providers = example_settings().providers.model_dump()
        runtime_settings = cam_tasks.load_settings(path, providers=providers)
        async with cam_tasks.CamTasks(runtime_settings) as cam:
            for schedule in settings.schedules:
                stored = await cam.schedules.get(schedule.name)
                priority = schedule.priority
                if isinstance(priority, str):
                    priority = cam_tasks.Priority[priority.upper()]
                assert (stored.expression, stored.timezone, stored.type) == (
                    schedule.expression,
                    schedule.timezone,
                    schedule.type,
                )
                # stored params are the validated ones: the declared, with defaults filled in
                assert stored.params == {**stored.params, **schedule.params}, stored.params
                assert stored.priority == priority
                assert stored.active is (schedule.active is not False)


# -- yaml --------------------------------------------------------------------------------------

_METRIC = re.compile(r"\bcam_tasks_\w+")
_MATCHERS = re.compile(r"\b(cam_tasks_\w+)\{([^}]*)\}")
_MATCHER_LABEL = re.compile(r"(\w+)\s*(?:=~|!=|!~|=)")


async def _scrape(service: Service) -> dict[str, set[str]]:
    """Every metric name of a ``/metrics`` scrape, taken after a sync ran to its end -> the
    label names its samples carry."""
    body = {"provider": "aliyun", "account_id": "123", "asset_types": ["ecs"]}
    async with aiohttp.ClientSession() as http:
        view = await run_over_http(http, service.url, "/tasks/sync-assets", body)
        assert view["status"] == "completed", view
        async with http.get(f"{service.url}/metrics") as response:
            assert response.status == 200
            text = await response.text()
    names: dict[str, set[str]] = {}
    for line in text.splitlines():  # a family without samples yet still has its TYPE line
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            suffixes = ("", "_bucket", "_count", "_sum") if kind == "histogram" else ("",)
            for suffix in suffixes:
                names.setdefault(name + suffix, set())
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


async def run_yaml(block: Block, service: Service) -> None:
    document = yaml.safe_load(block.code)
    assert isinstance(document, dict), "a YAML sample is a mapping"
    if "groups" in document:
        scraped = await _scrape(service)
        rules = [rule for group in document["groups"] for rule in group["rules"]]
        assert rules
        assert all(group["name"] for group in document["groups"]), document
        for rule in rules:
            assert isinstance(rule["alert"], str), rule
            assert isinstance(rule["expr"], str), rule
            for metric in _METRIC.findall(rule["expr"]):
                assert metric in scraped, f"{rule['alert']}: no metric {metric} in /metrics"
            for metric, matchers in _MATCHERS.findall(rule["expr"]):
                labels = set(_MATCHER_LABEL.findall(matchers))
                if scraped[metric]:
                    assert labels <= scraped[metric], f"{rule['alert']}: {metric}{{{matchers}}}"
    elif document and all(key.endswith("Probe") for key in document):
        async with aiohttp.ClientSession() as http:
            for probe in document.values():
                assert probe["httpGet"]["port"] == cam_tasks.Settings().server.port, probe
                async with http.get(f"{service.url}{probe['httpGet']['path']}") as response:
                    assert response.status == 200, probe
    else:
        raise AssertionError("a YAML sample the docs test does not know how to check")


# -- json --------------------------------------------------------------------------------------


#: What a bare ``...`` or ``…`` of a JSON sample parses to: any value.
ANY = "\u2026any value\u2026"


def parse_json_sample(text: str) -> Any:
    """Parse JSON in which a bare ``...`` or ``…`` (outside strings) stands for any value
    (:data:`ANY`)."""
    out: list[str] = []
    in_string = escaped = False
    index = 0
    while index < len(text):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif text.startswith("...", index) or char == "…":
            out.append(json.dumps(ANY))
            index += 1 if char == "…" else 3
            continue
        out.append(char)
        index += 1
    return json.loads("".join(out))


def _same_keys(sample: dict[str, Any], real: dict[str, Any], where: str) -> None:
    assert set(sample) == set(real), (
        f"{where}: the sample has {sorted(sample)}, real {sorted(real)}"
    )


def _same(sample: Any, real: Any, where: str = "") -> None:
    """``real`` is ``sample``, where :data:`ANY` matches anything."""
    if sample == ANY:
        return
    if isinstance(sample, dict) and isinstance(real, dict):
        _same_keys(sample, real, where or "top level")
        for key, value in sample.items():
            _same(value, real[key], f"{where}.{key}")
    elif isinstance(sample, list) and isinstance(real, list):
        assert len(sample) == len(real), f"{where}: {sample!r} against {real!r}"
        for index, (item, real_item) in enumerate(zip(sample, real, strict=True)):
            _same(item, real_item, f"{where}[{index}]")
    else:
        assert sample == real, f"{where}: the sample says {sample!r}, the real answer {real!r}"


async def _check_response(sample: Any, request: str, service: Service, *, exact: bool) -> None:
    method, path, *body = request.split(maxsplit=2)
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method, f"{service.url}{path}", json=json.loads(body[0]) if body else None
        ) as response,
    ):
        real = await response.json()
    assert isinstance(sample, dict), sample
    assert isinstance(real, dict), real
    _same_keys(sample, real, "top level")
    if {"code", "msg", "data"} <= set(real):
        assert real["code"] == (0 if response.status < 400 else response.status), real
        if isinstance(sample["data"], dict):
            _same_keys(sample["data"], real["data"], "data")
    if exact:
        _same(sample, real)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def _check_log(sample: Any, service: Service) -> None:
    runtime = service.runtimes[0]
    handler = _Records()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(LogContextFilter({"owner": runtime.dispatcher.owner}))
    logger = logging.getLogger("cam_tasks")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        body = {"provider": "aliyun", "account_id": "123", "asset_types": ["ecs"]}
        headers = {"X-Request-ID": str(sample.get("request_id", "docs-sample"))}
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{service.url}{API}/tasks/sync-assets", json=body, headers=headers) as sent,
        ):
            assert sent.status == 202, await sent.text()

        async def matching() -> list[dict[str, Any]]:
            records = [json.loads(line) for line in handler.lines]
            return [record for record in records if record["message"] == sample["message"]]

        found = await eventually(matching, bool)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    _same_keys(sample, found[0], "log record")
    assert found[0]["request_id"] == headers["X-Request-ID"]


async def run_json(block: Block, service: Service) -> None:
    sample = parse_json_sample(block.code)
    if "response" in block.directives:
        exact = "exact" in block.directives
        await _check_response(sample, block.directives["response"], service, exact=exact)
    elif "log" in block.directives:
        await _check_log(sample, service)
    else:
        raise AssertionError(
            "a JSON sample needs a directive saying what it shows: "
            "<!-- sample: response='METHOD PATH [BODY]' --> or <!-- sample: log= -->"
        )
