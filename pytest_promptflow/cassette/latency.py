"""Timing a request while it is recorded: time to first byte and total, in milliseconds.

vcrpy hands the recorder a request just before it goes to the network (``can_play``
says no) and the complete response afterwards (``record``), in the same task or thread,
so the timing travels in a context variable. For clients built on httpx or httpx2 (the
OpenAI, Anthropic and Google SDKs) the first byte is when httpcore (or httpcore2) returns
the response head; for others it cannot be seen apart, and equals the total.
"""

from __future__ import annotations

import contextvars
import functools
import sys
import time
from dataclasses import dataclass
from typing import Any

from pytest_promptflow.cassette.format import Latency


@dataclass
class _Timing:
    sent: float
    first_byte: float | None = None


_timing: contextvars.ContextVar[_Timing | None] = contextvars.ContextVar(
    "promptflow_request_timing", default=None
)


def request_sent() -> None:
    _timing.set(_Timing(time.perf_counter()))


def _head_received() -> None:
    timing = _timing.get()
    if timing is not None and timing.first_byte is None:
        timing.first_byte = time.perf_counter()


def response_received() -> Latency | None:
    """The latency of the request sent last in this context, None when none was timed."""
    timing = _timing.get()
    if timing is None:
        return None
    _timing.set(None)
    now = time.perf_counter()
    total = round((now - timing.sent) * 1000)
    first = round(((timing.first_byte or now) - timing.sent) * 1000)
    return Latency(first_byte_ms=min(first, total), total_ms=total)


class FirstByteProbe:
    """Notes when httpcore has the response head, while installed.

    Only the httpcore flavours already imported (by the SDKs the tests import) are
    probed; ``install`` is called again before each test, for one imported since."""

    FLAVOURS = ("httpcore", "httpcore2")

    def __init__(self) -> None:
        self._originals: list[tuple[type[Any], str, Any]] = []
        self._probed: set[str] = set()

    def install(self) -> None:
        for flavour in self.FLAVOURS:
            module = sys.modules.get(flavour)
            if module is None or flavour in self._probed:
                continue
            self._probed.add(flavour)
            for cls, name, asynchronous in [
                (getattr(module, "ConnectionPool", None), "handle_request", False),
                (getattr(module, "AsyncConnectionPool", None), "handle_async_request", True),
            ]:
                original = cls.__dict__.get(name) if isinstance(cls, type) else None
                if cls is None or original is None:  # another layout: first byte = total
                    continue
                self._originals.append((cls, name, original))
                setattr(cls, name, _async_probe(original) if asynchronous else _probe(original))

    def uninstall(self) -> None:
        for cls, name, original in reversed(self._originals):
            setattr(cls, name, original)
        self._originals.clear()
        self._probed.clear()


def _probe(original: Any) -> Any:
    @functools.wraps(original)
    def handle_request(self: Any, request: Any) -> Any:
        response = original(self, request)
        _head_received()
        return response

    return handle_request


def _async_probe(original: Any) -> Any:
    @functools.wraps(original)
    async def handle_async_request(self: Any, request: Any) -> Any:
        response = await original(self, request)
        _head_received()
        return response

    return handle_async_request
