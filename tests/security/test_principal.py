"""The principal: what each role sees and may do."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cam_tasks.domain import ANONYMOUS, AccessDeniedError, Permission, Principal, Role

OPERATOR = Principal(name="op", projects=("a", "b"), role=Role.OPERATOR)
VIEWER = Principal(name="v", projects=("a",), role=Role.VIEWER)
ADMIN = Principal(name="root", role=Role.ADMIN)


@pytest.mark.parametrize(
    ("principal", "allowed"),
    [
        (ADMIN, set(Permission)),
        (OPERATOR, set(Permission)),
        (VIEWER, {Permission.READ}),
    ],
)
def test_each_role_may_do_what_its_table_says(
    principal: Principal, allowed: set[Permission]
) -> None:
    for permission in Permission:
        assert principal.may(permission) is (permission in allowed)
        if permission in allowed:
            principal.require(permission)
        else:
            with pytest.raises(AccessDeniedError) as caught:
                principal.require(permission)
            assert (caught.value.principal, caught.value.action) == (principal.name, permission)


def test_non_admins_see_their_projects_only() -> None:
    assert OPERATOR.sees("a")
    assert OPERATOR.sees("b")
    assert not OPERATOR.sees("c")
    assert not OPERATOR.sees(None)
    assert ADMIN.sees("c")
    assert ADMIN.sees(None)


def test_the_first_project_is_home() -> None:
    assert OPERATOR.home_project == "a"
    assert ADMIN.home_project is None


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "x", "role": "viewer"},
        {"name": "x", "role": "operator", "projects": ()},
        {"name": "", "role": "admin"},
        {"name": "x", "role": "admin", "projects": ("a", "a")},
        {"name": "x", "role": "admin", "projects": ("",)},
        {"name": "x", "role": "superuser"},
    ],
)
def test_inconsistent_principals_cannot_exist(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Principal.model_validate(fields)


def test_principals_are_immutable_values() -> None:
    with pytest.raises(ValidationError):
        OPERATOR.role = Role.ADMIN  # type: ignore[misc]
    assert Principal(name="op", projects=("a", "b"), role=Role.OPERATOR) == OPERATOR
    assert ANONYMOUS.is_admin
