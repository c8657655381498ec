"""vcrpy's patches of the HTTP libraries, routed to whatever answers the running test.

vcrpy patches the HTTP libraries (httpx, requests, aiohttp...) and asks its cassette
whether it can play a request, for the response, and to keep a new one; here that
cassette forwards each question to the attached ``HttpTarget``.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any, Protocol
from unittest import mock

import vcr.cassette
from vcr.request import HeadersDict
from vcr.request import Request as VcrRequest

from pytest_promptflow.cassette import latency

VcrResponse = dict[str, Any]


class HttpTarget(Protocol):
    """What answers intercepted HTTP: a test case's recorder, or anything alike."""

    def can_play(self, request: VcrRequest) -> bool:
        """Whether ``play`` answers this request; False lets it through to the network."""

    def play(self, request: VcrRequest) -> VcrResponse: ...

    def record(self, request: VcrRequest, response: VcrResponse) -> None:
        """Keep what the network answered."""


class HttpInterception:
    """vcrpy's patches of the HTTP libraries, routed to the recorder of the running test.

    Patching every library costs more than replaying a small recorded run, so the
    patches stay in place across consecutive tests and only the recorder changes.
    """

    def __init__(self) -> None:
        self.recorder: HttpTarget | None = None
        self._patches: contextlib.ExitStack | None = None
        self._first_byte = latency.FirstByteProbe()

    @property
    def patched(self) -> bool:
        return self._patches is not None

    def attach(self, recorder: HttpTarget) -> None:
        self._first_byte.install()
        if self._patches is None:
            with contextlib.ExitStack() as patches:
                patches.enter_context(_RecorderCassette.use(path="<promptflow>", interception=self))
                patches.enter_context(_lean_httpx_request_conversion())
                self._patches = patches.pop_all()
        self.recorder = recorder

    def detach(self, recorder: HttpTarget) -> None:
        if self.recorder is recorder:
            self.recorder = None

    def close(self) -> None:
        """Remove the patches; HTTP goes straight to the network again."""
        self.recorder = None
        if self._patches is not None:
            self._patches.close()
            self._patches = None
        self._first_byte.uninstall()


class _RecorderCassette(vcr.cassette.Cassette):  # type: ignore[misc]
    """The cassette vcrpy's patched HTTP clients talk to; it defers to the attached recorder.
    With none attached, requests pass through to the network unrecorded."""

    def __init__(self, path: str, interception: HttpInterception) -> None:
        super().__init__(path)
        self._interception = interception

    def _load(self) -> None:
        """The recorder reads the file itself."""

    def _save(self, force: bool = False) -> None:
        """The recorder writes the file itself, when the test has ended."""

    @property
    def write_protected(self) -> bool:
        return False

    def can_play_response_for(self, request: VcrRequest) -> bool:
        recorder = self._interception.recorder
        return recorder is not None and recorder.can_play(request)

    def play_response(self, request: VcrRequest) -> VcrResponse:
        recorder = self._interception.recorder
        assert recorder is not None, "vcrpy plays only what can_play_response_for offered"
        return recorder.play(request)

    def append(self, request: VcrRequest, response: VcrResponse) -> None:
        recorder = self._interception.recorder
        if recorder is not None:
            recorder.record(request, response)


def httpx_vcr_request(real_request: Any, real_request_body: bytes) -> VcrRequest:
    """vcrpy's request for an httpx (or httpx2) request, its headers read in one pass.

    vcrpy's own ``_make_vcr_request`` hands the httpx ``Headers`` to ``HeadersDict``,
    which reads them one name at a time, each lookup a scan of every header, then sets
    each through ``MutableMapping.update``: about 35 us for the openai SDK's sixteen
    headers, on every request replayed. httpx's ``items()`` gives the same pairs
    (lower-case names, repeated headers joined by ", ") in one pass, and they fill the
    ``HeadersDict``'s store, (name, value) by lower-case name, directly."""
    pairs = real_request.headers.items()
    headers = HeadersDict()
    if isinstance(getattr(headers, "_store", None), dict):
        headers._store = {name.lower(): (name, value) for name, value in pairs}
    else:
        headers.update(pairs)
    return VcrRequest(real_request.method, str(real_request.url), real_request_body, headers)


@contextlib.contextmanager
def _lean_httpx_request_conversion() -> Iterator[None]:
    """``httpx_vcr_request`` in place of vcrpy's conversion, for as long as the patches
    last; a vcrpy whose httpx stub differs keeps its own."""
    try:
        from vcr.stubs import httpx_stubs
    except ImportError:  # vcrpy without httpx support
        yield
        return
    original = getattr(httpx_stubs, "_make_vcr_request", None)
    if original is None or list(inspect.signature(original).parameters) != [
        "real_request",
        "real_request_body",
    ]:
        yield
        return
    with mock.patch.object(httpx_stubs, "_make_vcr_request", httpx_vcr_request):
        yield
