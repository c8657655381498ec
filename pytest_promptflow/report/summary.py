"""Per-step tallies of a session and the terminal summary built from them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pytest_promptflow.trace import StepCall


@dataclass
class StepTally:
    calls: int = 0
    contract_broken: int = 0


@dataclass
class SessionTally:
    """Counts per step over a session; mergeable across pytest-xdist workers."""

    steps: dict[str, StepTally] = field(default_factory=dict)

    def add_calls(self, calls: Iterable[StepCall]) -> None:
        for call in calls:
            tally = self.steps.setdefault(call.step, StepTally())
            tally.calls += 1
            tally.contract_broken += call.contract_broken

    def to_json(self) -> dict[str, dict[str, int]]:
        return {
            name: {"calls": tally.calls, "contract_broken": tally.contract_broken}
            for name, tally in self.steps.items()
        }

    def merge_json(self, data: Mapping[str, Mapping[str, int]]) -> None:
        for name, counts in data.items():
            tally = self.steps.setdefault(name, StepTally())
            tally.calls += counts["calls"]
            tally.contract_broken += counts["contract_broken"]

    def summary_lines(self) -> list[str]:
        if not self.steps:
            return []
        width = max(len(name) for name in self.steps)
        lines = [f"{'step':<{width}}  calls  contract broken"]
        for name in sorted(self.steps):
            tally = self.steps[name]
            lines.append(f"{name:<{width}}  {tally.calls:>5}  {tally.contract_broken:>15}")
        return lines
