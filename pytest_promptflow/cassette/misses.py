"""What a request with no recording gets: its answer, and the parts of its message
(the closest recording and a readable diff of the request bodies)."""

from __future__ import annotations

import difflib
import json
import shlex
from collections.abc import Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any

from pytest_promptflow.cassette.format import Interaction, RecordedRequest, Seed
from pytest_promptflow.cassette.interception import VcrResponse

OWN_RECORDING = "used only by this step test, never as a source"
"""What a step test's own recorded run is for: its calls were made from golden inputs,
not by a run of the chain, so no step test takes its inputs from there."""
MAX_DIFF_LINES = 40
MISS_STATUS = 400
"""A request with no recording is answered with this status, which SDKs do not retry."""


def miss_response() -> VcrResponse:
    """The answer to a request that has no recording: a client error that the openai and
    anthropic SDKs do not retry (and are told not to), so the miss is reported once."""
    body = {
        "error": {
            "message": "pytest-promptflow: no recording for this request; see the test's "
            "failure for what to do",
            "type": "promptflow_recording_missing",
            "code": "recording_missing",
        }
    }
    return {
        "status": {"code": MISS_STATUS, "message": HTTPStatus(MISS_STATUS).phrase},
        "headers": {"content-type": ["application/json"], "x-should-retry": ["false"]},
        "body": {"string": json.dumps(body).encode("utf-8")},
    }


def closest_recording(
    interactions: Sequence[Interaction], live: RecordedRequest, step: str | None
) -> tuple[int, Interaction] | None:
    """The recorded interaction whose request body is most like ``live``, preferring
    those of the same step and method."""
    candidates = [
        (position, interaction)
        for position, interaction in enumerate(interactions)
        if interaction.request.method == live.method
    ]
    same_step = [c for c in candidates if c[1].step == step]
    candidates = same_step or candidates
    if not candidates:
        return None
    target = "\n".join(diff_lines(live))
    return max(
        candidates,
        key=lambda c: difflib.SequenceMatcher(
            None, "\n".join(diff_lines(c[1].request)), target, autojunk=False
        ).quick_ratio(),
    )


def diff_lines(request: RecordedRequest) -> list[str]:
    """The request body as path: value lines, multi-line strings split, for a readable diff."""
    lines: list[str] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key in sorted(value):
                walk(value[key], f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for position, item in enumerate(value):
                walk(item, f"{path}[{position}]")
        elif isinstance(value, str) and "\n" in value:
            lines.append(f"{path}:")
            lines.extend(f"  | {line}" for line in value.split("\n"))
        else:
            lines.append(f"{path}: {json.dumps(value, ensure_ascii=False)}")

    if request.body is not None:
        walk(request.body, "")
    else:
        walk(request.body_text or request.body_base64 or "", "(body)")
    return lines


def body_diff(recorded: RecordedRequest, live: RecordedRequest) -> list[str]:
    diff = list(
        difflib.unified_diff(
            diff_lines(recorded), diff_lines(live), "recorded", "requested", n=1, lineterm=""
        )
    )
    if len(diff) > MAX_DIFF_LINES:
        diff = [*diff[:MAX_DIFF_LINES], f"... ({len(diff) - MAX_DIFF_LINES} more lines)"]
    return [line[:200] for line in diff]


def step_alone_lines(step: str | None, own: Path, exists: bool, seed: Seed) -> list[str]:
    """Where a test of one step replays from, for its miss message: the chain's
    recorded run its calls come from, and its own."""
    source = display_path(seed.source) if seed.source is not None else "another test's run"
    made_by = f"the recorded run of {seed.test}" if seed.test else "a recorded run"
    lines = [f"  replays:  {source} ({made_by}"]
    lines[0] += f", its calls of step {step!r})" if step else ")"
    state = "" if exists else "; none yet"
    lines.append(f"  cassette: {display_path(own)} (this step test's own recordings{state})")
    return lines


def step_alone_advice(step: str | None, command: str, own: Path, seed: Seed) -> list[str]:
    """Which command records what a test of one step misses, and why that one."""
    what = f"step {step!r}" if step else "the step"
    kept = f"keeps it in {display_path(own)}, {OWN_RECORDING}"
    if seed.source is not None:
        kept += f"; {display_path(seed.source)} is left as it is"
    lines = [
        "To record it, run:",
        f"  {command}",
        f"That sends only what {what} (and the steps it calls) asks from the golden inputs "
        f"it replays, without running the steps before it, and {kept}.",
    ]
    if seed.test:
        chain = shlex.join(["pytest", seed.test, "--promptflow-record=new"])
        lines.append(
            f"Re-recording the chain's case instead ({chain}) runs every step before this one "
            "again, and leaves the golden inputs this test runs on as they are."
        )
    return lines


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
