"""Property tests make no model call: every HTTP request is answered in-process or refused.

Requests go through vcrpy's patches, attached to a target that decides the answer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pytest_promptflow.cassette.interception import HttpInterception, HttpTarget
from pytest_promptflow.errors import PromptflowError


class NetworkBlockedError(PromptflowError):
    """A property test tried to send an HTTP request to the network."""


class NetworkBlock:
    """An HTTP target that refuses every request."""

    def __init__(self) -> None:
        self.blocked: list[str] = []

    def block(self, request: Any, why: str = "") -> NetworkBlockedError:
        message = (
            f"a property test tried to reach the network: {request.method.upper()} "
            f"{request.uri}; property tests make no model call{why}"
        )
        self.blocked.append(message)
        return NetworkBlockedError(message)

    def can_play(self, request: Any) -> bool:
        raise self.block(request)

    def play(self, request: Any) -> dict[str, Any]:
        raise self.block(request)

    def record(self, request: Any, response: dict[str, Any]) -> None:
        """Nothing reaches the network, so nothing comes back to keep."""


@contextlib.contextmanager
def intercepted(target: HttpTarget) -> Iterator[None]:
    interception = HttpInterception()
    interception.attach(target)
    try:
        yield
    finally:
        interception.close()


def blocked_in(error: BaseException) -> NetworkBlockedError | None:
    """The NetworkBlockedError an SDK wrapped (as cause or context) into ``error``."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, NetworkBlockedError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@contextlib.contextmanager
def no_network() -> Iterator[None]:
    """Fail any HTTP request made in the block with ``NetworkBlockedError``.

    SDKs wrap transport errors in their own (``openai.APIConnectionError``); the block
    raises the ``NetworkBlockedError`` instead, and raises it on leaving the block when
    the code swallowed it. Requests go through vcrpy's patches (httpx, requests,
    urllib3, aiohttp), which answer before any connection is opened.
    """
    block = NetworkBlock()
    with intercepted(block):
        try:
            yield
        except Exception as error:
            blocked = blocked_in(error)
            if blocked is not None and blocked is not error:
                raise NetworkBlockedError(str(blocked)) from error
            raise
    if block.blocked:
        raise NetworkBlockedError(block.blocked[0])
