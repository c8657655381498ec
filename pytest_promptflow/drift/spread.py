"""Drift calibrated to the model's own noise: a case's new samples against its golden
samples.

With several golden samples of a case, each field's golden values are a set. A new
sample's field is *within the spread* when, under the field's rule, it is equivalent to
at least one golden sample's value (a value equal to one needs no rule, and no judge;
otherwise the golden samples are tried in their order, stopping at the first
equivalent). A field drifts when

1. more new samples than ``outside_share`` allows fall outside the spread, or
2. it has finitely many values (a ``Literal``, an enum, a ``bool``, or an ``int`` under
   ``exact``), both sides have at least two samples, and the share of samples equal to
   the golden mode (its most frequent value, a tie going to the first in JSON order)
   differs by Fisher's exact test, two-sided, p < ``alpha``. A share that differs with p
   at or above ``alpha`` is reported as a shift not confirmed, and fails nothing.

A field with finitely many values whose golden samples disagree is reported as ``noisy``
with its spread. A field with an expected value is judged by it instead (the item is
correct when more than half of its samples are). With one sample on either side,
``judge_case`` judges the case exactly as without samples.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_promptflow.cassette.format import GoldenStep, RecordedRun
from pytest_promptflow.drift.classify import (
    CaseDrift,
    ExpectedValues,
    OutputIndex,
    StepDrift,
    attribute,
    judge_case,
    missing_calls,
    numbered_calls,
    pair_calls,
    same_schema,
    schema_change,
)
from pytest_promptflow.drift.compare import FieldChange, compare_output, same_value
from pytest_promptflow.drift.judging import JudgeSession
from pytest_promptflow.drift.policy import (
    DEFAULTS,
    DriftPolicy,
    Exact,
    Ignore,
    PolicyDefaults,
    has_finite_values,
)
from pytest_promptflow.quality import statistics
from pytest_promptflow.trace import Run, StepCall

ExpectedVerdict = Callable[[str, str], "tuple[str, bool] | None"]
"""``(step, field)`` -> what the samples did to a field the case expects a value of
(``still correct``, ``fixed``, ``still wrong``, ``broken``) and whether that is
tolerated; None for other fields."""


@dataclass(frozen=True)
class SpreadSettings:
    outside_share: float = 0.0
    alpha: float = 0.05


@dataclass
class _Slot:
    """One call of a step (by its occurrence) across the new samples."""

    step: str
    occurrence: int
    calls: list[tuple[int, StepCall]] = field(default_factory=list)
    """(new sample, its call)."""
    golden: list[list[GoldenStep | None]] = field(default_factory=list)
    """For each new call, its paired golden call in each golden sample."""


def spread_text(values: Sequence[Any]) -> str:
    """``3 x3, 4 x2``: each value with how many samples answered it, in JSON order."""
    counts = Counter(_key(value) for value in values)
    shown = {_key(value): value for value in values}
    labels = statistics.labels_in_order([shown[key] for key in counts if _scalar(shown[key])])
    rest = [key for key in counts if not _scalar(shown[key])]
    parts = [f"{_json(label)} x{counts[_key(label)]}" for label in labels]
    parts += [f"{shown[key]!r} x{counts[key]}" for key in rest]
    return ", ".join(parts)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _key(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def golden_mode(values: Sequence[Any]) -> Any:
    """The most frequent value; a tie goes to the first in JSON order."""
    counts = Counter(_key(value) for value in values)
    top = max(counts.values())
    tied = [value for value in values if counts[_key(value)] == top]
    if all(_scalar(value) for value in tied):
        return statistics.labels_in_order(tied)[0]
    return sorted(tied, key=_key)[0]


def judge_samples(
    golden: Sequence[RecordedRun],
    runs: Sequence[Run],
    defaults: PolicyDefaults = DEFAULTS,
    judges: JudgeSession | None = None,
    expected: ExpectedValues | None = None,
    expected_verdict: ExpectedVerdict | None = None,
    settings: SpreadSettings = SpreadSettings(),
) -> CaseDrift | None:
    """Every step call of the new samples against the golden samples; None without
    golden values. One sample on either side: ``judge_case`` as without samples."""
    golden = [sample for sample in golden if sample.steps]
    if not golden or not runs:
        return None
    judges = judges if judges is not None else JudgeSession(runs[0].case_id)
    if len(golden) == 1 and len(runs) == 1:
        return judge_case(golden[0], runs[0], defaults, judges, expected)
    first = runs[0]
    verdict = CaseDrift(first.test_id or golden[0].test, first.case_id)
    for run in runs:
        references = pair_calls(golden[0].steps, run.calls)[0]
        verdict.compared += [c.step for c in run.calls if c.error is None and c.index in references]
    # Calls added or missing, and a changed output schema, as without samples: the first
    # new sample against the first golden sample.
    references, unmatched = pair_calls(golden[0].steps, first.calls)
    structural: set[tuple[str, int]] = set()
    for call, occurrence in numbered_calls(first.calls):
        if call.error is not None:
            continue
        reference = references.get(call.index)
        if reference is None:
            verdict.steps.append(
                StepDrift(call.step, occurrence, "new call", "no golden value for this call")
            )
            structural.add((call.step, occurrence))
        elif reference.schema_ is not None and not same_schema(
            reference, call, first.output_types.get(call.step, Any)
        ):
            verdict.steps.append(
                StepDrift(call.step, occurrence, "schema", schema_change(reference, call))
            )
            structural.add((call.step, occurrence))
    verdict.steps += missing_calls(first, unmatched)
    policies: dict[str, DriftPolicy] = {}
    sources = OutputIndex(first.calls)
    for slot in _slots(golden, runs):
        if (slot.step, slot.occurrence) in structural:
            continue
        policy = policies.get(slot.step)
        if policy is None:
            policy = policies[slot.step] = DriftPolicy.of(
                first.output_types.get(slot.step, Any), defaults
            )
        changes, culprit = _slot_changes(slot, policy, judges, expected_verdict, settings)
        if not changes:
            continue
        # The cause is read off a sample that left the spread, when one did: its prompts,
        # inputs and answers against its golden call's.
        position = next((p for p, (s, _) in enumerate(slot.calls) if s == culprit), 0)
        sample, call = slot.calls[position]
        reference = next((g for g in slot.golden[position] if g is not None), None)
        if reference is None:
            continue
        index = sources if sample == 0 else OutputIndex(runs[sample].calls)
        drift = attribute(reference, call, slot.occurrence, changes, golden[0], runs[sample], index)
        verdict.steps.append(drift)
    return verdict


def _slots(golden: Sequence[RecordedRun], runs: Sequence[Run]) -> list[_Slot]:
    """Each call of each new sample with its golden calls, by step and occurrence."""
    slots: dict[tuple[str, int], _Slot] = {}
    pairings = [[pair_calls(g.steps, run.calls)[0] for g in golden] for run in runs]
    for sample, run in enumerate(runs):
        for call, occurrence in numbered_calls(run.calls):
            if call.error is not None:
                continue
            references = [pairing.get(call.index) for pairing in pairings[sample]]
            if not any(references):
                continue  # a new call: structure, reported with the first sample
            slot = slots.setdefault((call.step, occurrence), _Slot(call.step, occurrence))
            slot.calls.append((sample, call))
            slot.golden.append(references)
    return list(slots.values())


def _slot_changes(
    slot: _Slot,
    policy: DriftPolicy,
    judges: JudgeSession,
    expected_verdict: ExpectedVerdict | None,
    settings: SpreadSettings,
) -> tuple[list[FieldChange], int | None]:
    """The slot's field changes, and the first new sample that fell outside a field's
    spread (None when none did)."""
    names: list[str] = []
    for _, call in slot.calls:
        if isinstance(call.output, dict):
            names += [name for name in call.output if name not in names]
    for references in slot.golden:
        for reference in references:
            if reference is not None and isinstance(reference.output, dict):
                names += [name for name in reference.output if name not in names]
    changes = []
    culprits: list[int] = []
    for name in names:
        declared = policy.declared_at((name,))
        if isinstance(declared.rule, Ignore):
            continue
        verdict = expected_verdict(slot.step, name) if expected_verdict is not None else None
        if verdict is not None:
            change = _expected_change(slot, name, policy, verdict)
        else:
            change, outside = _spread_change(slot, name, policy, judges, settings)
            culprits += outside
        if change is not None:
            changes.append(change)
    return sorted(changes, key=lambda change: change.path), min(culprits, default=None)


_MISSING = object()


def _value(output: Any, name: str) -> Any:
    return output.get(name, _MISSING) if isinstance(output, dict) else _MISSING


def _golden_values(slot: _Slot, name: str) -> list[Any]:
    """The field's value in each golden sample (those that had the call and the field)."""
    values: list[Any] = []
    references = slot.golden[0] if slot.golden else []
    for reference in references:
        if reference is not None:
            value = _value(reference.output, name)
            if value is not _MISSING:
                values.append(value)
    return values


