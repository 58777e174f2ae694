"""Conditional and long-poll reads of one task: its ETag, ``If-None-Match`` and ``wait_s``.

The ETag of a task is a digest of its view (what ``GET /tasks/{id}`` shows) without the fields
that move on their own: ``duration`` and ``eta_s`` are computed from the clock at each request,
and ``updated_at`` is also renewed by every lease heartbeat, which changes nothing a client can
see. It is therefore a *weak* validator (``W/"…"``, RFC 9110 §8.8.1): two answers with one ETag
are the same task state, though their ``duration`` may differ. ``If-None-Match`` uses the weak
comparison anyway, so this is what makes ``304 Not Modified`` work for a running task.

The digest is computed by every instance alike (no per-process salt), so a client may poll any
instance behind a load balancer.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, Final

import orjson

from cam_tasks.web.schemas import VIEW_CLOCK_FIELDS

__all__ = [
    "CACHE_CONTROL",
    "MAX_WAIT_S",
    "etag_and_size",
    "etag_of",
    "if_none_match",
    "matches",
    "opaque_tag",
]

#: Longest long poll a client may ask for (``wait_s``), in seconds.
MAX_WAIT_S: Final = 60.0
#: Task reads may be cached by the browser, but must be revalidated (ETag) every time.
CACHE_CONTROL: Final = "no-cache"

#: View fields left out of the ETag: derived from the clock, or renewed without a visible change.
_VOLATILE_FIELDS: Final = frozenset(VIEW_CLOCK_FIELDS)
_ENTITY_TAG = re.compile(r'\s*(?:W/)?"([^"]*)"\s*(?:,|$)')


def etag_of(view: Mapping[str, Any]) -> str:
    """The weak ETag of a task view (its JSON form, as the API sends it)."""
    return etag_and_size(view)[0]


def etag_and_size(view: Mapping[str, Any]) -> tuple[str, int]:
    """:func:`etag_of` ``view``, and the length in bytes of the JSON it digests (the view
    without its volatile fields): what the view weighs, for a cache of views."""
    stable = {key: value for key, value in view.items() if key not in _VOLATILE_FIELDS}
    encoded = orjson.dumps(stable, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.blake2b(encoded, digest_size=12)
    return f'W/"{digest.hexdigest()}"', len(encoded)


def if_none_match(header: str | None) -> frozenset[str] | None:
    """The opaque tags of an ``If-None-Match`` header (``{"*"}`` for ``*``); None when the header
    is absent or malformed, which RFC 9110 says to treat as absent."""
    if header is None:
        return None
    if header.strip() == "*":
        return frozenset({"*"})
    tags: set[str] = set()
    position = 0
    while position < len(header):
        match = _ENTITY_TAG.match(header, position)
        if match is None:
            return None
        tags.add(match.group(1))
        position = match.end()
    return frozenset(tags) or None


def opaque_tag(etag: str) -> str:
    """The quoted part of an entity tag, which weak comparison compares."""
    return etag.removeprefix("W/").strip('"')


def matches(etag: str, tags: frozenset[str] | None) -> bool:
    """Weak comparison of ``etag`` with the client's tags (``*`` matches any)."""
    if tags is None:
        return False
    return "*" in tags or opaque_tag(etag) in tags
