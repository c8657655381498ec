"""Requests made by steps in a test without a promptflow marker: refused, never sent."""

from __future__ import annotations

from vcr.request import Request as VcrRequest

from pytest_promptflow.cassette.conversion import request_header_pairs
from pytest_promptflow.cassette.interception import VcrResponse
from pytest_promptflow.cassette.misses import miss_response
from pytest_promptflow.cassette.scrub import Scrubber
from pytest_promptflow.steps import current_step

MARKER_HINT = "@pytest.mark.promptflow"


class StepRequestGuard:
    """Stands in for a recorder during a test without a promptflow marker.

    Its steps' requests would be neither recorded nor replayed, so they are refused
    (answered with a miss that fails the test) in every record mode; requests made
    outside any step go to the network as they would without the plugin.
    """

    def __init__(self, test_id: str, scrubber: Scrubber) -> None:
        self.test_id = test_id
        self.scrubber = scrubber
        self.misses: list[str] = []
        self._refused: dict[int, VcrRequest] = {}

    def can_play(self, request: VcrRequest) -> bool:
        context = current_step()
        if context is None:
            return False
        self.scrubber.learn_secrets(request_header_pairs(request), request.uri)
        message = (
            f"step {context.step!r} made an HTTP request in {self.test_id}, a test without "
            f"{MARKER_HINT}\n"
            f"  request:  {request.method.upper()} {self.scrubber.url(request.uri)}\n"
            "Its calls would be neither recorded nor replayed, so the request was refused "
            "and never reached the network.\n"
            f"Add {MARKER_HINT} to the test (or parametrize it with "
            "@pytest.mark.promptflow_cases) to record and replay them."
        )
        if message not in self.misses:
            self.misses.append(message)
        self._refused[id(request)] = request
        return True

    def play(self, request: VcrRequest) -> VcrResponse:
        self._refused.pop(id(request), None)
        return miss_response()

    def record(self, request: VcrRequest, response: VcrResponse) -> None:
        """Requests outside steps are not recorded."""
