"""The static HTML report: one file, no network, golden and now side by side."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import jinja2
from markupsafe import Markup, escape

from pytest_promptflow.budget import CaseUsage, StepUsage
from pytest_promptflow.drift.classify import CAUSES, CaseDrift, StepDrift
from pytest_promptflow.report.summary import (
    PARTIAL_LEGEND,
    SessionTally,
    cost_text,
    tokens_text,
)
from pytest_promptflow.usage import Figures

_WORDS = re.compile(r"\s+|\w+|[^\w\s]")


def word_diff(old: str, new: str) -> tuple[Markup, Markup]:
    """Both texts, the words only in the golden one in <del>, only in the new one in <ins>."""
    before, after = _WORDS.findall(old), _WORDS.findall(new)
    left: list[str] = []
    right: list[str] = []
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        removed, added = "".join(before[i1:i2]), "".join(after[j1:j2])
        if tag == "equal":
            left.append(str(escape(removed)))
            right.append(str(escape(added)))
            continue
        if removed:
            left.append(f"<del>{escape(removed)}</del>")
        if added:
            right.append(f"<ins>{escape(added)}</ins>")
    return Markup("".join(left)), Markup("".join(right))


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1)


def value_pair(kind: str, old: Any, new: Any) -> tuple[Markup, Markup]:
    if kind == "added":
        return Markup(""), Markup(f"<ins>{escape(_shown(new))}</ins>")
    if kind == "removed":
        return Markup(f"<del>{escape(_shown(old))}</del>"), Markup("")
    return word_diff(_shown(old), _shown(new))


def score_text(score: Any) -> str:
    """A number, or the facts or the judge's reason that stand for one."""
    if score is None:
        return ""
    if isinstance(score, float | int) and not isinstance(score, bool):
        return f"{score:.3g}"
    return str(score)


@dataclass
class Row:
    """One step of one case: its changes and its figures."""

    case: str
    test: str
    step: str
    cause: str
    detail: str = ""
    drifted: bool = False
    over_budget: bool = False
    drift: StepDrift | None = None
    usage: StepUsage | None = None
    prompt_diffs: dict[str, str] = field(default_factory=dict)


def _rows(cases: list[CaseDrift], usage_cases: list[CaseUsage]) -> list[Row]:
    rows: dict[tuple[str, str, str], Row] = {}
    for case in cases:
        for drift in case.steps:
            key = (case.test, drift.step, str(drift.occurrence))
            rows[key] = Row(
                case.case or case.test,
                case.test,
                drift.step,
                drift.cause,
                drift.detail,
                drift.drifted,
                drift=drift,
                prompt_diffs=drift.prompt_diffs,
            )
    for usage in usage_cases:
        for step in usage.steps:
            if not step.changed:
                continue
            key = (usage.test, step.step, "0")
            row = rows.get(key)
            if row is None:
                row = rows[key] = Row(
                    usage.case or usage.test, usage.test, step.step, step.cause or ""
                )
            row.usage = step
            row.over_budget = bool(step.over_budget)
    return sorted(rows.values(), key=lambda r: (r.test, r.step))


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("pytest_promptflow.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["score"] = score_text
    environment.globals["value_pair"] = value_pair
    return environment


def html_report(tally: SessionTally, accept_command: str) -> str:
    rows = _rows(tally.cases, tally.usage_cases)

    def cost(figures: Figures) -> str:
        return cost_text(figures, tally.currency)

    def latency(figures: Figures) -> str:
        return f"{figures.total_ms / figures.timed_calls:.0f} ms" if figures.timed_calls else "—"

    template = _environment().get_template("report.html.j2")
    return template.render(
        tally=tally,
        rows=rows,
        steps=sorted(tally.steps),
        causes=[cause for cause in CAUSES if any(row.cause == cause for row in rows)],
        drifted=len(tally.drifted_cases),
        over_budget=len(tally.over_budget_cases),
        accept_command=accept_command,
        cost=cost,
        tokens=tokens_text,
        partial_legend=PARTIAL_LEGEND,
        latency=latency,
    )
