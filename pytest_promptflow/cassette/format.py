"""The recorded run file: its schema, its path, and writing it atomically (reading it
is `cassette/reading.py`).

One JSON file per test case, indented, its fields in schema order and every value in a
stable order (request bodies with sorted keys, response bodies in the server's), so
that re-recording an unchanged chain changes no byte and a changed one diffs cleanly in
review.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

try:
    import fcntl
except ImportError:  # Windows: a file being written cannot be deleted there anyway.
    fcntl = None  # type: ignore[assignment]

from pytest_promptflow.cassette.layout import JsonLayout
from pytest_promptflow.cassette.matching import canonical_json
from pytest_promptflow.trace import Run, StepCall

FORMAT_VERSION = 1
TEMPORARY_PREFIX = ".tmp-"

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True)


def _valid_base64(value: str | None) -> str | None:
    if value is not None:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("is not valid base64") from None
    return value


def _valid_headers(headers: dict[str, list[str]]) -> dict[str, list[str]]:
    for name, values in headers.items():
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"{name!r} is not a header name")
        for value in values:
            if not _HEADER_VALUE.fullmatch(value):
                raise ValueError(f"the value of header {name!r} holds a character HTTP forbids")
    return headers


def _valid_layout(value: str | None) -> str | None:
    if value is not None:
        JsonLayout.parse(value)
    return value


class SseEvent(_Strict):
    """One server-sent event; ``data`` when it parsed as JSON, else ``text``. When both
    are there, ``text`` is what replays and ``data`` is there to be read."""

    event: str | None = None
    id: str | None = None
    data: Any = None
    layout: str | None = None
    """How ``data`` was written (``cassette/layout.py``); absent: compact, as older
    versions replayed every event."""
    text: str | None = None

    _check_layout = pydantic.field_validator("layout")(_valid_layout)


class RecordedRequest(_Strict):
    method: str = pydantic.Field(pattern=f"^{_TOKEN.pattern}$")
    url: str
    headers: dict[str, list[str]] = {}
    body: Any = None
    body_text: str | None = None
    body_base64: str | None = None

    _check_base64 = pydantic.field_validator("body_base64")(_valid_base64)
    _check_headers = pydantic.field_validator("headers")(_valid_headers)


class RecordedResponse(_Strict):
    """A response as stored. ``body_text``, when there, is what replays, byte for byte;
    ``body`` or ``events`` beside it are its parsed form, there to be read."""

    status: int = pydantic.Field(ge=100, le=599)
    headers: dict[str, list[str]] = {}
    body: Any = None
    body_layout: str | None = None
    """How ``body`` was written (``cassette/layout.py``); absent: as older versions
    replayed every body, ``json.dumps`` with ``ensure_ascii=False``."""
    body_text: str | None = None
    body_base64: str | None = None
    events: list[SseEvent] | None = None

    _check_base64 = pydantic.field_validator("body_base64")(_valid_base64)
    _check_headers = pydantic.field_validator("headers")(_valid_headers)
    _check_layout = pydantic.field_validator("body_layout")(_valid_layout)


class Latency(_Strict):
    """How long the server took when the exchange was recorded, in milliseconds."""

    first_byte_ms: int
    total_ms: int


class Interaction(_Strict):
    """An HTTP exchange, tagged with the step that made it and that step's prompts."""

    step: str | None = None
    judge: str | None = None
    """Set on the calls of a judge: the field of ``step`` it judged."""
    sample: int | None = None
    """The sample of the case that made it (0-based), in a case recorded several times;
    absent when the case has one sample."""
    prompts: dict[str, str] = {}
    request: RecordedRequest
    response: RecordedResponse
    latency: Latency | None = None
    """Absent from files written before latency was recorded."""


class AnswerUsage(_Strict):
    """The figures of one answer a golden step call got: the model that gave it, its
    tokens (None when the answer reported none) and its recorded latency. Kept with the
    golden value, so that re-recording the answer does not lose the golden figures."""

    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency: Latency | None = None


class GoldenStep(_Strict):
    """The golden value of one step call: what crossed its boundary when accepted."""

    step: str
    sample: int | None = None
    """The sample of the case this call was made in (0-based), in a case recorded several
    times; absent when the case has one sample."""
    parent: int | None = None
    prompts: dict[str, str] = {}
    schema_: str | None = pydantic.Field(default=None, alias="schema")
    inputs: dict[str, Any] = {}
    output: Any = None
    responses: list[str] = []
    usage: list[AnswerUsage] | None = None
    """The figures of each answer in ``responses``, in the same order; absent from golden
    values written before they were kept, whose figures come from the answers."""

    model_config = pydantic.ConfigDict(extra="forbid", populate_by_name=True, strict=True)

    def same_value(self, other: GoldenStep) -> bool:
        """The same golden value, whether or not either keeps its answers' figures."""
        return self.model_copy(update={"usage": None}) == other.model_copy(update={"usage": None})


