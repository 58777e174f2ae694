"""Who is asking: the principal a request acts as, its role, and what each role may do.

A principal is what an authenticator (the host's hook, or the bearer-token one) turns a request
into. It carries a ``name`` (recorded as a task's ``created_by``), the ``projects`` it works in
(the first is its home project: the tasks it submits are recorded there) and a ``role``:

======== ============================== ===============================================
role     sees                           may
======== ============================== ===============================================
admin    every task, of every project   read, submit, cancel, retry, delete
         and tasks without a project
operator tasks of its projects only     read, submit, cancel, retry, delete
viewer   tasks of its projects only     read (get, list) only
======== ============================== ===============================================

A task outside what a principal sees does not exist for it (:class:`TaskNotFoundError`, a 404):
its existence is not revealed. A visible task an action is not permitted on raises
:class:`AccessDeniedError` (a 403). Errors added to the tree of :mod:`cam_tasks.domain.errors`::

    CamTasksError
    └── AccessDeniedError   the principal's role does not permit the action
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cam_tasks.domain.errors import CamTasksError

__all__ = [
    "ANONYMOUS",
    "ROLE_PERMISSIONS",
    "AccessDeniedError",
    "Permission",
    "Principal",
    "Role",
]

MAX_NAME_LENGTH: Final = 200


class Role(StrEnum):
    """How much a principal may do; see the module docstring for the table."""

    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"


class Permission(StrEnum):
    """A kind of action on tasks. ``operate`` covers cancel, retry and delete."""

    READ = "read"
    SUBMIT = "submit"
    OPERATE = "operate"


#: What each role may do (within what it sees).
ROLE_PERMISSIONS: Final[Mapping[Role, frozenset[Permission]]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OPERATOR: frozenset(Permission),
    Role.VIEWER: frozenset({Permission.READ}),
}


class AccessDeniedError(CamTasksError):
    """``principal`` (whose role is ``role``) may not ``action`` (a :class:`Permission`)."""

    def __init__(self, principal: str, role: Role, action: Permission) -> None:
        super().__init__(f"{role.value} {principal!r} may not {action.value}")
        self.principal = principal
        self.role = role
        self.action = action


class Principal(BaseModel):
    """An authenticated caller. Immutable; compare and hash by value.

    Invariant: a non-admin has at least one project (otherwise it could see nothing, not even
    the tasks it submits). ValidationError otherwise.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    #: Ordered: the first is the home project, where this principal's submissions go.
    projects: tuple[str, ...] = ()
    role: Role = Role.VIEWER

    @model_validator(mode="after")
    def _projects_are_sane(self) -> Principal:
        if any(not 0 < len(project) <= MAX_NAME_LENGTH for project in self.projects):
            raise ValueError(f"project names must be 1 to {MAX_NAME_LENGTH} characters")
        if len(set(self.projects)) != len(self.projects):
            raise ValueError("projects must not repeat")
        if self.role is not Role.ADMIN and not self.projects:
            raise ValueError(f"a {self.role.value} needs at least one project")
        return self

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def home_project(self) -> str | None:
        """The project this principal's submissions are recorded in (None: an admin without
        projects, whose tasks belong to no project)."""
        return self.projects[0] if self.projects else None

    def may(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]

    def sees(self, project_id: str | None) -> bool:
        """Whether a task of ``project_id`` exists for this principal."""
        return self.is_admin or (project_id is not None and project_id in self.projects)

    def visible_projects(self, wanted: frozenset[str] | None) -> frozenset[str] | None:
        """The ``project_ids`` condition of a query that asked for ``wanted`` (None: any), as
        this principal may run it: unchanged for an admin, else narrowed to its projects (a
        condition of the query itself, so a page and its total never count others' rows)."""
        if self.is_admin:
            return wanted
        projects = frozenset(self.projects)
        return projects if wanted is None else projects & wanted

    def require(self, permission: Permission) -> None:
        """Raise :class:`AccessDeniedError` unless the role permits ``permission``."""
        if not self.may(permission):
            raise AccessDeniedError(self.name, self.role, permission)


#: Who a request acts as when the API is mounted with ``allow_anonymous``: an admin, because
#: anonymous mode means "no authentication at all" (local trials, or a gateway in front that
#: already decided who may reach the API); anything narrower needs an authenticator.
ANONYMOUS: Final = Principal(name="anonymous", role=Role.ADMIN)
