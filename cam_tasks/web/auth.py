"""Authentication of the API: the ``authenticate`` hook, a bearer-token authenticator, anonymous
mode, and the middleware that applies one of them to every request.

The API is closed by default: :func:`authentication_middleware` runs before every handler of the
app it is installed on, so a route added to the app later is protected without doing anything.
Only the paths listed as public (health probes, metrics scrapes) and CORS preflight requests
(which never carry credentials) pass without a principal.

An authenticator is any ``async (request) -> Principal``. It raises :class:`AuthenticationError`
(a 401 with ``WWW-Authenticate``) to refuse; anything else it raises, or returns, is a server
error (a 500), never a pass: the middleware fails closed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from typing import Final

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from cam_tasks.domain import ANONYMOUS, AccessDeniedError, CamTasksError, Permission, Principal

__all__ = [
    "PRINCIPAL_KEY",
    "Authenticate",
    "AuthenticationError",
    "BearerTokenAuthenticator",
    "allow_anonymous",
    "authentication_middleware",
    "principal_of",
    "token_digest",
]

#: What a request is authenticated by: the host's own identity, or one shipped here.
Authenticate = Callable[[web.Request], Awaitable[Principal]]

#: The principal the current request acts as (absent on public routes).
PRINCIPAL_KEY: Final = web.RequestKey("cam_tasks.principal", Principal)

REALM: Final = "cam_tasks"
_CHALLENGE: Final = f'Bearer realm="{REALM}"'
# RFC 6750 b64token: the only characters a bearer token may have.
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_SAFE_METHODS: Final = frozenset({hdrs.METH_GET, hdrs.METH_HEAD, hdrs.METH_OPTIONS})


class AuthenticationError(CamTasksError):
    """The request carries no acceptable credentials (401).

    ``challenge`` is sent as ``WWW-Authenticate``; ``msg`` goes to the client as it is, so it
    must not say which tokens exist.
    """

    def __init__(self, msg: str = "authentication required", *, challenge: str = _CHALLENGE):
        super().__init__(msg)
        self.msg = msg
        self.challenge = challenge


def _invalid_token(msg: str) -> AuthenticationError:
    return AuthenticationError(msg, challenge=f'{_CHALLENGE}, error="invalid_token"')


def principal_of(request: web.Request) -> Principal:
    """The principal of ``request``. AuthenticationError on a public route (none was asked for),
    so a handler that needs one never runs without it."""
    if PRINCIPAL_KEY not in request:
        raise AuthenticationError()
    return request[PRINCIPAL_KEY]


def allow_anonymous(principal: Principal = ANONYMOUS) -> Authenticate:
    """An authenticator that lets every request in as ``principal`` (default: the admin
    ``anonymous``). For a trusted network or a gateway that authenticates in front, and tests."""

    async def authenticate(_request: web.Request) -> Principal:
        return principal

    return authenticate


def token_digest(token: str) -> str:
    """The hex SHA-256 of a token: what a configuration may store instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