class RecordedRun(_Strict):
    """Everything recorded for one test case."""

    format: int = FORMAT_VERSION
    test: str
    case: str | None = None
    interactions: Sequence[Interaction] = []
    """A list when built in memory; ``StoredInteractions`` when read from a file."""
    steps: list[GoldenStep] = []
    prompt_sources: dict[str, str] = {}
    isolated: bool | None = None
    """Set on the recorded runs of tests of one step alone, which are not sources."""


def sample_of(part: Interaction | GoldenStep) -> int:
    return part.sample or 0


def samples_in(run: RecordedRun | None) -> int:
    """How many samples a recorded run holds: 0 for none, 1 for a file without samples."""
    if run is None:
        return 0
    parts: list[Interaction | GoldenStep] = [*run.interactions, *run.steps]
    if not parts:
        return 0
    return 1 + max(sample_of(part) for part in parts)


def sample_parts(run: RecordedRun, count: int) -> list[RecordedRun]:
    """The part of ``run`` each of ``count`` samples recorded, without their sample tags."""
    parts = []
    interactions = list(run.interactions)
    for sample in range(count):
        parts.append(
            run.model_copy(
                update={
                    "interactions": [
                        i.model_copy(update={"sample": None})
                        for i in interactions
                        if sample_of(i) == sample
                    ],
                    "steps": [
                        s.model_copy(update={"sample": None})
                        for s in run.steps
                        if sample_of(s) == sample
                    ],
                }
            )
        )
    return parts


@dataclass(frozen=True)
class Seed:
    """What a test of one step starts from: another test's recordings and golden values
    of that step's calls."""

    interactions: list[Interaction]
    golden: list[GoldenStep]
    prompt_sources: dict[str, str]
    source: Path | None = None
    """The recorded run they come from."""
    test: str | None = None
    """The test whose recorded run that is, as it names itself there."""


def response_fingerprint(response: RecordedResponse) -> str:
    """Names a recorded answer, so that a golden step call knows which answers it got:
    a hash of the response as ``model_dump(mode="json", exclude_none=True)`` gives it,
    in canonical JSON.

    The dump is built from the fields themselves, without copying the body as pydantic
    does (bodies come from JSON: their keys are strings); a body JSON cannot write as it
    is (NaN, infinity) takes pydantic's dump, so that every answer keeps the name it was
    recorded under."""
    document: dict[str, Any] = {"status": response.status, "headers": response.headers}
    for name in ("body", "body_text", "body_base64"):
        value = getattr(response, name)
        if value is not None:
            document[name] = value
    if response.events is not None:
        # A layout says how an answer was written, not what it says.
        document["events"] = [
            e.model_dump(mode="json", exclude_none=True, exclude=_LAYOUT) for e in response.events
        ]
    try:
        canonical = _plain_canonical_json(document)
    except (TypeError, ValueError):
        dump = response.model_dump(mode="json", exclude_none=True, exclude=_LAYOUT)
        for event in dump.get("events", []):
            event.pop("layout", None)
        canonical = canonical_json(dump)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


_LAYOUT = {"layout", "body_layout"}

_plain_canonical_json = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode
"""``canonical_json`` of what JSON writes as it is; anything else raises."""


def golden_steps(
    run: Run, usage_of: Callable[[StepCall], list[AnswerUsage] | None] | None = None
) -> list[GoldenStep]:
    """The golden value of each call of ``run``; ``usage_of`` gives the figures of the
    answers a call got."""
    return [
        GoldenStep(
            step=call.step,
            parent=call.parent,
            prompts=call.prompts,
            schema=call.schema,
            inputs=call.inputs,
            output=call.output,
            responses=call.responses,
            usage=usage_of(call) if usage_of is not None else None,
        )
        for call in run.calls
    ]


def recorded_run_document(run: RecordedRun) -> dict[str, Any]:
    """The JSON document of a recorded run: fields in schema order, no empty optionals."""
    if not isinstance(run.interactions, list):
        run = run.model_copy(update={"interactions": list(run.interactions)})
    return run.model_dump(mode="json", exclude_none=True, by_alias=True)


