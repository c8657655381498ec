"""The canonical key of an LLM request, and an index of recordings by that key.

Two requests share a key when they would get the same answer: same method, host,
path and query, and the same JSON body once key order is ignored and the fields that
do not change the answer (``user``, ``metadata``...) are dropped.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pytest_promptflow.cassette.modes import IGNORED_BODY_FIELDS

canonical_json = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
"""JSON text of a value with sorted keys and no spaces, the same whatever the key order:
what keys and fingerprints hash. One encoder serves every call."""


def canonical_request_key(
    method: str,
    url: str,
    body: Any,
    body_text: str | None,
    ignored_fields: Sequence[str] = IGNORED_BODY_FIELDS,
    body_base64: str | None = None,
) -> str:
    """A hash naming what the request asks, insensitive to key order and ignored fields."""
    if isinstance(body, dict):
        body = {key: value for key, value in body.items() if key not in ignored_fields}
    canonical_body = canonical_json(body) if body is not None else body_text or body_base64 or ""
    canonical = "\n".join((method.upper(), _canonical_url(url), canonical_body))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@functools.lru_cache(maxsize=1024)
def _canonical_url(url: str) -> str:
    """Host, path and sorted query of a URL; a suite asks the same few URLs again and
    again."""
    parts = urlsplit(url)
    query = sorted(parse_qsl(parts.query, keep_blank_values=True))
    return "\n".join((parts.netloc.lower(), parts.path or "/", json.dumps(query)))


class RecordingIndex:
    """Recordings by key; each key hands out its recordings in the order they were made.

    Most keys have one recording: it is held as a plain position, and only a key
    recorded more than once gets a queue of the positions after its first."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._next: dict[str, int] = {}
        self._later: dict[str, deque[int]] = {}
        for position, key in enumerate(keys):
            if key in self._next:
                self._later.setdefault(key, deque()).append(position)
            else:
                self._next[key] = position
        self.used: set[int] = set()

    def peek(self, key: str) -> int | None:
        return self._next.get(key)

    def take(self, key: str) -> int:
        position = self._next.pop(key)
        later = self._later.get(key)
        if later:
            self._next[key] = later.popleft()
        self.used.add(position)
        return position
