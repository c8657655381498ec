"""Why a step's output drifted: its prompt, an upstream step, the model, its own code.

Each step call of a run is matched with a golden call of the same step: one with the
same inputs (and answers, among several with the same inputs) when there is one, else
the next one not matched yet, in order; so concurrent calls are matched whatever order
they ran in, and a golden file's own order does not matter. Its drift is attributed by
what differs from the golden record:

- ``schema``: the output type itself changed (its JSON schema fingerprint differs);
- ``prompt``: a prompt of the step has another version;
- ``propagated``: same prompts, but the step received other inputs, because an
  upstream step's output changed;
- ``model``: same prompts and inputs, but the recorded answer differs (re-recorded);
- ``code``: same prompts, inputs and answer, so the step's own code changed the result;
- ``new call``: the golden run has no call of the step left to match this one with;
- ``missing call``: the golden run called the step once more than this run did.

When several apply, the first in that order wins (``schema`` over ``prompt`` over
``propagated`` over ``model`` over ``code``), and the others that also apply are listed in
``also``: a step whose prompt and inputs both changed is ``prompt``, also ``propagated``.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import pydantic

from pytest_promptflow.cassette.format import GoldenStep, RecordedRun
from pytest_promptflow.drift.compare import FieldChange, compare_output
from pytest_promptflow.drift.judging import JudgeSession
from pytest_promptflow.drift.policy import DEFAULTS, DriftPolicy, PolicyDefaults
from pytest_promptflow.fingerprint import (
    is_legacy,
    legacy_fingerprint_of,
    legacy_schema_fingerprint,
)
from pytest_promptflow.trace import Run, StepCall

Cause = Literal["schema", "prompt", "propagated", "model", "code", "new call", "missing call"]
CAUSES: tuple[Cause, ...] = (
    "prompt",
    "propagated",
    "model",
    "code",
    "schema",
    "new call",
    "missing call",
)


@dataclass
class StepDrift:
    """What changed in one step call, and why."""

    step: str
    occurrence: int
    cause: Cause
    detail: str
    changes: list[FieldChange] = field(default_factory=list)
    prompt_diffs: dict[str, str] = field(default_factory=dict)
    also: list[Cause] = field(default_factory=list)
    """Other causes that apply too, after the one that wins."""

    @property
    def drifted(self) -> bool:
        """Beyond the policy: a field outside its rule, or a structural change."""
        structural = self.cause in ("schema", "new call", "missing call")
        return structural or any(not change.tolerated for change in self.changes)

    @property
    def tolerated(self) -> list[FieldChange]:
        return [change for change in self.changes if change.tolerated]

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "occurrence": self.occurrence,
            "cause": self.cause,
            "detail": self.detail,
            "drifted": self.drifted,
            "changes": [change.to_json() for change in self.changes],
            "prompt_diffs": self.prompt_diffs,
            "also": list(self.also),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepDrift:
        changes = [
            FieldChange(
                **{k: v for k, v in c.items() if k != "tolerated"}, tolerated=c["tolerated"]
            )
            for c in data["changes"]
        ]
        return cls(
            data["step"],
            data["occurrence"],
            data["cause"],
            data["detail"],
            changes,
            data["prompt_diffs"],
            list(data.get("also", [])),
        )


@dataclass
class CaseDrift:
    """The comparison of one test case's run with its golden values."""

    test: str
    case: str | None
    compared: list[str] = field(default_factory=list)
    """The step of every call that had a golden value to compare with."""
    steps: list[StepDrift] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return any(step.drifted for step in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "case": self.case,
            "compared": self.compared,
            "drifted": self.drifted,
            "steps": [step.to_json() for step in self.steps],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CaseDrift:
        steps = [StepDrift.from_json(step) for step in data["steps"]]
        return cls(data["test"], data["case"], list(data["compared"]), steps)


class ExpectedValues(Protocol):
    """The expected values of a case, which judge the changes of the fields they name
    instead of the golden values (``pytest_promptflow.quality.case.CaseQuality``)."""

    def expects(self, step: str) -> bool: ...

    def judged_changes(
        self, call: StepCall, golden_position: int, changes: list[FieldChange]
    ) -> list[FieldChange]: ...


def judge_case(
    golden: RecordedRun | None,
    run: Run,
    defaults: PolicyDefaults = DEFAULTS,
    judges: JudgeSession | None = None,
    expected: ExpectedValues | None = None,
) -> CaseDrift | None:
    """Compare every step call of ``run`` with its golden value; None without golden values.

    Linear in the number of calls: calls are matched with golden ones through an index
    of their inputs, and the upstream step an input came from is looked up in an index
    of earlier outputs.
    """
    if golden is None or not golden.steps:
        return None
    verdict = CaseDrift(run.test_id or golden.test, run.case_id)
    references, unmatched = pair_calls(golden.steps, run.calls)
    positions = {id(reference): position for position, reference in enumerate(golden.steps)}
    judges = judges if judges is not None else JudgeSession(run.case_id)
    sources = OutputIndex(run.calls)
    policies: dict[str, DriftPolicy] = {}
    for call, occurrence in numbered_calls(run.calls):
        if call.error is not None:
            # It raised, so it has no output; the test's failure already says why.
            continue
        reference = references.get(call.index)
        if reference is None:
            verdict.steps.append(
                StepDrift(call.step, occurrence, "new call", "no golden value for this call")
            )
            continue
        verdict.compared.append(call.step)
        policy = policies.get(call.step)
        if policy is None:
            policy = policies[call.step] = DriftPolicy.of(
                run.output_types.get(call.step, Any), defaults
            )
        changes = compare_output(
            reference.output, call.output, policy, judges, call.step, inputs=call.inputs
        )
        if changes and expected is not None and expected.expects(call.step):
            changes = expected.judged_changes(call, positions[id(reference)], changes)
        schema_changed = reference.schema_ is not None and not same_schema(
            reference, call, policy.annotation
        )
        if changes or schema_changed:
            step_drift = attribute(reference, call, occurrence, changes, golden, run, sources)
            if schema_changed:
                step_drift.also = [step_drift.cause, *step_drift.also]
                step_drift.cause = "schema"
                step_drift.detail = schema_change(reference, call)
            verdict.steps.append(step_drift)
    verdict.steps += missing_calls(run, unmatched)
    return verdict


def numbered_calls(calls: Sequence[StepCall]) -> Iterator[tuple[StepCall, int]]:
    """Each call with its occurrence: how many calls of its step came before it."""
    seen: Counter[str] = Counter()
    for call in calls:
        yield call, seen[call.step]
        seen[call.step] += 1


def schema_change(reference: GoldenStep, call: StepCall) -> str:
    return f"the output schema changed: {reference.schema_} -> {call.schema}"


def missing_calls(run: Run, unmatched: Sequence[tuple[str, int]]) -> list[StepDrift]:
    """The golden calls ``run`` did not make, unless a call raised and cut it short."""
    if any(call.error is not None for call in run.calls):
        return []
    return [
        StepDrift(step, occurrence, "missing call", "the golden run called it; this did not")
        for step, occurrence in unmatched
    ]


def same_schema(reference: GoldenStep, call: StepCall, output_type: Any) -> bool:
    """Golden values written before fingerprints saw field names are compared the old way."""
    if reference.schema_ == call.schema or reference.schema_ is None:
        return True
    if not is_legacy(reference.schema_) or output_type is Any:
        return False
    try:
        return reference.schema_ == legacy_fingerprint_of(output_type)
    except TypeError:  # an annotation that cannot be a cache key
        return reference.schema_ == legacy_schema_fingerprint(pydantic.TypeAdapter(output_type))


def pair_calls(
    steps: list[GoldenStep], calls: list[StepCall]
) -> tuple[dict[int, GoldenStep], list[tuple[str, int]]]:
    """The golden call of each call (by its index), and the (step, occurrence) of each
    golden call no call was matched with, in the golden order.

    A call is matched with a golden call of its step with the same inputs and answers,
    else the same inputs, else the first one left, each time the first such in the
    golden order: concurrent calls whose inputs differ find theirs whatever order they
    ran in, and so do concurrent calls with the same inputs that got different answers.
    """
    left: dict[str, dict[int, GoldenStep]] = {}
    by_exchange: dict[tuple[str, str, tuple[str, ...]], deque[int]] = {}
    by_inputs: dict[tuple[str, str], deque[int]] = {}
    occurrences: list[int] = []
    for position, golden_step in enumerate(steps):
        of_step = left.setdefault(golden_step.step, {})
        occurrences.append(len(of_step))
        of_step[position] = golden_step
        inputs = _canonical(golden_step.inputs)
        exchange = (golden_step.step, inputs, tuple(golden_step.responses))
        by_exchange.setdefault(exchange, deque()).append(position)
        by_inputs.setdefault((golden_step.step, inputs), deque()).append(position)
    paired: dict[int, GoldenStep] = {}
    unpaired: list[StepCall] = []
    for call in calls:
        inputs = _canonical(call.inputs)
        of_step = left.get(call.step, {})
        found = _first_left(by_exchange.get((call.step, inputs, tuple(call.responses))), of_step)
        if found is None:
            found = _first_left(by_inputs.get((call.step, inputs)), of_step)
        if found is None:
            unpaired.append(call)
        else:
            paired[call.index] = of_step.pop(found)
    for call in unpaired:
        of_step = left.get(call.step, {})
        if of_step:
            paired[call.index] = of_step.pop(next(iter(of_step)))
    unmatched = sorted(position for of_step in left.values() for position in of_step)
    return paired, [(steps[position].step, occurrences[position]) for position in unmatched]


def _first_left(candidates: deque[int] | None, left: dict[int, GoldenStep]) -> int | None:
    """The first of ``candidates`` not matched yet; those matched are dropped as seen."""
    while candidates and candidates[0] not in left:
        candidates.popleft()
    return candidates[0] if candidates else None


class OutputIndex:
    """The latest step whose output is a value, among the calls before a given one.

    Built lazily and only forwards, so that attributing every call of a run costs one
    pass over the run however many inputs changed.
    """

    def __init__(self, calls: list[StepCall]) -> None:
        self._calls = calls
        self._indexed = 0
        self._latest: dict[str, str] = {}

    def source_of(self, value: Any, before: int) -> str | None:
        while self._indexed < before:
            call = self._calls[self._indexed]
            self._latest[_canonical(call.output)] = call.step
            self._indexed += 1
        return self._latest.get(_canonical(value))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=repr)


