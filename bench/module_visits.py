"""The modules of the package one recorded request passes through, in order.

A ``sys.setprofile`` trace of ``CaseRecorder.record`` for one request (a second one of
the session: the first has warmed the scrubber's memos), as the cassette layer gets it
from vcrpy. Each call of a function of the package is a *stay* in its module, the same
module called again in a row counting once; a stay in a module the request had already
left is a *return*. With ``--returns``, going back to the caller counts too.

    python bench/module_visits.py [--returns]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from vcr.request import Request

import pytest_promptflow
from pytest_promptflow.cassette.modes import RecordingOptions, RecordMode
from pytest_promptflow.cassette.recorder import CaseRecorder

PACKAGE = str(Path(pytest_promptflow.__file__).parent)
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
ANSWER = {
    "id": "chatcmpl-1",
    "choices": [{"message": {"role": "assistant", "content": "hello"}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


def module_of(frame: FrameType | None, *, enclosing: bool) -> str | None:
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(PACKAGE):
            return name[len(PACKAGE) + 1 :]
        if not enclosing:
            return None
        frame = frame.f_back
    return None


def traced(function: Callable[[], Any], *, returns: bool) -> list[str]:
    stays: list[str] = []

    def profile(frame: FrameType, event: str, argument: Any) -> None:
        if event == "call":
            here = module_of(frame, enclosing=False)
        elif event == "return" and returns:
            here = module_of(frame.f_back, enclosing=True)
        else:
            return
        if here is not None and (not stays or stays[-1] != here):
            stays.append(here)

    sys.setprofile(profile)
    try:
        function()
    finally:
        sys.setprofile(None)
    return stays


def one_recorded_request(returns: bool) -> list[str]:
    recorder = CaseRecorder(
        Path(tempfile.mkdtemp()) / "visits.json",
        test_id="visits.py::test_visits",
        case_id=None,
        options=RecordingOptions(mode=RecordMode.ALL),
        record_command="pytest visits.py",
    )
    recorder.start()

    def request() -> Request:
        headers = {
            "Authorization": "Bearer sk-visits0123456789abcdef",
            "Content-Type": "application/json",
            "User-Agent": "OpenAI/Python 1.40.0",
        }
        url = "https://api.openai.com/v1/chat/completions"
        return Request("POST", url, json.dumps(BODY).encode(), headers)

    response = {
        "status": {"code": 200, "message": "OK"},
        "headers": {"Content-Type": ["application/json"], "x-request-id": ["req_1"]},
        "body": {"string": json.dumps(ANSWER).encode()},
    }
    try:
        for _ in range(2):
            live = request()
            recorder.can_play(live)
            stays = traced(lambda live=live: recorder.record(live, response), returns=returns)
    finally:
        recorder.stop(passed=False)
    return stays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--returns", action="store_true", help="count going back too")
    stays = one_recorded_request(parser.parse_args().returns)
    returning = sum(module in stays[:position] for position, module in enumerate(stays))
    print(" -> ".join(stays))
    print(f"{len(stays)} stays, {returning} returns to a module already left")
    for module, count in Counter(stays).most_common():
        print(f"  {module}: {count}")


if __name__ == "__main__":
    main()
