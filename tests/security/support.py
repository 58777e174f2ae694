"""Shared pieces of the security tests: principals and their tokens, an API served with the
bearer-token authenticator, a recording database, and a walk over the API's router."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from cam_tasks.domain import Principal, Role
from cam_tasks.web import BearerTokenAuthenticator
from cam_tasks.web.docs_page import DOCS_PUBLIC_PATHS
from tests.web.helpers import PREFIX, Client

ADMIN = Principal(name="root", role=Role.ADMIN)
ALICE = Principal(name="alice", projects=("project-a",), role=Role.OPERATOR)
BOB = Principal(name="bob", projects=("project-b",), role=Role.OPERATOR)
VERA = Principal(name="vera", projects=("project-a",), role=Role.VIEWER)

TOKENS: Mapping[str, Principal] = {
    "root-token-0123456789abcdef": ADMIN,
    "alice-token-0123456789abcdef": ALICE,
    "bob-token-0123456789abcdef": BOB,
    "vera-token-0123456789abcdef": VERA,
}
TOKEN_OF: Mapping[str, str] = {principal.name: token for token, principal in TOKENS.items()}


#: Route templates of the API served without authentication: its OpenAPI document and page.
PUBLIC_TEMPLATES = frozenset(f"{PREFIX}{path}" for path in DOCS_PUBLIC_PATHS)


def bearer(principal: Principal) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN_OF[principal.name]}"}


def authenticator() -> BearerTokenAuthenticator:
    return BearerTokenAuthenticator(TOKENS)


# -- the router --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One (method, path template) of the mounted API; ``template`` carries the mount prefix."""

    method: str
    template: str

    def path(self, **values: str) -> str:
        """The template with every ``{name}`` (or ``{name:regex}``) filled from ``values``,
        ``"x"`` for names not given."""
        return re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: values.get(m.group(1), "x"), self.template)

    @property
    def has_body(self) -> bool:
        return self.method in {"POST", "PUT", "PATCH"}


def api_app(host: web.Application, prefix: str) -> web.Application:
    """The sub-application mounted at ``prefix`` in ``host``."""
    for resource in host.router.resources():
        info = resource.get_info()
        if info.get("prefix") == prefix and isinstance(info.get("app"), web.Application):
            app: web.Application = info["app"]
            return app
    raise LookupError(f"nothing is mounted at {prefix}")


def routes_of(app: web.Application) -> list[Route]:
    """Every route of ``app``'s router (read at test time, so routes added by anyone are
    covered), OPTIONS routes of CORS preflight included."""
    found = {
        Route(route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    }
    return sorted(found, key=lambda r: (r.template, r.method))


# -- a database that records what it is asked ---------------------------------------------------

#: Operators the repositories put in filters themselves (a new one here deserves a review).
REPOSITORY_OPERATORS = frozenset(
    {"$in", "$nin", "$eq", "$ne", "$lt", "$lte", "$gte", "$type", "$exists"}
)
_FILTER_METHODS = frozenset(
    {
        "find",
        "find_one",
        "find_one_and_update",
        "find_one_and_delete",
        "find_one_and_replace",
        "count_documents",
        "delete_one",
        "delete_many",
        "update_one",
        "update_many",
        "replace_one",
        "distinct",
    }
)


@dataclass
class Recording:
    """Filters (and ``$match`` stages) and inserted documents, in the order they were sent."""

    filters: list[tuple[str, Any]]
    inserted: list[Any]

    def clear(self) -> None:
        self.filters.clear()
        self.inserted.clear()


class RecordingCollection:
    """A collection that records the filter of every call taking one, then delegates."""

    def __init__(self, inner: Any, recording: Recording) -> None:
        self._inner = inner
        self._recording = recording

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute
        recording = self._recording

        def call(*args: Any, **kwargs: Any) -> Any:
            if name in _FILTER_METHODS:
                query = args[0] if args else kwargs.get("filter", {})
                recording.filters.append((name, query))
            elif name == "aggregate":
                pipeline = args[0] if args else kwargs.get("pipeline", [])
                for stage in pipeline:
                    if "$match" in stage:
                        recording.filters.append(("aggregate", stage["$match"]))
            elif name == "insert_one":
                recording.inserted.append(args[0])
            elif name == "insert_many":
                recording.inserted.extend(args[0])
            return attribute(*args, **kwargs)

        return call


class RecordingDatabase:
    """A database handle whose collections are :class:`RecordingCollection`."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.recording = Recording([], [])

    def __getitem__(self, name: str) -> RecordingCollection:
        return RecordingCollection(self._inner[name], self.recording)

    def get_collection(self, name: str, **options: Any) -> RecordingCollection:
        return RecordingCollection(self._inner.get_collection(name, **options), self.recording)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def dollar_keys(value: Any, path: str = "") -> Iterator[str]:
    """Paths of every key starting with ``$`` anywhere in ``value``."""
    if isinstance(value, Mapping):
        for key, child in value.items():
            where = f"{path}.{key}"
            if isinstance(key, str) and key.startswith("$"):
                yield where
            yield from dollar_keys(child, where)
    elif isinstance(value, list | tuple):
        for i, child in enumerate(value):
            yield from dollar_keys(child, f"{path}[{i}]")


def foreign_operators(query: Mapping[str, Any]) -> list[str]:
    """Operators in ``query`` that the repositories would not have put there: a ``$`` key at
    the top level, one outside :data:`REPOSITORY_OPERATORS`, or any ``$`` key inside an
    operator's argument (a document a client could have shaped)."""
    found: list[str] = []
    for field, condition in query.items():
        if field.startswith("$"):
            found.append(field)
            continue
        if isinstance(condition, Mapping):
            for operator, argument in condition.items():
                if operator not in REPOSITORY_OPERATORS:
                    found.append(f"{field}.{operator}")
                found.extend(dollar_keys(argument, f"{field}.{operator}"))
        else:
            found.extend(dollar_keys(condition, field))
    return found


async def request(
    client: Client,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    json: Any = None,
    data: bytes | None = None,
) -> tuple[int, Mapping[str, str], bytes]:
    """Status, headers and body of one request. An event stream is not read (it would never
    end): its body comes back empty."""
    send_headers = dict(headers or {})
    if data is not None:
        send_headers.setdefault("Content-Type", "application/json")
    async with client.request(method, path, headers=send_headers, json=json, data=data) as response:
        body = b"" if response.content_type == "text/event-stream" else await response.read()
        return response.status, dict(response.headers), body