def attribute(
    reference: GoldenStep,
    call: StepCall,
    occurrence: int,
    changes: list[FieldChange],
    golden: RecordedRun,
    run: Run,
    sources: OutputIndex,
) -> StepDrift:
    propagated: str | None = None
    if reference.inputs != call.inputs:
        upstream = [
            sources.source_of(call.inputs[name], call.index)
            for name in call.inputs
            if reference.inputs.get(name) != call.inputs[name]
        ]
        named = ", ".join(dict.fromkeys(s for s in upstream if s)) or "the test's inputs"
        propagated = f"from {named}"
    if reference.prompts != call.prompts:
        names = sorted(reference.prompts.keys() | call.prompts.keys())
        changed = [name for name in names if reference.prompts.get(name) != call.prompts.get(name)]
        details = []
        diffs = {}
        for name in changed:
            old, new = reference.prompts.get(name), call.prompts.get(name)
            if new is None:
                details.append(f"{name} removed (was {old})")
            elif old is None:
                details.append(f"{name} added ({new})")
            else:
                details.append(f"{name} changed {old} -> {new}")
            diffs[name] = _template_diff(
                golden.prompt_sources.get(old or "", ""),
                run.prompt_sources.get(new or "", ""),
                name,
            )
        detail = "; ".join(details)
        also: list[Cause] = []
        if propagated is not None:
            detail += f"; its inputs changed too ({propagated})"
            also.append("propagated")
        return StepDrift(call.step, occurrence, "prompt", detail, changes, diffs, also)
    if propagated is not None:
        return StepDrift(call.step, occurrence, "propagated", propagated, changes)
    if reference.responses != call.responses:
        return StepDrift(
            call.step,
            occurrence,
            "model",
            "the model answered the same request differently",
            changes,
        )
    return StepDrift(
        call.step,
        occurrence,
        "code",
        "same request and answer: the step's own code changed the result",
        changes,
    )


def _template_diff(old: str, new: str, name: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(), new.splitlines(), f"{name} (golden)", f"{name} (now)", lineterm=""
    )
    return "\n".join(lines)


def cause_counts(drifts: list[StepDrift]) -> dict[str, int]:
    counts = Counter(d.cause for d in drifts if d.drifted)
    return {cause: counts[cause] for cause in CAUSES if counts[cause]}
