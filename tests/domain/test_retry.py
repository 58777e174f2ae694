"""Backoff: within [base, cap], non-decreasing before jitter, jitter bounded."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cam_tasks.domain import RetryPolicy

policies = st.builds(
    lambda base, factor, jitter: RetryPolicy(base_s=base, max_s=base * factor, jitter=jitter),
    st.floats(0.001, 100),
    st.floats(1, 10_000),
    st.floats(0, 1),
)


@given(policies, st.integers(1, 200), st.integers(0, 2**32))
def test_every_delay_lies_between_base_and_cap(
    policy: RetryPolicy, attempt: int, seed: int
) -> None:
    delay = policy.delay_s(attempt, random.Random(seed))
    assert policy.base_s <= delay <= policy.max_s


@given(policies, st.integers(1, 200))
def test_base_delay_never_decreases(policy: RetryPolicy, attempt: int) -> None:
    assert policy.base_delay_s(attempt) <= policy.base_delay_s(attempt + 1)


@given(policies, st.integers(1, 200), st.integers(0, 2**32))
def test_jitter_adds_at_most_its_fraction(policy: RetryPolicy, attempt: int, seed: int) -> None:
    base = policy.base_delay_s(attempt)
    delay = policy.delay_s(attempt, random.Random(seed))
    assert base <= delay <= base * (1 + policy.jitter) + 1e-9


def test_delays_double_until_the_cap() -> None:
    policy = RetryPolicy(base_s=1, max_s=10, jitter=0)
    assert [policy.delay_s(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


@pytest.mark.parametrize(
    ("base", "cap", "jitter"), [(0, 1, 0), (2, 1, 0), (1, 2, -0.1), (1, 2, 1.5)]
)
def test_nonsense_policies_are_refused(base: float, cap: float, jitter: float) -> None:
    with pytest.raises(ValueError, match="base_s"):
        RetryPolicy(base_s=base, max_s=cap, jitter=jitter)
