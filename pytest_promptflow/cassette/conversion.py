"""vcrpy's requests and responses to ours, and ours back to vcrpy's.

A request's way through the cassette layer, one stage per module (ARCHITECTURE.md, "A
request, from @step to the file and back"): vcrpy's request -> ``live_request`` (ours:
its header pairs, its body parsed, a multipart boundary made stable) -> scrubbed
(``Scrubber.request``, scrub.py) -> keyed (``canonical_request_key``, matching.py) ->
played (``vcr_response``) or stored (``recorded_request``). A response the network sent
takes the same way: ``live_response`` (decoded and parsed, its layout found) ->
``Scrubber.response`` -> stored.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import vcr.filters
from vcr.request import Request as VcrRequest

from pytest_promptflow.cassette.format import RecordedRequest, RecordedResponse
from pytest_promptflow.cassette.interception import VcrResponse
from pytest_promptflow.cassette.layout import BODY_DEFAULT, stored_layout, writer
from pytest_promptflow.cassette.scrub import ScrubbedRequest
from pytest_promptflow.cassette.sse import parse_events, serialize_events

# -- vcrpy's request -> ours ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveRequest:
    """A request as the HTTP client sent it, read once: nothing scrubbed yet."""

    method: str
    """Upper case."""
    uri: str
    headers: list[tuple[str, str]]
    """Names as sent."""
    content_type: str
    """With a multipart boundary made stable."""
    body: Any
    """The body when it is JSON; else ``text`` when it is UTF-8, else ``base64``."""
    text: str | None
    base64: str | None


def live_request(request: VcrRequest) -> LiveRequest:
    raw, content_type = without_random_boundary(
        _body_bytes(request), request.headers.get("content-type") or ""
    )
    body, text, encoded = parse_body(raw)
    return LiveRequest(
        request.method.upper(),
        request.uri,
        request_header_pairs(request),
        content_type,
        body,
        text,
        encoded,
    )


def request_header_pairs(request: VcrRequest) -> list[tuple[str, str]]:
    """The (name, value) pairs of a vcrpy request's headers.

    vcrpy's ``HeadersDict`` keeps them in ``_store`` as (name, value) by lower-case name,
    the way its own ``copy()`` reads them; iterating the mapping instead costs a lookup
    per header, on every request replayed."""
    store = getattr(request.headers, "_store", None)
    if isinstance(store, dict):
        return list(store.values())
    return list(request.headers.items())


def _body_bytes(request: VcrRequest) -> bytes | None:
    body = request.body
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (dict, list)):
        # aiohttp's json= (or a data= form) reaches vcrpy as the value itself.
        return json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")
    return bytes(request.body_bytes or b"")


MULTIPART_BOUNDARY = re.compile(rb'boundary="?([^";,\s]+)"?')
STABLE_BOUNDARY = b"promptflow-boundary"


def without_random_boundary(raw: bytes | None, content_type: str) -> tuple[bytes | None, str]:
    """Multipart bodies with a fixed boundary: clients draw a new one for every request."""
    match = MULTIPART_BOUNDARY.search(content_type.encode("latin-1"))
    if match is None or raw is None:
        return raw, content_type
    boundary = match.group(1)
    return (
        raw.replace(boundary, STABLE_BOUNDARY),
        content_type.replace(boundary.decode("latin-1"), STABLE_BOUNDARY.decode()),
    )


def parse_body(raw: bytes | None) -> tuple[Any, str | None, str | None]:
    """A body as (JSON value, text, base64): JSON when it parses, text when it is UTF-8,
    base64 otherwise; all None when there is no body."""
    if not raw:
        return None, None, None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, None, base64.b64encode(raw).decode("ascii")
    try:
        return json.loads(text), None, None
    except ValueError:
        return None, text, None


# -- scrubbed -> stored ----------------------------------------------------------------------


def recorded_request(scrubbed: ScrubbedRequest, headers: dict[str, list[str]]) -> RecordedRequest:
    """The request as it is stored, from its scrubbed form and stored headers (both from
    scrub.py): replay misses and recording share this."""
    return RecordedRequest(
        method=scrubbed.method,
        url=scrubbed.url,
        headers=headers,
        body=sorted_json(scrubbed.body),
        body_text=scrubbed.text,
        body_base64=scrubbed.base64,
    )


def sorted_json(value: Any) -> Any:
    """``value`` with every object's keys sorted, so that recorded requests diff stably."""
    if isinstance(value, dict):
        return {key: sorted_json(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sorted_json(item) for item in value]
    return value


# -- vcrpy's response -> ours; ours -> vcrpy's --------------------------------------------


def live_response(response: VcrResponse) -> tuple[RecordedResponse, dict[str, list[str]]]:
    """What the network answered, decoded and parsed, nothing scrubbed yet, and all its
    headers (``Scrubber.response`` learns from them and keeps some)."""
    decoded = vcr.filters.decode_response(response)
    raw: bytes = decoded["body"]["string"] or b""
    headers: dict[str, list[str]] = {
        name: list(values) for name, values in decoded["headers"].items()
    }
    content_type = ";".join(
        value
        for name, values in headers.items()
        if name.lower() == "content-type"
        for value in values
    ).lower()
    live = RecordedResponse(status=decoded["status"]["code"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        live.body_base64 = base64.b64encode(raw).decode("ascii")
        return live, headers
    if "text/event-stream" in content_type:
        live.events = parse_events(text)
        if serialize_events(live.events) != raw:
            # Framing the events do not hold (CRLF line ends, comments, "data:" without a
            # space...): the stream replays as received; its events are there to be read.
            live.body_text = text
        return live, headers
    body, body_text, _ = parse_body(raw) if "json" in content_type else (None, text or None, None)
    if body is not None and not isinstance(body, (dict, list)):
        # A bare number or string replays as it was sent, not as Python prints it.
        body, body_text = None, text
    elif body is not None:
        # Stored in the server's key order, with the layout that writes it back as sent;
        # when none does, the text as sent is stored beside it, and replays.
        live.body_layout, as_received = stored_layout(text, body, BODY_DEFAULT)
        body_text = text if as_received else None
    live.body, live.body_text = body, body_text
    return live, headers


def vcr_response(response: RecordedResponse) -> VcrResponse:
    """A recorded response as vcrpy plays it back."""
    if response.body_text is not None:
        raw = response.body_text.encode("utf-8")
    elif response.events is not None:
        raw = serialize_events(response.events)
    elif response.body_base64 is not None:
        raw = base64.b64decode(response.body_base64)
    elif response.body is not None:
        raw = writer(response.body_layout, BODY_DEFAULT)(response.body).encode("utf-8")
    else:
        raw = b""
    return {
        "status": {"code": response.status, "message": _reason_phrase(response.status)},
        "headers": {name: list(values) for name, values in response.headers.items()},
        "body": {"string": raw},
    }


@functools.lru_cache(maxsize=64)
def _reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
