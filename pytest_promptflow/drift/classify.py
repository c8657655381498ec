"""Why a step's output drifted: its prompt, an upstream step, the model, its own code.

Each step call of a run is matched with the golden call of the same step at the same
occurrence, and its drift is attributed by what differs from the golden record:

- ``schema``: the output type itself changed (its JSON schema fingerprint differs);
- ``prompt``: a prompt of the step has another version;
- ``propagated``: same prompts, but the step received other inputs, because an
  upstream step's output changed;
- ``model``: same prompts and inputs, but the recorded answer differs (re-recorded);
- ``code``: same prompts, inputs and answer, so the step's own code changed the result.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from pytest_promptflow.cassette.format import GoldenStep, RecordedRun
from pytest_promptflow.drift.compare import FieldChange, compare_output
from pytest_promptflow.drift.policy import DEFAULTS, DriftPolicy, PolicyDefaults
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


def judge_case(
    golden: RecordedRun | None,
    run: Run,
    defaults: PolicyDefaults = DEFAULTS,
) -> CaseDrift | None:
    """Compare every step call of ``run`` with its golden value; None without golden values."""
    if golden is None or not golden.steps:
        return None
    verdict = CaseDrift(run.test_id or golden.test, run.case_id)
    golden_calls = _by_occurrence(golden.steps)
    seen: Counter[str] = Counter()
    for call in run.calls:
        occurrence = seen[call.step]
        seen[call.step] += 1
        if call.error is not None:
            # It raised, so it has no output; the test's failure already says why.
            continue
        reference = golden_calls.get((call.step, occurrence))
        if reference is None:
            verdict.steps.append(
                StepDrift(call.step, occurrence, "new call", "no golden value for this call")
            )
            continue
        verdict.compared.append(call.step)
        policy = DriftPolicy(run.output_types.get(call.step, Any), defaults)
        changes = compare_output(reference.output, call.output, policy)
        schema_changed = reference.schema_ is not None and reference.schema_ != call.schema
        if changes or schema_changed:
            step_drift = _attribute(reference, call, changes, golden, run)
            if schema_changed:
                step_drift.cause = "schema"
                step_drift.detail = (
                    f"the output schema changed: {reference.schema_} -> {call.schema}"
                )
            verdict.steps.append(step_drift)
    cut_short = any(call.error is not None for call in run.calls)
    for (step, occurrence), _reference in golden_calls.items():
        if occurrence >= seen[step] and not cut_short:
            verdict.steps.append(
                StepDrift(
                    step, occurrence, "missing call", "the golden run called it; this did not"
                )
            )
    return verdict


def _by_occurrence(steps: list[GoldenStep]) -> dict[tuple[str, int], GoldenStep]:
    counts: Counter[str] = Counter()
    indexed = {}
    for golden_step in steps:
        indexed[(golden_step.step, counts[golden_step.step])] = golden_step
        counts[golden_step.step] += 1
    return indexed


def _attribute(
    reference: GoldenStep,
    call: StepCall,
    changes: list[FieldChange],
    golden: RecordedRun,
    run: Run,
) -> StepDrift:
    occurrence = sum(1 for c in run.calls[: call.index] if c.step == call.step)
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
        return StepDrift(call.step, occurrence, "prompt", "; ".join(details), changes, diffs)
    if reference.inputs != call.inputs:
        sources = [
            _source_of(call.inputs[name], run.calls[: call.index])
            for name in call.inputs
            if reference.inputs.get(name) != call.inputs[name]
        ]
        upstream = ", ".join(dict.fromkeys(s for s in sources if s)) or "the test's inputs"
        return StepDrift(call.step, occurrence, "propagated", f"from {upstream}", changes)
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


def _source_of(value: Any, earlier: list[StepCall]) -> str | None:
    """The latest earlier step whose output is ``value``: where an input came from."""
    for call in reversed(earlier):
        if call.output == value:
            return call.step
    return None


def _template_diff(old: str, new: str, name: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(), new.splitlines(), f"{name} (golden)", f"{name} (now)", lineterm=""
    )
    return "\n".join(lines)


def cause_counts(drifts: list[StepDrift]) -> dict[str, int]:
    counts = Counter(d.cause for d in drifts if d.drifted)
    return {cause: counts[cause] for cause in CAUSES if counts[cause]}