def _spread_change(
    slot: _Slot,
    name: str,
    policy: DriftPolicy,
    judges: JudgeSession,
    settings: SpreadSettings,
) -> tuple[FieldChange | None, list[int]]:
    """The field's change across the samples, and the new samples outside its spread."""
    golden = _golden_values(slot, name)
    new = [_value(call.output, name) for _, call in slot.calls]
    new = [value for value in new if value is not _MISSING]
    if not golden or not new:
        return None, []
    rule = policy.rule_at((name,), golden[0])
    finite = has_finite_values(policy.declared_at((name,)).leaf) or (
        isinstance(rule, Exact) and all(_is_int(v) for v in [*golden, *new])
    )
    outside = [
        sample
        for (sample, call), value in zip(slot.calls, new, strict=False)
        if not _within(name, value, golden, call, slot.step, policy, judges)
    ]
    words: list[str] = []
    drifted = False
    if outside:
        words.append(
            f"{len(outside)} of {len(new)} samples outside the golden spread "
            f"(sample {', '.join(str(s) for s in outside)})"
        )
        drifted = len(outside) / len(new) > settings.outside_share
    if finite and len(golden) >= 2 and len(new) >= 2:
        mode = golden_mode(golden)
        a = sum(same_value(value, mode) for value in golden)
        b = sum(same_value(value, mode) for value in new)
        if a * len(new) != b * len(golden):
            p = statistics.fisher_exact_two_sided(a, len(golden) - a, b, len(new) - b)
            share = f"share of {_json(mode)} {a}/{len(golden)} -> {b}/{len(new)}, p={p:.3g}"
            if p < settings.alpha:
                words.append(f"shift confirmed: {share}")
                drifted = True
            else:
                words.append(f"shift not confirmed: {share}")
    if finite and len({_key(value) for value in golden}) > 1:
        words.append("noisy")
    if not words:
        return None, outside
    old: Any = spread_text(golden) if finite else golden
    now: Any = spread_text(new) if finite else new
    change = FieldChange(name, "changed", old, now, str(rule), not drifted, "; ".join(words))
    return change, outside


