"""The quality gate: requirements on the session's quality rows, from ini
``promptflow_quality``, one per line::

    classify.category >= 90%
    classify.level no worse
    draft.mentions_order no broken
    classify.* >= 80%

``>= N%`` compares each row's rate now with N; ``no worse`` fails on a ``worse`` paired
verdict; ``no broken`` fails when any case broke. ``STEP.*`` covers every expected field
and metric of the step. A requirement with nothing scored in the session (a ``-k`` run,
a shard) is not evaluated and fails nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pytest_promptflow.errors import PromptflowError
from pytest_promptflow.quality.tally import QualityRow

INI_QUALITY = "promptflow_quality"
RequirementKind = Literal["rate", "no worse", "no broken"]

_REQUIREMENT = re.compile(
    r"^\s*(?P<step>[\w.\-]+?)\.(?P<field>\*|[\w\-]+)\s+"
    r"(?:>=\s*(?P<rate>\d+(?:\.\d+)?)\s*%|(?P<no>no\s+(?:worse|broken)))\s*$"
)


@dataclass(frozen=True)
class Requirement:
    step: str
    field: str
    """A field or metric name, or ``*`` for all of the step's."""
    kind: RequirementKind
    threshold: float | None = None
    """For ``>= N%``: N / 100."""

    def covers(self, step: str, name: str) -> bool:
        return self.step == step and self.field in ("*", name)

    @property
    def makes_broken_items_tolerated(self) -> bool:
        """Whether a broken item of a field it covers leaves its own test passing: a rate
        or a verdict over all the items is the policy then, not each item."""
        return self.kind != "no broken"

    def __str__(self) -> str:
        figure = f">= {self.threshold * 100:g}%" if self.threshold is not None else self.kind
        return f"{self.step}.{self.field} {figure}"

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "field": self.field, "kind": self.kind,
                "threshold": self.threshold}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Requirement:
        return cls(data["step"], data["field"], data["kind"], data.get("threshold"))


def parse_requirements(lines: Sequence[str]) -> list[Requirement]:
    """The ini key's lines; one that cannot be read is an error that says how to write it."""
    requirements = []
    for line in lines:
        if not line.strip():
            continue
        match = _REQUIREMENT.match(line)
        if match is None:
            raise PromptflowError(
                f"{INI_QUALITY}: cannot read {line.strip()!r}; write 'STEP.FIELD >= N%', "
                "'STEP.FIELD no worse' or 'STEP.FIELD no broken' (FIELD may be * for all of "
                "the step's expected fields and metrics)"
            )
        if match["rate"] is not None:
            rate = float(match["rate"])
            if rate > 100:
                raise PromptflowError(f"{INI_QUALITY}: {line.strip()!r} asks for more than 100%")
            requirements.append(Requirement(match["step"], match["field"], "rate", rate / 100))
        else:
            kind: RequirementKind = "no worse" if "worse" in match["no"] else "no broken"
            requirements.append(Requirement(match["step"], match["field"], kind))
    return requirements


def check_names(
    requirements: Iterable[Requirement],
    fields_of: Callable[[str], tuple[set[str], set[str]] | None],
) -> None:
    """Refuse a requirement naming a step no ``@step`` declares, or a field its output
    lacks; ``fields_of(step)`` gives a step's output fields and metric names, or None."""
    for requirement in requirements:
        found = fields_of(requirement.step)
        if found is None:
            raise PromptflowError(
                f"{INI_QUALITY}: {requirement} names step {requirement.step!r}, which no "
                "@step declares"
            )
        fields, metrics = found
        if requirement.field != "*" and requirement.field not in fields | metrics:
            known = ", ".join(sorted(fields | metrics)) or "none"
            raise PromptflowError(
                f"{INI_QUALITY}: {requirement} names {requirement.field!r}, which is neither "
                f"an output field nor a metric of step {requirement.step!r} (it has: {known})"
            )


@dataclass(frozen=True)
class GateResult:
    requirement: Requirement
    passed: bool | None
    """None: nothing the requirement covers was scored in this session."""
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "requirement": str(self.requirement),
            "passed": self.passed,
            "detail": self.detail,
            **{"rule": self.requirement.to_json()},
        }


def evaluate(requirements: Iterable[Requirement], rows: Iterable[QualityRow]) -> list[GateResult]:
    """Each requirement against every row it covers."""
    rows = list(rows)
    results = []
    for requirement in requirements:
        covered = [row for row in rows if requirement.covers(row.step, row.name) and row.items]
        if not covered:
            results.append(GateResult(requirement, None, "not evaluated: nothing scored"))
            continue
        failures = [problem for row in covered if (problem := _problem(requirement, row))]
        detail = "; ".join(failures) if failures else _met(requirement, covered)
        results.append(GateResult(requirement, not failures, detail))
    return results


def _where(row: QualityRow) -> str:
    return f"{row.test} {row.step}.{row.name}"


def _problem(requirement: Requirement, row: QualityRow) -> str | None:
    if requirement.kind == "rate":
        rate = row.now_rate()
        assert requirement.threshold is not None
        if rate["rate"] is not None and rate["rate"] < requirement.threshold:
            return (
                f"{_where(row)}: {rate['correct']}/{rate['scored']} = "
                f"{rate['rate'] * 100:.1f}% < {requirement.threshold * 100:g}%"
            )
        return None
    if requirement.kind == "no worse":
        if row.verdict() == "worse":
            p_value = row.p_value()
            return (
                f"{_where(row)}: worse, p={p_value:.3g}; broken {' '.join(row.broken)}"
                f"{'; fixed ' + ' '.join(row.fixed) if row.fixed else ''}"
            )
        return None
    if row.broken:
        return f"{_where(row)}: broken {' '.join(row.broken)}"
    return None


def _met(requirement: Requirement, rows: Sequence[QualityRow]) -> str:
    if requirement.kind == "rate":
        parts = []
        for row in rows:
            rate = row.now_rate()
            parts.append(f"{_where(row)}: {rate['correct']}/{rate['scored']}")
        return "met: " + "; ".join(parts)
    return f"met on {len(rows)} row(s)"
