"""Cron expressions, zones and next fire times: what a schedule means, DST included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cam_tasks.domain import (
    InvalidParamsError,
    Schedule,
    ScheduleExistsError,
    check_schedule_name,
    fire_key,
    parse_cron,
    parse_timezone,
)
from cam_tasks.domain.schedule import CRON_ALIASES, next_fire_time


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def fires(expression: str, zone: str, after: datetime, count: int) -> list[datetime]:
    times: list[datetime] = []
    for _ in range(count):
        fire = next_fire_time(expression, zone, after=after)
        assert fire is not None
        times.append(fire)
        after = fire
    return times


# -- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "after", "expected"),
    [
        ("@hourly", utc(2026, 5, 4, 10, 15), utc(2026, 5, 4, 11)),
        ("@daily", utc(2026, 5, 4, 10, 15), utc(2026, 5, 5)),
        ("@midnight", utc(2026, 5, 4, 10, 15), utc(2026, 5, 5)),
        ("@weekly", utc(2026, 5, 4, 10, 15), utc(2026, 5, 10)),  # the next Sunday
        ("@monthly", utc(2026, 5, 4, 10, 15), utc(2026, 6, 1)),
        ("@yearly", utc(2026, 5, 4, 10, 15), utc(2027, 1, 1)),
        ("@annually", utc(2026, 5, 4, 10, 15), utc(2027, 1, 1)),
        ("@DAILY", utc(2026, 5, 4, 10, 15), utc(2026, 5, 5)),
    ],
)
def test_aliases_mean_what_crontab_says(alias: str, after: datetime, expected: datetime) -> None:
    assert alias.lower() in CRON_ALIASES
    assert next_fire_time(alias, "UTC", after=after) == expected


def test_an_expression_is_kept_as_written_with_its_whitespace_normalised() -> None:
    assert parse_cron("  */5   9-17 * *  MON-FRI ") == "*/5 9-17 * * MON-FRI"
    assert parse_cron("@daily") == "@daily"


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "   ",
        "* * * *",  # four fields
        "0 0 * * * *",  # six fields (seconds) are not cron
        "60 * * * *",
        "* 24 * * *",
        "*/0 * * * *",
        "5-1 * * * *",
        "0 0 31 4 *",  # April has no 31st: never fires
        "0 0 30 2 *",
        "@reboot",
        "@every_minute",
        "0 0 * * * ; rm -rf /",
        "x" * 300,
    ],
)
def test_an_invalid_expression_is_refused_with_a_detail_at_expression(expression: str) -> None:
    with pytest.raises(InvalidParamsError) as caught:
        parse_cron(expression)
    assert [d["loc"] for d in caught.value.details] == [["expression"]]
    assert all(d["msg"] for d in caught.value.details)


def test_a_non_string_expression_is_refused() -> None:
    with pytest.raises(InvalidParamsError):
        parse_cron(5)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Shanghai"])
def test_iana_zones_are_accepted(zone: str) -> None:
    assert str(parse_timezone(zone)) == zone


@pytest.mark.parametrize(
    "zone", ["", "Mars/Olympus", "../../etc/passwd", "Europe//Berlin", 3, None]
)
def test_an_unknown_zone_is_refused_with_a_detail_at_timezone(zone: object) -> None:
    with pytest.raises(InvalidParamsError) as caught:
        parse_timezone(zone)
    assert [d["loc"] for d in caught.value.details] == [["timezone"]]


@pytest.mark.parametrize("name", ["nightly", "sync.aliyun-cn_1", "A", "9" * 100])
def test_valid_schedule_names(name: str) -> None:
    assert check_schedule_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", ".hidden", "a b", "a/b", "a:b", "x" * 101, None])
def test_invalid_schedule_names_are_refused(name: object) -> None:
    with pytest.raises(InvalidParamsError) as caught:
        check_schedule_name(name)
    assert caught.value.details[0]["loc"] == ["name"]


# -- next fire times ---------------------------------------------------------------------------


def test_the_next_fire_time_is_strictly_after_and_in_utc() -> None:
    on_the_minute = utc(2026, 5, 4, 10, 15)
    assert next_fire_time("* * * * *", "UTC", after=on_the_minute) == utc(2026, 5, 4, 10, 16)
    fire = next_fire_time("15 10 * * *", "UTC", after=on_the_minute)
    assert fire == utc(2026, 5, 5, 10, 15)
    assert fire.tzinfo is UTC


def test_the_expression_is_read_in_the_schedule_zone() -> None:
    after = utc(2026, 1, 10, 0, 0)
    assert next_fire_time("0 9 * * *", "Asia/Shanghai", after=after) == utc(2026, 1, 10, 1)
    assert next_fire_time("0 9 * * *", "America/New_York", after=after) == utc(2026, 1, 10, 14)


def test_a_local_time_keeps_its_wall_clock_across_dst_in_new_york() -> None:
    # DST starts 2026-03-08 (EST -5 -> EDT -4): 09:00 local moves from 14:00 to 13:00 UTC.
    times = fires("0 9 * * *", "America/New_York", utc(2026, 3, 6, 15), 3)
    assert times == [utc(2026, 3, 7, 14), utc(2026, 3, 8, 13), utc(2026, 3, 9, 13)]


def test_a_time_in_the_skipped_hour_fires_once_right_after_the_change_in_berlin() -> None:
    # 2026-03-29 02:00 CET -> 03:00 CEST: 02:30 does not exist that day.
    times = fires("30 2 * * *", "Europe/Berlin", utc(2026, 3, 27, 12), 3)
    assert times == [
        utc(2026, 3, 28, 1, 30),  # 02:30 CET
        utc(2026, 3, 29, 1, 0),  # 03:00 CEST, the first minute after the gap
        utc(2026, 3, 30, 0, 30),  # 02:30 CEST
    ]


def test_a_time_in_the_repeated_hour_fires_once_in_berlin() -> None:
    # 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 happens twice; the job runs at the first.
    times = fires("30 2 * * *", "Europe/Berlin", utc(2026, 10, 23, 12), 3)
    assert times == [
        utc(2026, 10, 24, 0, 30),  # 02:30 CEST
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST, first pass
        utc(2026, 10, 26, 1, 30),  # 02:30 CET
    ]


def test_asking_inside_the_second_pass_of_the_repeated_hour_never_goes_back() -> None:
    second_pass = utc(2026, 10, 25, 1, 10)  # 02:10 CET, after the 02:30 CEST fire
    assert next_fire_time("30 2 * * *", "Europe/Berlin", after=second_pass) == utc(
        2026, 10, 26, 1, 30
    )


def test_interval_jobs_follow_real_time_across_dst_changes() -> None:
    # Hourly in Berlin over the fall-back night: every real hour, both 02:00s included.
    hourly = fires("0 * * * *", "Europe/Berlin", utc(2026, 10, 24, 23, 30), 4)
    assert hourly == [utc(2026, 10, 25, h) for h in range(4)]
    # Over the spring-forward night: every real hour, none lost or doubled.
    hourly = fires("0 * * * *", "Europe/Berlin", utc(2026, 3, 28, 23, 30), 3)
    assert hourly == [utc(2026, 3, 29, h) for h in range(3)]


@settings(max_examples=200, deadline=None)
@given(
    expression=st.sampled_from(
        [
            "* * * * *",
            "*/7 * * * *",
            "30 2 * * *",
            "0 */3 * * *",
            "15 1 * * SUN",
            "@daily",
            "0 0 L * *",
        ]
    ),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]),
    after=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
    ),
)
def test_fire_times_always_move_forward(expression: str, zone: str, after: datetime) -> None:
    first = next_fire_time(expression, zone, after=after)
    assert first is not None
    assert first > after
    second = next_fire_time(expression, zone, after=first)
    assert second is not None
    assert second > first
    assert first - after <= timedelta(days=32)


# -- the model and keys ------------------------------------------------------------------------


def test_fire_keys_name_the_schedule_and_the_fire_time_to_the_millisecond() -> None:
    key = fire_key("nightly", datetime(2026, 5, 4, 12, 0, tzinfo=UTC))
    assert key == "schedule:nightly:2026-05-04T12:00:00.000Z"
    assert len(fire_key("x" * 100, utc(2026, 1, 1))) <= 200  # the task store's key limit


def test_a_schedule_is_frozen_and_keeps_times_in_utc() -> None:
    from zoneinfo import ZoneInfo

    berlin = datetime(2026, 5, 4, 14, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    schedule = Schedule(
        name="n", expression="@daily", type="t", created_at=berlin, updated_at=berlin
    )
    assert schedule.created_at == utc(2026, 5, 4, 12)
    assert schedule.created_at.tzinfo is UTC
    with pytest.raises(ValueError, match="frozen"):
        schedule.name = "m"  # type: ignore[misc]
    assert schedule.next_fire_after(utc(2026, 5, 4, 12)) == utc(2026, 5, 5)


def test_the_exists_error_is_a_conflict_naming_the_schedule() -> None:
    error = ScheduleExistsError("nightly")
    assert error.name == "nightly"
    assert "already exists" in str(error)
