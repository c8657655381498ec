"""Usage per step of a case, golden against now, and the budget gate on its growth.

A case's figures now come from the interactions its step calls replayed or recorded;
its golden figures from those its golden step calls kept with their golden values (or,
in golden values written before they were kept, from the recorded answers they got).
A step whose tokens or cost per case grew beyond the policy is over budget, and fails
the test like drift until the new figures are accepted as golden.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_promptflow.cassette.format import (
    GoldenStep,
    Interaction,
    RecordedRun,
    response_fingerprint,
)
from pytest_promptflow.errors import PromptflowError
from pytest_promptflow.trace import Run
from pytest_promptflow.usage import (
    OUTSIDE_STEPS,
    Figures,
    ModelCall,
    Prices,
    figures_by_step,
    format_cost,
)

METRICS = ("tokens", "input_tokens", "output_tokens", "cost")
INI_BUDGET = "promptflow_budget"
JUDGE = " (judge)"


@dataclass(frozen=True)
class Limit:
    """How far a metric may grow from its golden value: ``+20%`` or ``+500``."""

    metric: str
    amount: float
    relative: bool

    def allows(self, golden: float, now: float) -> bool:
        bound = golden * (1 + self.amount / 100) if self.relative else golden + self.amount
        # The float product is off by a few units in its last place (17,100 tokens +13%
        # gave 19,322.999999999996): a margin relative to the bound lets growth of exactly
        # the limit pass, yet stays far below a token or a billionth of a price unit.
        return now <= bound + 1e-12 * max(1.0, abs(bound))

    def __str__(self) -> str:
        return f"{self.metric} +{self.amount:g}{'%' if self.relative else ''}"


@dataclass(frozen=True)
class BudgetPolicy:
    """Limits for every step, and the steps that declare their own."""

    project: Mapping[str, Limit] = field(default_factory=dict)
    steps: Mapping[str, Mapping[str, Limit]] = field(default_factory=dict)

    def limits_for(self, step: str) -> list[Limit]:
        merged = {**self.project, **self.steps.get(step, {})}
        return [merged[metric] for metric in METRICS if metric in merged]


_LINE = re.compile(r"^\s*(?:(?P<step>[\w.\-]+)\s*:)?\s*(?P<limits>.*?)\s*$")
_LIMIT = re.compile(r"(?P<metric>\w+)\s*\+\s*(?P<amount>\d+(?:\.\d+)?)\s*(?P<percent>%?)\s*,?\s*")


def parse_budget(lines: Sequence[str]) -> BudgetPolicy:
    """The ini key's lines: ``tokens +20%``, ``cost +10%``, ``classify: output_tokens +50``."""
    project: dict[str, Limit] = {}
    steps: dict[str, dict[str, Limit]] = {}
    for line in lines:
        if not line.strip():
            continue
        match = _LINE.match(line)
        assert match is not None
        text, position = match["limits"], 0
        found: list[Limit] = []
        while position < len(text):
            limit = _LIMIT.match(text, position)
            if limit is None or limit["metric"] not in METRICS:
                raise PromptflowError(
                    f"{INI_BUDGET}: cannot read {line.strip()!r}; write one or more of "
                    f"'{' | '.join(METRICS)} +N%' (or +N), optionally after 'step_name:'"
                )
            found.append(Limit(limit["metric"], float(limit["amount"]), bool(limit["percent"])))
            position = limit.end()
        if not found:
            raise PromptflowError(f"{INI_BUDGET}: {line.strip()!r} declares no limit")
        target = steps.setdefault(match["step"], {}) if match["step"] else project
        target.update({limit.metric: limit for limit in found})
    return BudgetPolicy(project, steps)


@dataclass(frozen=True)
class Overrun:
    """A metric of a step that grew beyond its limit."""

    metric: str
    golden: float
    now: float
    limit: str

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "golden": self.golden, "now": self.now, "limit": self.limit}


@dataclass
class StepUsage:
    """One step's figures in one case: golden (None without golden values) and now."""

    step: str
    now: Figures
    golden: Figures | None = None
    cause: str | None = None
    """Why the figures changed, as for drift; None when they did not."""
    over_budget: list[Overrun] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        golden = self.golden
        return golden is not None and _compared(golden) != _compared(self.now)

    @property
    def unmetered(self) -> bool:
        """Some call, golden or now, reported no usage: the figures cannot be judged."""
        golden = self.golden
        return bool(self.now.unmetered_calls or (golden is not None and golden.unmetered_calls))

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "cause": self.cause,
            "golden": self.golden.to_json() if self.golden is not None else None,
            "now": self.now.to_json(),
            "over_budget": [overrun.to_json() for overrun in self.over_budget],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StepUsage:
        golden = data["golden"]
        return cls(
            data["step"],
            Figures.from_json(data["now"]),
            Figures.from_json(golden) if golden is not None else None,
            data["cause"],
            [Overrun(**overrun) for overrun in data["over_budget"]],
        )


