"""The recorded run file: its schema, reading it safely and writing it atomically.

One JSON file per test case, keys sorted and indented so that re-recording an
unchanged chain changes no byte and a changed one diffs cleanly in review.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

from pytest_promptflow.errors import CassetteError
from pytest_promptflow.trace import Run

FORMAT_VERSION = 1


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class SseEvent(_Strict):
    """One server-sent event; ``data`` when it parsed as JSON, else ``text``."""

    event: str | None = None
    id: str | None = None
    data: Any = None
    text: str | None = None


class RecordedRequest(_Strict):
    method: str
    url: str
    headers: dict[str, list[str]] = {}
    body: Any = None
    body_text: str | None = None
    body_base64: str | None = None


class RecordedResponse(_Strict):
    status: int
    headers: dict[str, list[str]] = {}
    body: Any = None
    body_text: str | None = None
    body_base64: str | None = None
    events: list[SseEvent] | None = None


class Latency(_Strict):
    """How long the server took when the exchange was recorded, in milliseconds."""

    first_byte_ms: int
    total_ms: int


class Interaction(_Strict):
    """An HTTP exchange, tagged with the step that made it and that step's prompts."""

    step: str | None = None
    judge: str | None = None
    """Set on the calls of a judge: the field of ``step`` it judged."""
    prompts: dict[str, str] = {}
    request: RecordedRequest
    response: RecordedResponse
    latency: Latency | None = None
    """Absent from files written before latency was recorded."""


class GoldenStep(_Strict):
    """The golden value of one step call: what crossed its boundary when accepted."""

    step: str
    parent: int | None = None
    prompts: dict[str, str] = {}
    schema_: str | None = pydantic.Field(default=None, alias="schema")
    inputs: dict[str, Any] = {}
    output: Any = None
    responses: list[str] = []

    model_config = pydantic.ConfigDict(extra="forbid", populate_by_name=True)


class RecordedRun(_Strict):
    """Everything recorded for one test case."""

    format: int = FORMAT_VERSION
    test: str
    case: str | None = None
    interactions: list[Interaction] = []
    steps: list[GoldenStep] = []
    prompt_sources: dict[str, str] = {}
    isolated: bool | None = None
    """Set on the recorded runs of tests of one step alone, which are not sources."""


@dataclass(frozen=True)
class Seed:
    """What a test of one step starts from: another test's recordings and golden values
    of that step's calls."""

    interactions: list[Interaction]
    golden: list[GoldenStep]
    prompt_sources: dict[str, str]


def response_fingerprint(response: RecordedResponse) -> str:
    """Names a recorded answer, so that a golden step call knows which answers it got."""
    document = response.model_dump(mode="json", exclude_none=True)
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def golden_steps(run: Run) -> list[GoldenStep]:
    return [
        GoldenStep(
            step=call.step,
            parent=call.parent,
            prompts=call.prompts,
            schema=call.schema,
            inputs=call.inputs,
            output=call.output,
            responses=call.responses,
        )
        for call in run.calls
    ]


def read_recorded_run(path: Path) -> RecordedRun | None:
    """The recorded run at ``path``, None when there is none; a bad file raises CassetteError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise CassetteError(f"cassette {path} cannot be read: {error}") from None
    advice = "fix it, or delete it and record again with --promptflow-record=new"
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise CassetteError(
            f"cassette {path} is not valid JSON (line {error.lineno}, column {error.colno}: "
            f"{error.msg}); {advice}"
        ) from None
    version = document.get("format") if isinstance(document, dict) else None
    if version != FORMAT_VERSION:
        raise CassetteError(
            f"cassette {path} has format {version!r}, but this pytest-promptflow reads "
            f"format {FORMAT_VERSION}; {advice}"
        )
    try:
        return RecordedRun.model_validate(document)
    except pydantic.ValidationError as error:
        first = error.errors(include_url=False)[0]
        location = ".".join(str(part) for part in first["loc"])
        raise CassetteError(
            f"cassette {path} does not match the recorded run format at {location}: "
            f"{first['msg']} ({error.error_count()} problem(s)); {advice}"
        ) from None


def sorted_json(value: Any) -> Any:
    """``value`` with every object's keys sorted, so recorded bodies diff stably."""
    if isinstance(value, dict):
        return {key: sorted_json(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sorted_json(item) for item in value]
    return value


def serialize_recorded_run(run: RecordedRun) -> str:
    """The file's text: fields in schema order, bodies with sorted keys (see sorted_json)."""
    document = run.model_dump(mode="json", exclude_none=True, by_alias=True)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_atomically(path: Path, text: str) -> None:
    """Write the whole file or nothing: a temporary file beside it, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        # mkstemp makes the file private; a recorded run is as readable as any other file.
        os.chmod(temporary, 0o666 & ~_umask())
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


MAX_NAME_LENGTH = 80


def _safe(name: str) -> str:
    safe = _SAFE_NAME.sub("_", name).strip("._")[:MAX_NAME_LENGTH] or "_"
    if safe != name:
        # Two ids that differ only in unsafe characters must not share a file.
        safe += "-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:6]
    return safe


def recorded_run_path(
    cassette_dir: Path, module: Path, test_name: str, parameter_id: str | None
) -> Path:
    """``<dir>/<module path without .py>/<test name>[/<case id>].json``, never colliding."""
    folder = cassette_dir.joinpath(*(_safe(part) for part in module.with_suffix("").parts))
    if parameter_id is None:
        return folder / f"{_safe(test_name)}.json"
    return folder / _safe(test_name) / f"{_safe(parameter_id)}.json"


def stale_recorded_runs(expected: dict[Path, set[Path]]) -> list[Path]:
    """Recorded runs under each folder that no collected test or case owns any more."""
    stale = []
    for folder, owned in expected.items():
        if folder.is_dir():
            # A test's file, or a parametrized test's folder of case files.
            files = [*folder.glob("*.json"), *folder.glob("*/*.json")]
            # Hidden files are writes in progress, perhaps by another xdist worker.
            files = [path for path in files if not path.name.startswith(".")]
            stale += [path for path in sorted(files) if path not in owned]
    return stale