def serialize_document(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def serialize_recorded_run(run: RecordedRun) -> str:
    """The file's text: fields in schema order, each value as it was recorded."""
    return serialize_document(recorded_run_document(run))


def write_atomically(path: Path, text: str) -> None:
    """Write the whole file or nothing: a temporary file beside it, flushed to disk, then
    a rename. The temporary file is locked while it is written, so that a later run
    can tell one left behind by a killed process (and delete it) from one in progress."""
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f"{TEMPORARY_PREFIX}{path.stem[:40]}-"
    remove_orphan_temporaries(path.parent, prefix=prefix, recursive=False)
    descriptor, temporary = tempfile.mkstemp(prefix=prefix, suffix=".json", dir=path.parent)
    try:
        if fcntl is not None:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        # mkstemp makes the file private; a recorded run is as readable as any other file.
        os.chmod(temporary, 0o666 & ~_umask())
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
            if fcntl is not None:
                os.replace(temporary, path)  # while still locked
        if fcntl is None:
            os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(folder: Path) -> None:
    """Make the rename itself durable, where the system allows opening a directory."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def remove_orphan_temporaries(
    folder: Path,
    *,
    prefix: str = TEMPORARY_PREFIX,
    older_than: float | None = None,
    recursive: bool = True,
) -> list[Path]:
    """Delete the temporary files a killed run left under ``folder``: those that no
    process is writing (none holds their lock) and, when given, older than ``older_than``
    (a time stamp, such as the start of this run)."""
    if not folder.is_dir():
        return []
    removed = []
    candidates = folder.rglob(prefix + "*") if recursive else folder.glob(prefix + "*")
    for candidate in candidates:
        with contextlib.suppress(OSError):
            status = candidate.lstat()
            if not stat.S_ISREG(status.st_mode):
                continue
            if older_than is not None and status.st_mtime >= older_than:
                continue
            if _being_written(candidate):
                continue
            candidate.unlink()
            removed.append(candidate)
    return removed


def _being_written(path: Path) -> bool:
    if fcntl is None:
        return False  # Deleting a file open for writing fails on Windows.
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_RESERVED_ON_WINDOWS = re.compile(r"(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?", re.I)


MAX_NAME_LENGTH = 80


def _safe(name: str, *, fold_case: bool = False) -> str:
    """A file name for ``name`` that is the same file on Linux, macOS and Windows.

    Unsafe characters become ``_``, a name reserved on Windows (``CON``, ``nul.txt``,
    ``COM1``...) gets a leading ``_``; then a hash of the original name is added when
    anything was changed, and with ``fold_case`` when it holds an upper-case letter,
    since ``Comet`` and ``comet`` are one file on case-insensitive file systems.
    """
    safe = _SAFE_NAME.sub("_", name).strip("._")[:MAX_NAME_LENGTH] or "_"
    if _RESERVED_ON_WINDOWS.fullmatch(safe):
        # Windows reserves CON even as CON.txt; no safe name starts with _ otherwise.
        safe = "_" + safe
    if safe != name or (fold_case and safe != safe.lower()):
        # Two ids that differ only in unsafe characters or case must not share a file.
        safe += "-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:6]
    return safe


def _legacy_safe(name: str, *, fold_case: bool = False) -> str:
    """File names as pytest-promptflow 0.1 made them, to find recordings it wrote."""
    safe = _SAFE_NAME.sub("_", name).strip("._")[:MAX_NAME_LENGTH] or "_"
    if safe != name:
        safe += "-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:6]
    return safe


def recorded_run_path(
    cassette_dir: Path, module: Path, test_name: str, parameter_id: str | None
) -> Path:
    """``<dir>/<module path without .py>/<test name>[/<case id>].json``, never colliding."""
    return _path_of(cassette_dir, module, test_name, parameter_id, _safe)


def legacy_recorded_run_paths(
    cassette_dir: Path, module: Path, test_name: str, parameter_id: str | None
) -> tuple[Path, ...]:
    """Where older versions named the file of this test case, when that differs."""
    legacy = _path_of(cassette_dir, module, test_name, parameter_id, _legacy_safe)
    current = recorded_run_path(cassette_dir, module, test_name, parameter_id)
    return () if legacy == current else (legacy,)


def _path_of(
    cassette_dir: Path,
    module: Path,
    test_name: str,
    parameter_id: str | None,
    safe: Callable[..., str],
) -> Path:
    folder = cassette_dir.joinpath(*(safe(part) for part in module.with_suffix("").parts))
    # A class name is CamelCase by convention; the function's own name is what may clash.
    function = test_name.rpartition(".")[2]
    test = safe(test_name, fold_case=function != function.lower())
    if parameter_id is None:
        return folder / f"{test}.json"
    return folder / test / f"{safe(parameter_id, fold_case=True)}.json"


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
