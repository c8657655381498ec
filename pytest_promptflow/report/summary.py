"""What a session found, per step and per case; mergeable across pytest-xdist workers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_promptflow.drift.classify import CAUSES, CaseDrift
from pytest_promptflow.trace import StepCall


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
class SessionTally:
    steps: dict[str, StepTally] = field(default_factory=dict)
    cases: list[CaseDrift] = field(default_factory=list)
    """Every case with a change, tolerated or not."""

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

    @property
    def drifted_cases(self) -> list[CaseDrift]:
        return [case for case in self.cases if case.drifted]

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": {name: tally.to_json() for name, tally in sorted(self.steps.items())},
            "cases": [case.to_json() for case in self.cases],
        }

    def merge_json(self, data: Mapping[str, Any]) -> None:
        for name, counts in data["steps"].items():
            self._step(name).merge(counts)
        self.cases += [CaseDrift.from_json(case) for case in data["cases"]]
        self.cases.sort(key=lambda case: (case.test, case.case or ""))

    def summary_lines(self, accept_command: str) -> list[str]:
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
        drifted = self.drifted_cases
        if drifted:
            lines += [
                "",
                f"{len(drifted)} case(s) drifted beyond the policy. Once reviewed, accept the "
                "current outputs as golden with:",
                f"  {accept_command}",
            ]
        return lines
