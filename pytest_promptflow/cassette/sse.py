"""Server-sent event bodies as lists of events, and back to bytes for replay."""

from __future__ import annotations

import json

from pytest_promptflow.cassette.format import SseEvent
from pytest_promptflow.cassette.layout import EVENT_DEFAULT, stored_layout, writer


def parse_events(text: str) -> list[SseEvent]:
    events = []
    for block in text.replace("\r\n", "\n").replace("\r", "\n").split("\n\n"):
        fields: dict[str, list[str]] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields.setdefault(name, []).append(value[1:] if value.startswith(" ") else value)
        if not fields:
            continue
        data = "\n".join(fields["data"]) if "data" in fields else None
        event = SseEvent(
            event=fields["event"][-1] if "event" in fields else None,
            id=fields["id"][-1] if "id" in fields else None,
        )
        if data is not None:
            try:
                parsed = json.loads(data)
            except (ValueError, RecursionError):
                parsed = None
            # Only objects and arrays are stored parsed, with the layout that writes them
            # back as received. Anything else (a bare number, a marker like [DONE], text),
            # and JSON no layout writes back, is kept as received too, so that it replays
            # byte for byte: 1.50 stays 1.50, where JSON would give back 1.5.
            if isinstance(parsed, (dict, list)):
                event.data = parsed
                event.layout, as_received = stored_layout(data, parsed, EVENT_DEFAULT)
                event.text = data if as_received else None
            else:
                event.text = data
        events.append(event)
    return events


def serialize_events(events: list[SseEvent]) -> bytes:
    blocks = []
    for event in events:
        lines = []
        if event.event is not None:
            lines.append(f"event: {event.event}")
        if event.id is not None:
            lines.append(f"id: {event.id}")
        if event.text is not None:
            lines += [f"data: {line}" for line in event.text.split("\n")]
        elif event.data is not None:
            written = writer(event.layout, EVENT_DEFAULT)(event.data)
            # Data written over several lines (an indented layout) is one field per line.
            lines += [f"data: {line}" for line in written.split("\n")]
        blocks.append("\n".join(lines) + "\n\n")
    return "".join(blocks).encode("utf-8")