def _compared(figures: Figures) -> tuple[int, ...]:
    return (
        figures.model_calls,
        figures.input_tokens,
        figures.output_tokens,
        figures.cost_nanos,
        figures.unmetered_calls,
    )


@dataclass
class CaseUsage:
    test: str
    case: str | None
    steps: list[StepUsage] = field(default_factory=list)

    @property
    def over_budget(self) -> bool:
        return any(step.over_budget for step in self.steps)

    @property
    def changed(self) -> bool:
        return any(step.changed for step in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "case": self.case,
            "over_budget": self.over_budget,
            "steps": [step.to_json() for step in self.steps],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CaseUsage:
        return cls(data["test"], data["case"], [StepUsage.from_json(s) for s in data["steps"]])


def measure_case(
    golden: RecordedRun | None,
    known: Sequence[Interaction],
    run: Run,
    consumed: Sequence[tuple[int | None, ModelCall]],
    prices: Prices,
    policy: BudgetPolicy,
) -> CaseUsage:
    """The case's figures per step, golden and now, judged by the budget policy.

    ``known`` are the interactions the golden step calls' answers are looked up in;
    ``consumed`` the (step call index, model call) pairs this run replayed or recorded.
    """
    calls = run.calls
    now = figures_by_step(((_step_of(index, call, run), call) for index, call in consumed), prices)
    golden_steps = golden.steps if golden is not None else []
    golden_figures: dict[str, Figures] | None = None
    unknown: set[str] = set()
    if golden_steps:
        if [(g.step, g.responses) for g in golden_steps] == [(c.step, c.responses) for c in calls]:
            # The usual replay: the same answers, so the same figures; nothing to look up.
            golden_figures = {step: figures for step, figures in now.items()}
        else:
            found, unknown = _golden_interactions(golden_steps, known)
            golden_figures = figures_by_step(found, prices)
    test = run.test_id or (golden.test if golden else "")
    return _judged(test, now, golden_figures, unknown, golden_steps, run, policy)


def measure_samples(
    golden: Sequence[RecordedRun],
    samples: Sequence[tuple[Sequence[Interaction], Run, Sequence[tuple[int | None, ModelCall]]]],
    prices: Prices,
    policy: BudgetPolicy,
) -> CaseUsage:
    """A case run as several samples: each step's figures now are the mean over the new
    samples, its golden figures the mean over the golden samples, judged by the budget
    policy as one sample is."""
    runs = [run for _, run, _ in samples]
    now_each = [
        figures_by_step(((_step_of(i, call, run), call) for i, call in consumed), prices)
        for _, run, consumed in samples
    ]
    known = [interaction for part, _, _ in samples for interaction in part]
    golden_each: list[dict[str, Figures]] = []
    unknown: set[str] = set()
    for sample in golden:
        found, missing = _golden_interactions(sample.steps, known)
        golden_each.append(figures_by_step(found, prices))
        unknown |= missing
    now = _mean_by_step(now_each)
    golden_figures = _mean_by_step(golden_each) if golden_each else None
    first = runs[0]
    test = first.test_id or (golden[0].test if golden else "")
    golden_steps = golden[0].steps if golden else []
    return _judged(test, now, golden_figures, unknown, golden_steps, first, policy)


def _judged(
    test: str,
    now: Mapping[str, Figures],
    golden_figures: Mapping[str, Figures] | None,
    unknown: set[str],
    golden_steps: Sequence[GoldenStep],
    run: Run,
    policy: BudgetPolicy,
) -> CaseUsage:
    """Each step's figures now beside its golden ones (unless they are ``unknown``), the
    cause of a change, and the budget's verdict on it."""
    usage = CaseUsage(test, run.case_id)
    for step in sorted(now.keys() | (golden_figures or {}).keys()):
        figures = StepUsage(step, now.get(step, Figures()))
        judged = step not in unknown and step != OUTSIDE_STEPS and not step.endswith(JUDGE)
        if golden_figures is not None and judged:
            figures.golden = golden_figures.get(step, Figures())
            if figures.changed:
                figures.cause = _cause(step, golden_steps, run)
                if not figures.unmetered:  # unknown tokens are neither over nor within
                    figures.over_budget = _overruns(figures, policy.limits_for(step))
        usage.steps.append(figures)
    return usage


def _mean_by_step(samples: Sequence[dict[str, Figures]]) -> dict[str, Figures]:
    """Each step's figures summed over the samples, then divided by their number."""
    total: dict[str, Figures] = {}
    for sample in samples:
        for step, figures in sample.items():
            total.setdefault(step, Figures()).add(figures)
    return {step: figures.mean_of(len(samples)) for step, figures in total.items()}


def _step_of(index: int | None, call: ModelCall, run: Run) -> str:
    """The step a model call is counted for: the step call that made it; a judge's calls
    (made after the test, for a judged field) apart, as ``STEP (judge)``."""
    if index is not None and index < len(run.calls):
        return run.calls[index].step
    if call.judge is not None and call.step is not None:
        return call.step + JUDGE
    return OUTSIDE_STEPS


def _golden_interactions(
    golden_steps: Sequence[GoldenStep], known: Sequence[Interaction]
) -> tuple[list[tuple[str, ModelCall]], set[str]]:
    """The (step, model call) pairs of the golden answers, and the steps some of whose
    golden figures are unknown.

    A golden step call keeps the figures of its answers; one written before they were
    kept has them looked up among the recorded answers, which are unknown once
    re-recorded over."""
    by_answer: dict[str, Interaction] | None = None
    found: list[tuple[str, ModelCall]] = []
    unknown: set[str] = set()
    for golden_step in golden_steps:
        if golden_step.usage is not None:
            found += [
                (golden_step.step, ModelCall.of_golden(golden_step.step, usage))
                for usage in golden_step.usage
            ]
            continue
        if by_answer is None:
            by_answer = {response_fingerprint(i.response): i for i in known}
        for answer in golden_step.responses:
            interaction = by_answer.get(answer)
            if interaction is None:
                unknown.add(golden_step.step)
            else:
                found.append((golden_step.step, ModelCall.of(interaction)))
    return found, unknown


def _cause(step: str, golden_steps: Sequence[GoldenStep], run: Run) -> str:
    """Why a step's figures changed, named like drift's causes."""
    references = [g for g in golden_steps if g.step == step]
    calls = run.calls_of(step)
    if len(calls) > len(references):
        return "new call"
    if len(calls) < len(references):
        return "missing call"
    pairs = list(zip(references, calls, strict=True))
    if any(reference.prompts != call.prompts for reference, call in pairs):
        return "prompt"
    if any(reference.inputs != call.inputs for reference, call in pairs):
        return "propagated"
    if any(reference.responses != call.responses for reference, call in pairs):
        return "model"
    return "code"


def _overruns(figures: StepUsage, limits: Sequence[Limit]) -> list[Overrun]:
    golden, now = figures.golden, figures.now
    assert golden is not None
    overruns = []
    for limit in limits:
        if limit.metric == "cost" and (golden.unpriced_calls or now.unpriced_calls):
            continue  # a cost without every price is not comparable
        old, new = golden.value(limit.metric), now.value(limit.metric)
        if (old or not limit.relative) and not limit.allows(old, new):
            overruns.append(Overrun(limit.metric, old, new, str(limit)))
    return overruns


def _figure(metric: str, value: float, currency: str) -> str:
    return format_cost(value, currency) if metric == "cost" else f"{value:,.0f}"


def _growth(old: float, new: float) -> str:
    return f" ({(new - old) / old * 100:+.1f}%)" if old else ""


def budget_message(usage: CaseUsage, accept_command: str, currency: str = "") -> str:
    """The failure message of a case over budget."""
    where = f" in case {usage.case}" if usage.case else ""
    lines = [f"over budget{where} ({usage.test}):"]
    for step in usage.steps:
        if not step.over_budget:
            continue
        lines.append(f"  step {step.step} — {step.cause}")
        for overrun in step.over_budget:
            old = _figure(overrun.metric, overrun.golden, currency)
            new = _figure(overrun.metric, overrun.now, currency)
            lines.append(
                f"    {overrun.metric}: {old} -> {new}{_growth(overrun.golden, overrun.now)}"
                f"  [budget {overrun.limit}; OVER]"
            )
    lines += [
        "If the new figures are right, accept them as golden:",
        f"  {accept_command}",
    ]
    return "\n".join(lines)
