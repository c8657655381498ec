"""Drift in words: the failure message of a case, and the Markdown and JSON reports."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pytest_promptflow.cassette.format import write_atomically
from pytest_promptflow.cassette.scrub import REDACTED
from pytest_promptflow.drift.classify import CaseDrift, StepDrift
from pytest_promptflow.drift.compare import FieldChange
from pytest_promptflow.errors import PromptflowError
from pytest_promptflow.quality.gate import GateResult
from pytest_promptflow.quality.tally import QualityTally
from pytest_promptflow.report.markdown_escape import (
    code_span,
    escape_text,
    fenced_block,
    table_cell,
    visible,
)
from pytest_promptflow.report.quality import (
    gate_detail,
    gate_status,
    mean_text,
    rate_text,
    short_test,
    verdict_text,
)
from pytest_promptflow.report.summary import (
    PARTIAL,
    PARTIAL_LEGEND,
    UNKNOWN,
    USAGE_OPTION_HINT,
    SessionTally,
    usage_row,
)
from pytest_promptflow.review.pending import step_accept_command

REPORT_SCHEMA_VERSION = 3
"""3: quality rows and the quality gate; 2: usage figures."""
READABLE_SCHEMA_VERSIONS = (2, 3)
"""The report schemas ``merge`` joins (never one with another)."""
REPORT_SUFFIXES = (".md", ".json", ".html")
MAX_VALUE_LENGTH = 120
CONTEXT = 30
"""Characters of a string shown before the first difference."""


def check_report_path(path: Path, option: str = "--promptflow-report") -> None:
    if path.suffix not in REPORT_SUFFIXES:
        raise PromptflowError(
            f"{option}={path}: the suffix chooses the format; "
            f"use one of {', '.join(REPORT_SUFFIXES)}"
        )


def report_paths(paths: Sequence[Path], option: str = "--promptflow-report") -> list[Path]:
    """Every report asked for, each checked before any is written; a path named twice
    is written once."""
    for path in paths:
        check_report_path(path, option)
    return list(dict.fromkeys(paths))


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_VALUE_LENGTH else text[: MAX_VALUE_LENGTH - 1] + "…"


def _pair(old: Any, new: Any) -> tuple[str, str]:
    """Both values, shortened around where they first differ so that the change shows."""
    if not (isinstance(old, str) and isinstance(new, str)) or max(len(old), len(new)) < 80:
        return _short(old), _short(new)
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    start = max(0, start - CONTEXT)
    prefix = "…" if start else ""

    def window(text: str) -> str:
        piece = json.dumps(text[start:], ensure_ascii=False)[1:-1]
        if len(piece) > MAX_VALUE_LENGTH:
            piece = piece[: MAX_VALUE_LENGTH - 1] + "…"
        return f'"{prefix}{piece}"'

    return window(old), window(new)


def score_text(change: FieldChange) -> str:
    """What the rule measured, after its name: ``, score 0.467`` for a similarity or a
    move, ``, negation +"not"`` for differing facts, ``, judge: ...`` for a verdict."""
    if change.score is None:
        return ""
    if isinstance(change.score, str):
        if change.rule.startswith("judged"):
            return f", judge: {change.score}"
        return f", {change.score}"
    return f", score {change.score:g}"


def _change_line(change: FieldChange) -> str:
    old, new = _pair(change.old, change.new)
    if change.kind == "added":
        what = f"added: {new}"
    elif change.kind == "removed":
        what = f"removed (was {old})"
    else:
        what = f"{old} -> {new}"
    score = score_text(change)
    verdict = "tolerated" if change.tolerated else "DRIFT"
    expected = f"; expected: {change.expected}" if change.expected else ""
    return f"{change.path}: {what}  [{change.rule}{score}{expected}; {verdict}]"


def _step_heading(step: StepDrift) -> str:
    occurrence = f" (call {step.occurrence + 1})" if step.occurrence else ""
    return f"step {step.step}{occurrence} — {step.cause}: {step.detail}"


def drift_message(case: CaseDrift, accept_command: str) -> str:
    """The failure message of a case whose outputs drifted beyond the policy."""
    where = f" in case {case.case}" if case.case else ""
    lines = [f"drift from the golden run{where} ({case.test}):"]
    for step in case.steps:
        lines.append(f"  {_step_heading(step)}")
        lines += [f"    {_change_line(change)}" for change in step.changes]
    lines += [
        "If the new outputs are right, accept them as golden:",
        f"  {accept_command}",
    ]
    return "\n".join(lines)


def markdown_report(
    tally: SessionTally,
    accept_command: str,
    quality: QualityTally | None = None,
    quality_gate: Sequence[GateResult] = (),
) -> str:
    """The report as Markdown, ready to post as a pull-request comment. Every value from a
    run (outputs, ids, names, diffs, scores, reasons) is made inert, so that none can
    render as an image, a link, emphasis or HTML (``report/markdown_escape.py``)."""
    drifted = tally.drifted_cases
    verdict = (
        f"**{len(drifted)} case(s) drifted** beyond the policy."
        if drifted
        else "No drift beyond the policy."
    )
    over = tally.over_budget_cases
    if over:
        verdict += f" **{len(over)} case(s) over budget.**"
    lines = [
        "## pytest-promptflow drift report",
        "",
        verdict,
        "",
        "| step | calls | compared | tolerated | drift | causes | contract broken |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for name in sorted(tally.steps):
        step = tally.steps[name]
        causes = ", ".join(f"{count} {cause}" for cause, count in sorted(step.drift.items()))
        lines.append(
            _table_row(
                code_span(name),
                str(step.calls),
                str(step.compared),
                str(step.tolerated),
                str(sum(step.drift.values())),
                escape_text(causes or "—"),
                str(step.contract_broken),
            )
        )
    lines += _markdown_usage(tally)
    lines += _markdown_quality(quality, quality_gate)
    lines += _markdown_samples(tally)
    by_step: dict[str, list[tuple[CaseDrift, StepDrift]]] = {}
    for case in tally.cases:
        for case_step in case.steps:
            by_step.setdefault(case_step.step, []).append((case, case_step))
    for name in sorted(by_step):
        lines += ["", f"### {code_span(name)}", ""]
        prompt_diffs: dict[str, str] = {}
        for case, step_drift in by_step[name]:
            mark = "drift" if step_drift.drifted else "tolerated"
            lines.append(
                f"- {_case_name(case.case, case.test)} ({mark}) — "
                f"{escape_text(step_drift.cause)}: {escape_text(step_drift.detail)}"
            )
            lines += [f"  - {code_span(c.path)}: {_markdown_change(c)}" for c in step_drift.changes]
            if step_drift.drifted or any(c.expected == "broken" for c in step_drift.changes):
                command = step_accept_command(case.test, step_drift.step)
                lines.append(f"  - accept this step: {code_span(command)}")
            prompt_diffs.update(step_drift.prompt_diffs)
        for prompt, diff in sorted(prompt_diffs.items()):
            if diff:
                # An HTML block takes its text raw: the name goes in as HTML-escaped text.
                summary = f"prompt <code>{html.escape(visible(prompt))}</code> diff"
                lines += ["", f"<details><summary>{summary}</summary>", ""]
                lines += [*fenced_block(diff, "diff"), "", "</details>"]
    if drifted or over:
        lines += ["", "Accept the new outputs as golden, once reviewed:", ""]
        lines += fenced_block(accept_command, "bash")
    return "\n".join(lines) + "\n"


def _markdown_quality(
    quality: QualityTally | None, quality_gate: Sequence[GateResult]
) -> list[str]:
    """The quality table: each test, step and field (or metric, with its mean), golden ->
    now, the cases fixed and broken and the paired verdict; then the quality gate's
    requirements, each met, not met or not evaluated."""
    rows = quality.sorted_rows() if quality is not None else []
    lines: list[str] = []
    if rows:
        lines += [
            "",
            "| quality | field | golden | now | fixed | broken | verdict |",
            "|---|---|---:|---:|---|---|---|",
        ]
        for row in rows:
            data = row.to_json()
            mean = data["mean"] or {}
            lines.append(
                _table_row(
                    code_span(short_test(row.test)),
                    code_span(f"{row.step}.{row.name}"),
                    _figures_cell(data["golden"], mean.get("golden")),
                    _figures_cell(data["now"], mean.get("now")),
                    " ".join(code_span(case) for case in data["fixed"]) or "—",
                    " ".join(code_span(case) for case in data["broken"]) or "—",
                    escape_text(
                        verdict_text(
                            data["verdict"],
                            data["p_value"],
                            len(data["fixed"]),
                            len(data["broken"]),
                        )
                    ),
                )
            )
    failed = [result for result in quality_gate if result.passed is False]
    if quality_gate:
        verdict = (
            f"**Quality gate failed:** {len(failed)} requirement(s) not met."
            if failed
            else "Quality gate passed."
        )
        lines += ["", verdict, ""]
        for result in quality_gate:
            status = gate_status(result)
            if result.passed is False:
                status = f"**{status}**"
            lines.append(
                f"- {code_span(str(result.requirement))}: {status} — "
                f"{escape_text(gate_detail(result))}"
            )
    return lines


def _figures_cell(rate: dict[str, Any] | None, mean: dict[str, Any] | None) -> str:
    """A side's rate (``—`` for no golden values), and a metric's mean after it."""
    text = rate_text(rate) if rate is not None else "—"
    if mean_text(mean):
        text += f"; {mean_text(mean)}"
    return escape_text(text)


def _markdown_samples(tally: SessionTally) -> list[str]:
    """Each test case run as several samples: how many passed, and its label."""
    if not tally.samples:
        return []
    lines = ["", "| samples | passed | label | test |", "|---:|---:|---|---|"]
    for case in tally.samples:
        verdict = "" if case.test_passed else " (**below its minimum pass rate**)"
        lines.append(
            _table_row(
                str(case.n),
                str(case.passed),
                escape_text(case.label) + verdict,
                code_span(case.test),
            )
        )
    return lines


def _table_row(*cells: str) -> str:
    return "| " + " | ".join(table_cell(cell) for cell in cells) + " |"


def _case_name(case: str | None, test: str) -> str:
    return f"**{escape_text(case or test)}**"


def _markdown_usage(tally: SessionTally) -> list[str]:
    """Per step: model calls, tokens, cost and latency, golden -> now; the legend of its
    marks; each case over budget."""
    rows = [
        usage_row(name, step, tally.currency, full=True)
        for name, step in tally.shown_usage().items()
    ]
    if not rows:
        return []
    lines = [
        "",
        "| usage | model calls | tokens in | tokens out | cost | first byte | total "
        "| over budget |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [_table_row(code_span(row[0]), *map(escape_text, row[1:])) for row in rows]
    notes = []
    if tally.partial_sums():
        notes.append(f"{code_span(PARTIAL)}: {escape_text(PARTIAL_LEGEND)}.")
    unmetered = tally.unmetered_steps()
    if unmetered:
        notes.append(
            f"Usage unknown for {', '.join(map(code_span, unmetered))}: model calls reported "
            f"no token usage, so their tokens and cost show {UNKNOWN} and their budget is not "
            f"judged. For an OpenAI stream, add {code_span(USAGE_OPTION_HINT)} and record again."
        )
    for note in notes:
        lines += ["", note]
    if tally.over_budget_cases:
        lines.append("")
    for case in tally.over_budget_cases:
        for step in case.steps:
            for overrun in step.over_budget:
                lines.append(
                    f"- {_case_name(case.case, case.test)} {code_span(step.step)} over budget "
                    f"({escape_text(step.cause or '')}): {escape_text(overrun.metric)} "
                    f"{overrun.golden:g} → {overrun.now:g} (budget {escape_text(overrun.limit)})"
                )
    return lines


def _markdown_change(change: FieldChange) -> str:
    old, new = _pair(change.old, change.new)
    rule = escape_text(change.rule + score_text(change))
    if change.expected:
        rule += f"; expected: {escape_text(change.expected)}"
    verdict = "tolerated" if change.tolerated else "**drift**"
    if change.kind == "added":
        return f"added {code_span(new)} ({rule}; {verdict})"
    if change.kind == "removed":
        return f"removed, was {code_span(old)} ({rule}; {verdict})"
    return f"{code_span(old)} → {code_span(new)} ({rule}; {verdict})"


def json_report(
    tally: SessionTally,
    quality: QualityTally | None = None,
    quality_gate: Sequence[GateResult] = (),
) -> str:
    document = {
        "schema": REPORT_SCHEMA_VERSION,
        "drifted_cases": len(tally.drifted_cases),
        "over_budget_cases": len(tally.over_budget_cases),
        **tally.to_json(),
        "quality": quality.to_json() if quality is not None else [],
        "quality_gate": [result.to_json() for result in quality_gate],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render_report(
    suffix: str,
    tally: SessionTally,
    accept_command: str,
    quality: QualityTally | None = None,
    quality_gate: Sequence[GateResult] = (),
) -> str:
    if suffix == ".md":
        return markdown_report(tally, accept_command, quality, quality_gate)
    if suffix == ".html":
        from pytest_promptflow.report.html import html_report

        return html_report(tally, accept_command, quality, quality_gate)
    return json_report(tally, quality, quality_gate)


def write_reports(
    paths: Sequence[Path],
    tally: SessionTally,
    accept_command: str,
    scrub: Callable[..., str] | None = None,
    quality: QualityTally | None = None,
    quality_gate: Sequence[GateResult] = (),
) -> None:
    """The one writer of reports, for the session and for merged shards alike: each path
    in the format its suffix names; ``scrub(text, replacement=...)`` redacts the session's
    secrets from the text."""
    for path in report_paths(paths):
        text = render_report(path.suffix, tally, accept_command, quality, quality_gate)
        if scrub is not None:
            marker = html.escape(REDACTED) if path.suffix == ".html" else REDACTED
            text = scrub(text, replacement=marker)
        write_atomically(path, text)
