"""What a session found, per step and per case; mergeable across pytest-xdist workers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_promptflow.budget import CaseUsage
from pytest_promptflow.drift.classify import CAUSES, CaseDrift
from pytest_promptflow.trace import StepCall
from pytest_promptflow.usage import Figures, format_cost

UNKNOWN = "—"
"""A figure no call reported: tokens of unmetered calls, the latency of untimed ones."""
PARTIAL = "*"
"""After a sum that leaves some calls out: unmetered (tokens, cost) or unpriced (cost)."""
NO_PRICE = "no price"
USAGE_OPTION_HINT = 'stream_options={"include_usage": True}'
PARTIAL_LEGEND = (
    "a sum over part of the calls: the others reported no usage (tokens and cost), "
    "or their model has no declared price (cost)"
)


@dataclass
class StepTally:
    calls: int = 0
    contract_broken: int = 0
    compared: int = 0
    tolerated: int = 0
    drift: dict[str, int] = field(default_factory=dict)
    """Drifted step calls by cause."""

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "contract_broken": self.contract_broken,
            "compared": self.compared,
            "tolerated": self.tolerated,
            "drift": dict(self.drift),
        }

    def merge(self, data: Mapping[str, Any]) -> None:
        self.calls += data["calls"]
        self.contract_broken += data["contract_broken"]
        self.compared += data["compared"]
        self.tolerated += data["tolerated"]
        for cause, count in data["drift"].items():
            self.drift[cause] = self.drift.get(cause, 0) + count


@dataclass
class StepUsageTally:
    """A step's figures summed over the session's cases."""

    now: Figures = field(default_factory=Figures)
    golden: Figures = field(default_factory=Figures)
    """Summed over the cases that have golden values."""
    golden_cases: int = 0
    over_budget: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "golden": self.golden.to_json(),
            "now": self.now.to_json(),
            "golden_cases": self.golden_cases,
            "over_budget": self.over_budget,
        }

    def merge(self, data: Mapping[str, Any]) -> None:
        self.now.add(Figures.from_json(data["now"]))
        self.golden.add(Figures.from_json(data["golden"]))
        self.golden_cases += data["golden_cases"]
        self.over_budget += data["over_budget"]


@dataclass(frozen=True)
class CaseSamples:
    """How many of the samples of one test case passed (their assertions, step contracts
    and checks), and the share of them it needed."""

    test: str
    case: str | None
    n: int
    passed: int
    required: float = 1.0
    """The test's minimum pass rate."""

    @property
    def rate(self) -> float:
        return self.passed / self.n

    @property
    def label(self) -> str:
        """``stable`` (every sample passed), ``flaky k/N`` (some did) or ``failing`` (none)."""
        if self.passed == self.n:
            return "stable"
        return f"flaky {self.passed}/{self.n}" if self.passed else "failing"

    @property
    def test_passed(self) -> bool:
        return self.rate >= self.required

    def to_json(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "case": self.case,
            "n": self.n,
            "passed": self.passed,
            "label": self.label,
            "min_pass_rate": self.required,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CaseSamples:
        return cls(data["test"], data["case"], data["n"], data["passed"],
                   data.get("min_pass_rate", 1.0))  # fmt: skip


@dataclass
class SessionTally:
    steps: dict[str, StepTally] = field(default_factory=dict)
    cases: list[CaseDrift] = field(default_factory=list)
    """Every case with a change, tolerated or not."""
    usage: dict[str, StepUsageTally] = field(default_factory=dict)
    usage_cases: list[CaseUsage] = field(default_factory=list)
    """Every case whose figures changed from the golden ones."""
    currency: str = ""
    samples: list[CaseSamples] = field(default_factory=list)
    """Every test case run as several samples."""

    def _step(self, name: str) -> StepTally:
        return self.steps.setdefault(name, StepTally())

    def add_calls(self, calls: Iterable[StepCall]) -> None:
        for call in calls:
            tally = self._step(call.step)
            tally.calls += 1
            tally.contract_broken += call.contract_broken

    def add_case(self, verdict: CaseDrift) -> None:
        for step in verdict.compared:
            self._step(step).compared += 1
        for step_drift in verdict.steps:
            tally = self._step(step_drift.step)
            tally.tolerated += len(step_drift.tolerated)
            if step_drift.drifted:
                tally.drift[step_drift.cause] = tally.drift.get(step_drift.cause, 0) + 1
        if verdict.steps:
            self.cases.append(verdict)

    def add_usage(self, usage: CaseUsage) -> None:
        for step in usage.steps:
            self._step(step.step)
            tally = self.usage.setdefault(step.step, StepUsageTally())
            tally.now.add(step.now)
            if step.golden is not None:
                tally.golden.add(step.golden)
                tally.golden_cases += 1
            tally.over_budget += bool(step.over_budget)
        if usage.changed:
            self.usage_cases.append(usage)

    @property
    def drifted_cases(self) -> list[CaseDrift]:
        return [case for case in self.cases if case.drifted]

    @property
    def over_budget_cases(self) -> list[CaseUsage]:
        return [case for case in self.usage_cases if case.over_budget]

    def to_json(self) -> dict[str, Any]:
        steps = {name: tally.to_json() for name, tally in sorted(self.steps.items())}
        for name, usage in self.usage.items():
            steps[name]["usage"] = usage.to_json()
        return {
            "currency": self.currency,
            "steps": steps,
            "cases": [case.to_json() for case in sorted(self.cases, key=_case_order)],
            "usage_cases": [case.to_json() for case in sorted(self.usage_cases, key=_case_order)],
            # Only sessions that ran samples have them: a one-sample report is as before.
            **(
                {"samples": [case.to_json() for case in sorted(self.samples, key=_case_order)]}
                if self.samples
                else {}
            ),
        }

    def merge_json(self, data: Mapping[str, Any]) -> None:
        for name, counts in data["steps"].items():
            self._step(name).merge(counts)
            if "usage" in counts:
                self.usage.setdefault(name, StepUsageTally()).merge(counts["usage"])
        self.cases += [CaseDrift.from_json(case) for case in data["cases"]]
        self.cases.sort(key=lambda case: (case.test, case.case or ""))
        self.usage_cases += [CaseUsage.from_json(case) for case in data.get("usage_cases", [])]
        self.usage_cases.sort(key=lambda case: (case.test, case.case or ""))
        self.currency = self.currency or data.get("currency", "")
        self.samples += [CaseSamples.from_json(case) for case in data.get("samples", [])]
        self.samples.sort(key=_case_order)

    def summary_lines(self, accept_command: str | None, full: bool = False) -> list[str]:
        """The per-step table, and the command to accept drift unless ``accept_command``
        is None (the session is accepting already)."""
        if not self.steps:
            return []
        width = max(len("step"), *(len(name) for name in self.steps))
        lines = [
            f"{'step':<{width}}  calls  compared  tolerated  drift  contract broken",
        ]
        for name in sorted(self.steps):
            tally = self.steps[name]
            drift = sum(tally.drift.values())
            causes = ", ".join(f"{tally.drift[c]} {c}" for c in CAUSES if tally.drift.get(c))
            lines.append(
                f"{name:<{width}}  {tally.calls:>5}  {tally.compared:>8}  {tally.tolerated:>9}  "
                f"{drift:>5}  {tally.contract_broken:>15}" + (f"  ({causes})" if causes else "")
            )
        lines += self.usage_lines(full)
        lines += self.samples_lines()
        drifted = self.drifted_cases
        over = self.over_budget_cases
        if (drifted or over) and accept_command is not None:
            what = []
            if drifted:
                what.append(f"{len(drifted)} case(s) drifted beyond the policy")
            if over:
                what.append(f"{len(over)} case(s) went over budget")
            figures = " and figures" if over else ""
            lines += [
                "",
                f"{' and '.join(what)}. Once reviewed, accept the current outputs{figures} "
                "as golden with:",
                f"  {accept_command}",
            ]
        return lines

    def shown_usage(self) -> dict[str, StepUsageTally]:
        """The steps of the usage table: those that made model calls, by name."""
        return {name: tally for name, tally in sorted(self.usage.items()) if tally.now.model_calls}

    def unmetered_steps(self) -> list[str]:
        """The steps of the usage table some of whose calls, golden or now, reported no usage."""
        return [
            name
            for name, tally in self.shown_usage().items()
            if tally.now.unmetered_calls or (tally.golden_cases and tally.golden.unmetered_calls)
        ]

    def partial_sums(self) -> bool:
        """Whether the usage table shows a sum marked as leaving some calls out."""
        return any(
            _partial(figures)
            for tally in self.shown_usage().values()
            for figures in (tally.now, tally.golden if tally.golden_cases else tally.now)
        )

    def samples_lines(self) -> list[str]:
        """How the test cases run as several samples fared: each one not stable, with
        whether it passed its minimum pass rate (``passed, flaky 4/5``)."""
        if not self.samples:
            return []
        labels = [case.label.split(" ")[0] for case in self.samples]
        counts = ", ".join(
            f"{labels.count(label)} {label}"
            for label in ("stable", "flaky", "failing")
            if label in labels
        )
        lines = ["", f"samples: {len(self.samples)} test case(s) run as several samples: {counts}"]
        for case in sorted(self.samples, key=_case_order):
            if case.label != "stable":
                verdict = "passed" if case.test_passed else "failed"
                lines.append(
                    f"  {case.test}: {verdict}, {case.label} (minimum {case.required:.0%})"
                )
        return lines

    def usage_lines(self, full: bool = False) -> list[str]:
        """Per step: model calls, tokens in/out, cost and latency, golden -> now; what a
        ``*`` means, and how to get the figures no call reported."""
        steps = self.shown_usage()
        if not steps:
            return []
        rows = [usage_row(name, tally, self.currency, full) for name, tally in steps.items()]
        header = (
            ["usage", "model calls", "tokens in", "tokens out", "cost", "first byte", "total",
             "over budget"]
            if full
            else ["usage", "calls", "tokens in/out", "cost", "latency"]
        )  # fmt: skip
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        lines = [""]
        for row in [header, *rows]:
            cells = [row[0].ljust(widths[0])] + [
                c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
            ]
            lines.append("  ".join(cells).rstrip())
        if self.partial_sums():
            lines.append(f"{PARTIAL} {PARTIAL_LEGEND}")
        unmetered = self.unmetered_steps()
        if unmetered:
            lines += [
                f"usage unknown for {', '.join(unmetered)}: model calls reported no token "
                f"usage, so their tokens and cost show {UNKNOWN} and their budget is not judged.",
                f"  For an OpenAI stream, add {USAGE_OPTION_HINT} and record again.",
            ]
        return lines


def _case_order(case: CaseDrift | CaseUsage | CaseSamples) -> tuple[str, str]:
    return case.test, case.case or ""


def _change(old: str, new: str) -> str:
    return new if old == new else f"{old} -> {new}"


def _partial(figures: Figures) -> bool:
    calls = figures.model_calls
    return 0 < figures.unmetered_calls < calls or 0 < figures.unpriced_calls < calls


def tokens_text(figures: Figures, metric: str) -> str:
    """``input_tokens``, ``output_tokens`` or ``tokens``: unknown (``—``) when no call
    reported usage, the sum of those that did marked ``*`` when some did not."""
    if figures.tokens_unknown:
        return UNKNOWN
    text = f"{getattr(figures, metric):,}"
    return text + PARTIAL if figures.unmetered_calls else text


def cost_text(figures: Figures, currency: str) -> str:
    """The cost: unknown (``—``) when no call reported usage, ``no price`` when no call
    is priced, the priced calls' sum marked ``*`` when some calls are not in it."""
    if figures.model_calls and figures.unpriced_calls == figures.model_calls:
        return UNKNOWN if figures.tokens_unknown else NO_PRICE
    return format_cost(figures.cost, currency) + (PARTIAL if figures.unpriced_calls else "")


def _tokens_in_out(figures: Figures) -> str:
    if figures.tokens_unknown:
        return UNKNOWN
    text = f"{figures.input_tokens:,}/{figures.output_tokens:,}"
    return text + PARTIAL if figures.unmetered_calls else text


def usage_row(name: str, tally: StepUsageTally, currency: str, full: bool) -> list[str]:
    """One step's row; golden -> now where the golden figures differ."""
    now, golden = tally.now, tally.golden if tally.golden_cases else tally.now

    def mean_ms(total: int, figures: Figures) -> str:
        return f"{total / figures.timed_calls:.0f} ms" if figures.timed_calls else UNKNOWN

    if full:
        return [
            name,
            _change(str(golden.model_calls), str(now.model_calls)),
            _change(tokens_text(golden, "input_tokens"), tokens_text(now, "input_tokens")),
            _change(tokens_text(golden, "output_tokens"), tokens_text(now, "output_tokens")),
            _change(cost_text(golden, currency), cost_text(now, currency)),
            _change(mean_ms(golden.first_byte_ms, golden), mean_ms(now.first_byte_ms, now)),
            _change(mean_ms(golden.total_ms, golden), mean_ms(now.total_ms, now)),
            str(tally.over_budget),
        ]
    tokens = _change(_tokens_in_out(golden), _tokens_in_out(now))
    # A growth between sums that leave calls out would measure nothing.
    metered = not (golden.unmetered_calls or now.unmetered_calls)
    growth = (
        f" ({(now.tokens - golden.tokens) / golden.tokens * 100:+.0f}%)"
        if metered and golden.tokens and now.tokens != golden.tokens
        else ""
    )
    over = f"  {tally.over_budget} over budget" if tally.over_budget else ""
    return [
        name,
        str(now.model_calls),
        tokens + growth,
        _change(cost_text(golden, currency), cost_text(now, currency)),
        mean_ms(now.total_ms, now) + over,
    ]
