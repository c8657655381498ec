"""Between vcrpy's requests and responses and the recorded run's, secrets removed.

A live request becomes its scrubbed body (what its key needs) and, when it is
recorded or missed, the whole ``RecordedRequest``; a response the network sent becomes
a ``RecordedResponse``; a recorded response becomes what vcrpy plays back.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
from http import HTTPStatus
from typing import Any

import vcr.filters
from vcr.request import Request as VcrRequest

from pytest_promptflow.cassette.format import RecordedRequest, RecordedResponse, sorted_json
from pytest_promptflow.cassette.interception import VcrResponse, request_header_pairs
from pytest_promptflow.cassette.layout import BODY_DEFAULT, stored_layout, writer
from pytest_promptflow.cassette.matching import parse_body, without_random_boundary
from pytest_promptflow.cassette.scrub import (
    KEPT_REQUEST_HEADERS,
    KEPT_RESPONSE_HEADERS,
    Scrubber,
    kept_headers,
)
from pytest_promptflow.cassette.sse import parse_events, serialize_events


@dataclasses.dataclass(frozen=True, slots=True)
class ScrubbedBody:
    """A live request's headers (names as sent, values not yet scrubbed) and its body as
    stored: scrubbed JSON, text or base64."""

    headers: list[tuple[str, str]]
    content_type: str
    body: Any
    text: str | None
    base64: str | None


def scrubbed_body(request: VcrRequest, scrubber: Scrubber) -> ScrubbedBody:
    """The request's secrets learned and its body scrubbed: the part of the request as
    stored that both its key and the full recorded request need."""
    headers = request_header_pairs(request)
    scrubber.learn_secrets(headers, request.uri)
    raw, content_type = without_random_boundary(
        _body_bytes(request), request.headers.get("content-type") or ""
    )
    lowered = content_type.lower()
    if raw and "multipart/" in lowered:
        raw = scrubber.multipart(raw)
    body, text, encoded = parse_body(raw)
    # Learned from the body's fields before any of its strings is scrubbed.
    body = scrubber.fields(body) if body is not None else None
    if text is not None:
        text = scrubber.form(text) if "x-www-form-urlencoded" in lowered else text
        text = scrubber.text(text)
    return ScrubbedBody(
        headers=headers,
        content_type=content_type,
        body=body,
        text=text,
        base64=scrubber.base64_body(encoded) if encoded is not None else None,
    )


def recorded_request(
    request: VcrRequest, scrubbed: ScrubbedBody, scrubber: Scrubber
) -> RecordedRequest:
    """The request as it is stored, from its scrubbed body: replay misses and recording
    share this."""
    grouped: dict[str, list[str]] = {}
    for name, value in scrubbed.headers:
        grouped.setdefault(name.lower(), []).append(value)
    if scrubbed.content_type:
        grouped["content-type"] = [scrubbed.content_type]
    kept = kept_headers(grouped, KEPT_REQUEST_HEADERS)
    return RecordedRequest(
        method=request.method.upper(),
        url=scrubber.url(request.uri),
        headers={name: [scrubber.text(v) for v in values] for name, values in kept.items()},
        body=sorted_json(scrubbed.body),
        body_text=scrubbed.text,
        body_base64=scrubbed.base64,
    )


def recorded_response(response: VcrResponse, scrubber: Scrubber) -> RecordedResponse:
    """What the network answered, as it is stored: decoded, parsed and scrubbed."""
    decoded = vcr.filters.decode_response(response)
    raw: bytes = decoded["body"]["string"] or b""
    scrubber.learn_secrets(
        [(name, value) for name, values in decoded["headers"].items() for value in values], ""
    )
    headers = kept_headers(decoded["headers"], KEPT_RESPONSE_HEADERS)
    content_type = ";".join(headers.get("content-type", [])).lower()
    recorded = RecordedResponse(status=decoded["status"]["code"], headers=headers)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        recorded.body_base64 = base64.b64encode(scrubber.binary(raw)).decode("ascii")
        return recorded
    if "text/event-stream" in content_type:
        text = scrubber.text(text)
        events = [e.model_copy(update={"data": scrubber.json(e.data)}) for e in parse_events(text)]
        recorded.events = events
        if serialize_events(events) != text.encode("utf-8"):
            # Framing the events do not hold (CRLF line ends, comments, "data:" without a
            # space...): the stream replays as received; its events are there to be read.
            recorded.body_text = text
        return recorded
    body, body_text, _ = parse_body(raw) if "json" in content_type else (None, text or None, None)
    if body is not None and not isinstance(body, (dict, list)):
        # A bare number or string replays as it was sent, not as Python prints it.
        body, body_text = None, text
    elif body is not None:
        # Stored in the server's key order, with the layout that writes it back as sent;
        # when none does, the text as sent is stored beside it, and replays.
        recorded.body_layout, as_received = stored_layout(text, body, BODY_DEFAULT)
        body_text = text if as_received else None
    recorded.body = scrubber.json(body)
    recorded.body_text = scrubber.text(body_text) if body_text is not None else None
    return recorded


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