def _expected_change(
    slot: _Slot, name: str, policy: DriftPolicy, verdict: tuple[str, bool]
) -> FieldChange | None:
    golden = _golden_values(slot, name)
    new = [_value(call.output, name) for _, call in slot.calls]
    new = [value for value in new if value is not _MISSING]
    if [_key(v) for v in golden] == [_key(v) for v in new]:
        return None
    finite = has_finite_values(policy.declared_at((name,)).leaf)
    rule = policy.rule_at((name,), golden[0] if golden else None)
    return FieldChange(
        name,
        "changed",
        spread_text(golden) if finite else golden,
        spread_text(new) if finite else new,
        str(rule),
        verdict[1],
        None,
        verdict[0],
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _within(
    name: str,
    value: Any,
    golden: Sequence[Any],
    call: StepCall,
    step: str,
    policy: DriftPolicy,
    judges: JudgeSession,
) -> bool:
    """Whether ``value`` is equivalent, under its rule, to one of the golden values:
    equal to one (no rule, no judge asked), else each tried in order."""
    if any(same_value(value, old) for old in golden):
        return True
    for old in golden:
        changes = compare_output({name: old}, {name: value}, policy, judges, step,
                                 inputs=call.inputs)  # fmt: skip
        if all(change.tolerated for change in changes):
            return True
    return False
