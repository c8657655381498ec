"""One step alone: its golden inputs from a recorded run, and only its recordings.

A test of one step is parametrized over every recorded call of that step in the
recorded runs of other tests. It calls the step with the golden inputs of that call,
replays only the interactions the step (and the steps it calls) made, and is judged
against the golden output, exactly as in a whole-chain run.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_promptflow.cassette.format import GoldenStep, Seed, sample_parts, samples_in
from pytest_promptflow.cassette.misses import OWN_RECORDING
from pytest_promptflow.cassette.reading import read_recorded_run
from pytest_promptflow.errors import PromptflowError
from pytest_promptflow.steps import Step, find_step, known_step_names


@dataclass(frozen=True)
class RecordedStepCall:
    """One recorded call of a step, ready to be made again on its own.

    ``recorded_step(client=client)`` calls the step with its golden inputs, plus the
    arguments that are not data (a client, a callback), which a recording cannot hold.
    """

    step: Step[..., Any]
    source: Path
    test: str
    case: str | None
    occurrence: int
    seed: Seed = field(repr=False)

    @property
    def golden(self) -> GoldenStep:
        return self.seed.golden[0]

    @property
    def inputs(self) -> dict[str, Any]:
        """The golden inputs, validated into the step's annotated types."""
        types = self.step.input_types
        return {
            name: types[name].validate_python(value) if name in types else value
            for name, value in self.golden.inputs.items()
        }

    @property
    def golden_output(self) -> Any:
        adapter = self.step.output_type
        output = self.golden.output
        return adapter.validate_python(output) if adapter is not None else output

    def __call__(self, **arguments: Any) -> Any:
        return self.step(**{**self.inputs, **arguments})


def recorded_calls(cassette_dir: Path, step: Step[..., Any]) -> list[RecordedStepCall]:
    """Every recorded call of ``step`` under ``cassette_dir``, from whole-chain runs."""
    found: list[RecordedStepCall] = []
    for path in sorted(cassette_dir.rglob("*.json")) if cassette_dir.is_dir() else []:
        recorded = read_recorded_run(path)
        if recorded is None or recorded.isolated:
            continue
        if samples_in(recorded) > 1:
            # A case recorded several times: its first sample is the step's golden call.
            recorded = sample_parts(recorded, 1)[0]
        occurrence = 0
        for index, golden in enumerate(recorded.steps):
            if golden.step != step.name:
                continue
            family = _with_descendants(recorded.steps, index)
            names = {member.step for member in family}
            seed = Seed(
                [i for i in recorded.interactions if i.step in names],
                family,
                recorded.prompt_sources,
                source=path,
                test=recorded.test,
            )
            found.append(
                RecordedStepCall(step, path, recorded.test, recorded.case, occurrence, seed)
            )
            occurrence += 1
    return _distinct(found)


def recorded_step_names(cassette_dir: Path) -> list[str]:
    names: set[str] = set()
    for path in sorted(cassette_dir.rglob("*.json")) if cassette_dir.is_dir() else []:
        recorded = read_recorded_run(path)
        if recorded is not None:
            names.update(golden.step for golden in recorded.steps)
    return sorted(names)


def call_id(call: RecordedStepCall) -> str:
    base = call.case or call.test.rpartition("::")[2]
    return base + (f"-{call.occurrence + 1}" if call.occurrence else "")


def check_step(
    candidate: object, cassette_dir: Path, namespace: Mapping[str, Any] | None = None
) -> Step[..., Any]:
    """The step a marker names, by name (looked up first in ``namespace``, the test
    module's globals) or as the step itself."""
    if isinstance(candidate, Step):
        return candidate
    found = find_step(candidate, namespace) if isinstance(candidate, str) else None
    if found is not None:
        return found
    known = ", ".join(known_step_names()) or "none"
    recorded = ", ".join(recorded_step_names(cassette_dir)) or "none yet"
    raise PromptflowError(
        f"{candidate!r} is not a step; known steps: {known} (with recorded calls: {recorded}). "
        "Name a @step function, and import the module that defines it in the test"
    )


def no_recorded_calls(step: Step[..., Any], cassette_dir: Path) -> PromptflowError:
    known = ", ".join(recorded_step_names(cassette_dir)) or "none yet"
    return PromptflowError(
        f"step {step.name!r} has no recorded calls under {cassette_dir}; record a test that "
        f"calls it first (pytest --promptflow-record=new). Steps with recorded calls: {known}"
    )


def not_run_lines(waiting: Mapping[str, str], cassette_dir: Path) -> list[str]:
    """What to say about the step tests (node id -> step name) that had no recorded call
    to run on when a recording session started: the session may have recorded them."""
    if not waiting:
        return []
    recorded = set(recorded_step_names(cassette_dir))
    lines = [
        f"{len(waiting)} step test(s) not run: their steps had no recorded calls when this "
        "session started:"
    ]
    lines += [f"  {test} (step {step!r})" for test, step in sorted(waiting.items())]
    ready = sorted(test for test, step in waiting.items() if step in recorded)
    if ready:
        lines += [
            "This session recorded the calls they run on; run them with:",
            "  " + shlex.join(["pytest", *ready]),
        ]
    for step in sorted({step for step in waiting.values() if step not in recorded}):
        lines.append(
            f"No test of this session recorded a call of step {step!r}: record a test that "
            "calls it (pytest --promptflow-record=new), then run its step tests."
        )
    return lines


def own_recording_lines(written: dict[str, tuple[str, str]]) -> list[str]:
    """What to say about the step tests (node id -> (file written, the chain's recorded
    run it replays from)) that wrote recorded runs of their own in this session."""
    if not written:
        return []
    lines = [
        f"{len(written)} step test(s) recorded into recorded runs of their own, each "
        f"{OWN_RECORDING}: what a step asks there was made from golden inputs, not by a "
        "run of the chain. The chain's recorded runs they replay from are left as they are:"
    ]
    lines += [
        f"  {test} -> {path} (replays from {source})"
        for test, (path, source) in sorted(written.items())
    ]
    return lines


def _with_descendants(steps: list[GoldenStep], index: int) -> list[GoldenStep]:
    """The call at ``index`` and every call nested in it, renumbered from 0."""
    members = [index]
    for position in range(index + 1, len(steps)):
        if steps[position].parent in members:
            members.append(position)
    renumber = {old: new for new, old in enumerate(members)}
    return [
        steps[old].model_copy(
            update={"parent": renumber.get(steps[old].parent) if old != index else None}  # type: ignore[arg-type]
        )
        for old in members
    ]


def _distinct(calls: list[RecordedStepCall]) -> list[RecordedStepCall]:
    """One call per case and golden input: several tests often record the same call."""
    seen: set[tuple[str, str]] = set()
    distinct = []
    for call in calls:
        inputs = json.dumps(call.golden.inputs, sort_keys=True)
        key = (call_id(call), hashlib.sha256(inputs.encode("utf-8")).hexdigest())
        if key not in seen:
            seen.add(key)
            distinct.append(call)
    return distinct


def call_ids(calls: list[RecordedStepCall]) -> list[str]:
    """Test ids naming the case; the source test is added where a case id repeats."""
    plain = [call_id(call) for call in calls]
    return [
        name if plain.count(name) == 1 else f"{name}-{call.test.rpartition('::')[2]}"
        for name, call in zip(plain, calls, strict=True)
    ]