class BearerTokenAuthenticator:
    """``Authorization: Bearer <token>``, each known token mapped to a principal.

    Tokens are kept only as SHA-256 digests and a presented token is compared with every one
    of them with :func:`hmac.compare_digest`, without stopping at a match: the time taken says
    neither which token matched nor how much of one did.

    ``tokens`` maps plain tokens to principals, ``token_sha256`` hex digests to principals (so a
    configuration file need not hold the secret). ``anonymous``: who a request *without* an
    ``Authorization`` header acts as (None: it is refused); a wrong or malformed token is refused
    either way, never downgraded. ValueError for a token shorter than 16 characters, a
    malformed digest, or one token given twice.
    """

    MIN_TOKEN_LENGTH: Final = 16

    def __init__(
        self,
        tokens: Mapping[str, Principal] | None = None,
        *,
        token_sha256: Mapping[str, Principal] | None = None,
        anonymous: Principal | None = None,
    ) -> None:
        entries: list[tuple[bytes, Principal]] = []
        for token, principal in (tokens or {}).items():
            if len(token) < self.MIN_TOKEN_LENGTH or not _TOKEN68.fullmatch(token):
                raise ValueError(
                    f"token of {principal.name!r}: need at least {self.MIN_TOKEN_LENGTH} "
                    "characters of A-Z a-z 0-9 - . _ ~ + /"
                )
            entries.append((hashlib.sha256(token.encode()).digest(), principal))
        for digest, principal in (token_sha256 or {}).items():
            if not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
                raise ValueError(f"token_sha256 of {principal.name!r}: need 64 hex digits")
            entries.append((bytes.fromhex(digest), principal))
        if len({digest for digest, _ in entries}) != len(entries):
            raise ValueError("the same token is given twice")
        self._entries: tuple[tuple[bytes, Principal], ...] = tuple(entries)
        self._anonymous = anonymous

    @property
    def principals(self) -> tuple[Principal, ...]:
        return tuple(principal for _, principal in self._entries)

    async def __call__(self, request: web.Request) -> Principal:
        values = request.headers.getall(hdrs.AUTHORIZATION, [])
        if not values:
            if self._anonymous is not None:
                return self._anonymous
            raise AuthenticationError("authentication required")
        scheme, _, token = values[0].partition(" ")
        if len(values) > 1 or scheme.lower() != "bearer" or not _TOKEN68.fullmatch(token):
            raise _invalid_token("malformed Authorization header: expected Bearer <token>")
        presented = hashlib.sha256(token.encode()).digest()
        found: Principal | None = None
        for digest, principal in self._entries:
            if hmac.compare_digest(digest, presented):
                found = principal
        if found is None:
            raise _invalid_token("invalid token")
        return found


def _is_preflight(request: web.Request) -> bool:
    headers = request.headers
    return (
        request.method == hdrs.METH_OPTIONS
        and hdrs.ORIGIN in headers
        and hdrs.ACCESS_CONTROL_REQUEST_METHOD in headers
    )


def _mount_prefix(request: web.Request) -> str:
    """The path prefix the current app is mounted under ("" for a root app)."""
    apps = request.match_info.apps
    if len(apps) < 2:
        return ""
    for resource in apps[-2].router.resources():
        info = resource.get_info()
        if info.get("app") is request.app:
            return str(info.get("prefix", ""))
    return ""


def authentication_middleware(
    authenticate: Authenticate,
    *,
    public_paths: Iterable[str] = (),
    allow_preflight: bool = False,
) -> Middleware:
    """A middleware that authenticates every request of the app it is installed on and stores
    the principal at :data:`PRINCIPAL_KEY`.

    ``public_paths``: route templates, relative to where the app is mounted (``"/health"``,
    ``"/tasks/{task_id}/events"``), served without authentication. A request that matches no
    route is authenticated like any other, so an unauthenticated client cannot map the API by
    its 404s. ``allow_preflight``: let CORS preflight requests through (only when CORS is on;
    the preflight handler checks the origin itself). Install it after the error middleware, so
    its 401s become error envelopes.

    A safety net for routes that forget to check permissions: a principal whose role may only
    read gets 403 for any method but GET, HEAD and OPTIONS, on every route.
    """
    public: Collection[str] = frozenset(public_paths)
    for path in public:
        if not path.startswith("/"):
            raise ValueError(f"public path {path!r} must start with /")
    prefix: str | None = None  # the mount prefix, fixed once the app is frozen

    def is_public(request: web.Request) -> bool:
        nonlocal prefix
        if not public:
            return False
        resource = request.match_info.route.resource
        if resource is None:
            return False
        if prefix is None:
            prefix = _mount_prefix(request)
        canonical = resource.canonical
        return canonical.startswith(prefix) and canonical[len(prefix) :] in public

    @web.middleware
    async def authentication(request: web.Request, handler: Handler) -> web.StreamResponse:
        if is_public(request) or (allow_preflight and _is_preflight(request)):
            return await handler(request)
        principal = await authenticate(request)
        if not isinstance(principal, Principal):
            # A broken hook must not let anyone in: this becomes a logged 500.
            raise TypeError(f"authenticate returned {type(principal).__name__}, not Principal")
        if request.method not in _SAFE_METHODS and not (
            principal.may(Permission.SUBMIT) or principal.may(Permission.OPERATE)
        ):
            raise AccessDeniedError(principal.name, principal.role, Permission.OPERATE)
        request[PRINCIPAL_KEY] = principal
        return await handler(request)

    return authentication
