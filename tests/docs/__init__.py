"""The docs test: every code sample of the README and of docs/ runs (see test_samples)."""

import pytest

# The runners' asserts are the test's: show their operands on failure.
pytest.register_assert_rewrite(
    "tests.docs.blocks",
    "tests.docs.data_samples",
    "tests.docs.js_samples",
    "tests.docs.preludes",
    "tests.docs.python_samples",
    "tests.docs.service",
    "tests.docs.shell_samples",
)
