"""The static HTML report: one file, no network, golden and now side by side.

At the size of a real suite one prompt edit drifts hundreds of cases the same way, so
the page is laid out to be read once per kind of change, not once per case:

- each changed prompt's template diff once, at the top, with an anchor per prompt and
  version pair that every case it changed links to;
- the cases of a step whose changes have the same shape (fields, kinds, rules,
  verdicts, cause, prompt edit, budget overruns) in one group: one case shown in full,
  the others listed compactly, each with its own anchor and accept command, their
  values drawn from an inline JSON block only when a reviewer opens them.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import jinja2
from markupsafe import Markup, escape

from pytest_promptflow.budget import CaseUsage, Overrun, StepUsage
from pytest_promptflow.drift.classify import CAUSES, CaseDrift, StepDrift
from pytest_promptflow.drift.compare import FieldChange
from pytest_promptflow.quality.gate import GateResult
from pytest_promptflow.quality.tally import QualityTally
from pytest_promptflow.report.quality import (
    gate_detail,
    gate_status,
    mean_text,
    rate_text,
    short_test,
    verdict_text,
)
from pytest_promptflow.report.summary import PARTIAL_LEGEND, SessionTally, cost_text, tokens_text
from pytest_promptflow.review.pending import step_accept_command
from pytest_promptflow.usage import Figures

ACCEPT_OPTION = "--promptflow-accept"
_WORDS = re.compile(r"\s+|\w+|[^\w\s]")
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_.-]+")
_JSON_IN_SCRIPT = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def word_diff(old: str, new: str) -> tuple[Markup, Markup]:
    """Both texts, the words only in the golden one in <del>, only in the new one in <ins>.

    The report's script marks a listed case's words the same way (a port of this
    SequenceMatcher's matching), so that a case opened in a group reads like the one
    shown in full.
    """
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


def shown(value: Any) -> str:
    """A value as the report shows it: a string as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1)


def value_pair(kind: str, old: Any, new: Any) -> tuple[Markup, Markup]:
    if kind == "added":
        return Markup(""), Markup(f"<ins>{escape(shown(new))}</ins>")
    if kind == "removed":
        return Markup(f"<del>{escape(shown(old))}</del>"), Markup("")
    return word_diff(shown(old), shown(new))


def score_text(score: Any) -> str:
    """A number, or the facts or the judge's reason that stand for one."""
    if score is None:
        return ""
    if isinstance(score, float | int) and not isinstance(score, bool):
        return f"{score:.3g}"
    return str(score)


def json_for_script(value: Any) -> Markup:
    """``value`` as JSON that can sit inside a <script> element: no ``<``, ``>`` or ``&``
    (so neither ``</script>`` nor ``<!--`` can end or change the element), and the line
    separators JavaScript once refused in strings escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for character, escaped in _JSON_IN_SCRIPT:  # one pass each: far faster than translate
        text = text.replace(character, escaped)
    return Markup(text)


def accept_command_for(test: str) -> str:
    """The command that accepts one test's outputs, its node id quoted for the shell."""
    return shlex.join(["pytest", test, ACCEPT_OPTION])


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:10]


def _slug(text: str, limit: int = 40) -> str:
    return _UNSAFE_ID.sub("-", text).strip("-")[:limit].rstrip("-")


def case_anchor(test: str, step: str, occurrence: int = 0) -> str:
    """The id of one case's section for one step call, the same in every report of the
    same test: readable from the step and the test's case id, unique by a hash of both."""
    case = test[test.find("[") + 1 : -1] if test.endswith("]") and "[" in test else test
    readable = "-".join(part for part in (_slug(step), _slug(case, 24)) if part)
    return f"case-{readable}-{_digest(test, step, str(occurrence))}"


@dataclass
class PromptChange:
    """One prompt's edit between its golden version and the current one."""

    name: str
    golden: str | None
    now: str | None
    diff: str
    anchor: str
    case_steps: int = 0
    """How many case and step sections it changed."""
    groups: dict[str, list[Group]] = field(default_factory=dict)
    """By step, the groups of the cases it changed."""

    @property
    def versions(self) -> str:
        return f"{self.golden or '(none)'} → {self.now or '(none)'}"

    @property
    def lines(self) -> list[tuple[str, str]]:
        """The diff's lines, each with the class that styles it."""
        styled = []
        for line in self.diff.splitlines():
            if line.startswith(("+++", "---")):
                kind = "file"
            elif line.startswith("@@"):
                kind = "hunk"
            elif line.startswith("+"):
                kind = "add"
            elif line.startswith("-"):
                kind = "remove"
            else:
                kind = ""
            styled.append((kind, line))
        return styled


def prompt_versions(detail: str, name: str) -> tuple[str | None, str | None] | None:
    """The golden and current versions of prompt ``name`` in a step's detail (``classify
    changed 1a2b… -> 3c4d…``, ``… removed (was 1a2b…)``, ``… added (3c4d…)``)."""
    quoted = re.escape(name)
    changed = re.search(rf"(?:^|; ){quoted} changed (\w+) -> (\w+)(?=;|$)", detail)
    if changed:
        return changed[1], changed[2]
    removed = re.search(rf"(?:^|; ){quoted} removed \(was (\w+)\)", detail)
    if removed:
        return removed[1], None
    added = re.search(rf"(?:^|; ){quoted} added \((\w+)\)", detail)
    if added:
        return None, added[1]
    return None


@dataclass
class Row:
    """One step call of one case: its changes and its figures."""

    case: str
    test: str
    step: str
    cause: str
    occurrence: int = 0
    detail: str = ""
    drifted: bool = False
    over_budget: bool = False
    drift: StepDrift | None = None
    usage: StepUsage | None = None
    prompts: list[PromptChange] = field(default_factory=list)
    """The prompt edits it shows."""
    member: int = -1
    """Where a listed case's values are in the report's JSON block."""

    @property
    def label(self) -> str:
        """The case, and which call of the step when the step was called more than once."""
        return f"{self.case} (call {self.occurrence + 1})" if self.occurrence else self.case

    @property
    def anchor(self) -> str:
        return case_anchor(self.test, self.step, self.occurrence)

    @property
    def accept_command(self) -> str:
        return accept_command_for(self.test)

    @property
    def step_accept_command(self) -> str:
        """The command that accepts this step of this case alone, from the pending
        changes, without running the tests."""
        return step_accept_command(self.test, self.step)

    @property
    def changes(self) -> list[FieldChange]:
        return self.drift.changes if self.drift is not None else []

    @property
    def overruns(self) -> list[Overrun]:
        return self.usage.over_budget if self.usage is not None else []

    @property
    def failing(self) -> bool:
        return self.drifted or self.over_budget

    def shape(self) -> tuple[Any, ...]:
        """What a case must share with another to be read as one of a group: the step and
        cause, each field's path, kind, rule and verdict, the prompt edit, the overruns."""
        return (
            self.step,
            self.cause,
            self.drifted,
            tuple((c.path, c.kind, c.rule, c.tolerated, c.expected) for c in self.changes),
            tuple(prompt.anchor for prompt in self.prompts),
            tuple(sorted(overrun.metric for overrun in self.overruns)),
        )


def case_rows(cases: list[CaseDrift], usage_cases: list[CaseUsage]) -> list[Row]:
    """A row per step call that changed its output or its figures, by step then test."""
    rows: dict[tuple[str, str, int], Row] = {}
    for case in cases:
        for drift in case.steps:
            rows[(case.test, drift.step, drift.occurrence)] = Row(
                case.case or case.test,
                case.test,
                drift.step,
                drift.cause,
                drift.occurrence,
                drift.detail,
                drift.drifted,
                drift=drift,
            )
    for usage in usage_cases:
        for step in usage.steps:
            if not step.changed:
                continue
            key = (usage.test, step.step, 0)
            row = rows.get(key)
            if row is None:
                row = rows[key] = Row(
                    usage.case or usage.test, usage.test, step.step, step.cause or ""
                )
            row.usage = step
            row.over_budget = bool(step.over_budget)
    return sorted(rows.values(), key=lambda r: (r.step, r.test, r.occurrence))


def prompt_changes(rows: Iterable[Row]) -> list[PromptChange]:
    """Every prompt edit the rows show, once each; each row is given the edits it shows."""
    changes: dict[tuple[str, ...], PromptChange] = {}
    for row in rows:
        if row.drift is None:
            continue
        for name, diff in sorted(row.drift.prompt_diffs.items()):
            versions = prompt_versions(row.detail, name)
            if versions is not None:
                golden, now = versions
                key: tuple[str, ...] = (name, golden or "", now or "")
                anchor = f"prompt-{_slug(name)}-{golden or 'none'}-{now or 'none'}"
            else:
                golden = now = None
                key = (name, diff)
                anchor = f"prompt-{_slug(name)}-{_digest(name, diff)}"
            change = changes.get(key)
            if change is None:
                change = changes[key] = PromptChange(name, golden, now, diff, anchor)
            elif len(diff) > len(change.diff):
                change.diff = diff  # a run that recorded the template's source says more
            change.case_steps += 1
            row.prompts.append(change)
    return sorted(changes.values(), key=lambda change: (change.name, change.anchor))


@dataclass
class Group:
    """The cases of a step whose changes have the same shape."""

    rows: list[Row]
    number: int = 0
    """Its place among the groups, which the report's script looks its fields up by."""

    @property
    def representative(self) -> Row:
        return self.rows[0]

    @property
    def members(self) -> list[Row]:
        return self.rows[1:]

    @property
    def size(self) -> int:
        return len(self.rows)

    @cached_property
    def several_tests(self) -> bool:
        """Whether its cases come from more than one test function, so that a listed
        case's id alone would not say which test it is."""
        return len({row.test.partition("[")[0] for row in self.rows}) > 1

    @property
    def anchor(self) -> str:
        first = self.representative
        return f"group-{_slug(first.step)}-{_digest(repr(first.shape()))}"


def group_rows(rows: Iterable[Row]) -> list[Group]:
    """Rows grouped by shape: by step, failing groups first, then the largest; each
    prompt edit the rows show learns the groups that show it."""
    by_shape: dict[tuple[Any, ...], Group] = {}
    for row in rows:
        by_shape.setdefault(row.shape(), Group([])).rows.append(row)
    groups = sorted(
        by_shape.values(),
        key=lambda g: (g.representative.step, not g.representative.failing, -len(g.rows)),
    )
    for number, group in enumerate(groups):
        group.number = number
        for prompt in group.representative.prompts:
            prompt.groups.setdefault(group.representative.step, []).append(group)
    return groups


@dataclass
class Layout:
    """The report's parts: the changed step calls, the prompt edits, the groups."""

    rows: list[Row]
    prompts: list[PromptChange]
    groups: list[Group]


def layout(cases: list[CaseDrift], usage_cases: list[CaseUsage]) -> Layout:
    rows = case_rows(cases, usage_cases)
    prompts = prompt_changes(rows)
    return Layout(rows, prompts, group_rows(rows))


def has_prices(tally: SessionTally) -> bool:
    """Whether the session priced anything: a currency, or a call whose cost is known."""
    if tally.currency:
        return True
    figures = [f for step in tally.usage.values() for f in (step.now, step.golden)]
    return any(f.model_calls > f.unpriced_calls for f in figures)


@dataclass(frozen=True)
class FigureFormat:
    """How figures read in this report: cost only when the session priced something."""

    currency: str
    show_cost: bool

    def cost(self, figures: Figures) -> str:
        return cost_text(figures, self.currency)

    @staticmethod
    def tokens(figures: Figures, which: str) -> str:
        return tokens_text(figures, which)

    @staticmethod
    def latency(figures: Figures) -> str:
        return f"{figures.total_ms / figures.timed_calls:.0f} ms" if figures.timed_calls else "—"

    def cells(self, figures: Figures) -> list[str]:
        """A usage row: model calls, tokens in, tokens out, (cost,) latency."""
        cells = [
            str(figures.model_calls),
            self.tokens(figures, "input_tokens"),
            self.tokens(figures, "output_tokens"),
        ]
        if self.show_cost:
            cells.append(self.cost(figures))
        cells.append(self.latency(figures))
        return cells


def overrun_text(overrun: Overrun) -> str:
    return (
        f"{overrun.metric}: {score_text(overrun.golden)} → {score_text(overrun.now)} "
        f"(budget {overrun.limit})"
    )


def common_ends(old: str, new: str) -> tuple[str, str, str, str]:
    """``old`` and ``new`` as their common start, what differs of each, their common end:
    what the listed cases' values are stored as, so that what did not change is stored
    once. Found by halving: slices are compared in C, characters are not looped over."""
    shorter = len(old) if len(old) < len(new) else len(new)
    low, high = 0, shorter
    while low < high:
        middle = (low + high + 1) // 2
        if old[:middle] == new[:middle]:
            low = middle
        else:
            high = middle - 1
    start = low
    low, high = 0, shorter - start
    while low < high:
        middle = (low + high + 1) // 2
        if old[len(old) - middle :] == new[len(new) - middle :]:
            low = middle
        else:
            high = middle - 1
    end = low
    return (
        old[:start],
        old[start : len(old) - end],
        new[start : len(new) - end],
        old[len(old) - end :],
    )


def _member_data(row: Row, group: Group, figures: FigureFormat) -> list[Any]:
    """What the script needs to draw a listed case's values: its group, per field the
    score and both values as shown (see ``common_ends``), its usage rows, its overruns,
    and its detail when it is not the one of the case shown in full."""
    changes = [
        [
            score_text(c.score),
            *common_ends(
                "" if c.kind == "added" else shown(c.old),
                "" if c.kind == "removed" else shown(c.new),
            ),
        ]
        for c in row.changes
    ]
    usage = row.usage
    cells = (
        [figures.cells(usage.golden or Figures()), figures.cells(usage.now)]
        if usage is not None
        else 0
    )
    detail = row.detail if row.detail != group.representative.detail else 0
    return [group.number, changes, cells, [overrun_text(o) for o in row.overruns], detail]


def _group_data(group: Group) -> list[Any]:
    """What every listed case of a group shares: its fields (path, kind, rule, verdict),
    its cause and the prompt edits it links to."""
    first = group.representative
    fields = [[c.path, c.kind, c.rule, c.tolerated, c.expected] for c in first.changes]
    prompts = [[p.anchor, p.name, p.versions] for p in first.prompts]
    return [fields, first.cause, prompts]


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("pytest_promptflow.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["score"] = score_text
    environment.filters["thousands"] = lambda n: f"{n:,}"
    environment.globals["value_pair"] = value_pair
    environment.globals["overrun_text"] = overrun_text
    return environment


LISTED_CASES = 12
"""Fixed or broken cases of a quality row linked in its cell; any more are behind a
disclosure, so that a row of hundreds does not push the table apart."""


@dataclass(frozen=True)
class CaseLink:
    """A fixed or broken case of a quality row, and the anchor of its section, when the
    report has one (its step's output changed)."""

    case: str
    anchor: str | None


@dataclass(frozen=True)
class LabelRow:
    """One expected label of a confusion matrix: what its items were answered, and the
    label's figures."""

    label: str
    counts: list[int]
    precision: str
    recall: str
    f1: str
    support: int


@dataclass(frozen=True)
class ConfusionView:
    labels: list[str]
    rows: list[LabelRow]
    macro_f1: str


@dataclass(frozen=True)
class QualityView:
    """One quality row as the page shows it."""

    test_id: str
    """The test function's node id; ``test`` is its name."""
    test: str
    field: str
    kind: str
    golden: str
    now: str
    golden_mean: str
    now_mean: str
    fixed: list[CaseLink]
    broken: list[CaseLink]
    verdict: str
    """``better``, ``worse``, ``unchanged``, ``inconclusive`` or ``new``."""
    verdict_text: str
    confusion: ConfusionView | None


def label_texts(labels: Sequence[Any]) -> list[str]:
    """Labels as a matrix heads them: strings as they are when every label is a string
    that shows (``billing``); otherwise each as JSON, so that ``1`` and ``"1"``, or an
    empty string, are told apart."""
    if all(isinstance(label, str) and label.strip() for label in labels):
        return list(labels)
    return [json.dumps(label, ensure_ascii=False) for label in labels]


def confusion_view(data: dict[str, Any]) -> ConfusionView | None:
    """A labelled row's confusion matrix now, each expected label with its precision,
    recall, F1 and items."""
    if data["confusion"] is None:
        return None
    labels = label_texts(data["labels"])
    rows = [
        LabelRow(
            label,
            counts,
            f"{figures['precision']:.2f}",
            f"{figures['recall']:.2f}",
            f"{figures['f1']:.2f}",
            figures["support"],
        )
        for label, counts, figures in zip(labels, data["confusion"], data["per_label"], strict=True)
    ]
    return ConfusionView(labels, rows, f"{data['macro_f1']:.2f}")


def case_sections(rows: Iterable[Row]) -> dict[tuple[str, str, str], str]:
    """The anchor of each case's first section per test function and step, by (test
    function, case id, step): a quality row names its cases by id, and pytest may have
    escaped an id in the node id (``caf\\xe9`` for ``café``), so the section is looked
    up by what it was made from rather than by a node id rebuilt from the case id."""
    anchors: dict[tuple[str, str, str], str] = {}
    for row in rows:
        key = (row.test.partition("[")[0], row.case, row.step)
        anchors.setdefault(key, row.anchor)
    return anchors


def quality_views(
    quality: QualityTally | None, sections: dict[tuple[str, str, str], str]
) -> list[QualityView]:
    """The quality rows, their fixed and broken cases linked to their sections."""
    views = []
    for row in quality.sorted_rows() if quality is not None else []:
        data = row.to_json()
        mean = data["mean"] or {}

        def linked(cases: list[str], test: str = row.test, step: str = row.step) -> list[CaseLink]:
            return [CaseLink(case, sections.get((test, case, step))) for case in cases]

        views.append(
            QualityView(
                test_id=row.test,
                test=short_test(row.test),
                field=f"{row.step}.{row.name}",
                kind=row.kind,
                golden=rate_text(data["golden"]) if data["golden"] is not None else "—",
                now=rate_text(data["now"]),
                golden_mean=mean_text(mean.get("golden")),
                now_mean=mean_text(mean.get("now")),
                fixed=linked(data["fixed"]),
                broken=linked(data["broken"]),
                verdict=data["verdict"],
                verdict_text=verdict_text(
                    data["verdict"], data["p_value"], len(data["fixed"]), len(data["broken"])
                ),
                confusion=confusion_view(data),
            )
        )
    return views


@dataclass(frozen=True)
class GateView:
    requirement: str
    status: str
    """``met``, ``not met`` or ``not evaluated``."""
    detail: str


def gate_views(results: Iterable[GateResult]) -> list[GateView]:
    return [
        GateView(str(result.requirement), gate_status(result), gate_detail(result))
        for result in results
    ]


def html_report(
    tally: SessionTally,
    accept_command: str,
    quality: QualityTally | None = None,
    quality_gate: Sequence[GateResult] = (),
) -> str:
    parts = layout(tally.cases, tally.usage_cases)
    figures = FigureFormat(tally.currency, has_prices(tally))
    members: list[list[Any]] = []
    for group in parts.groups:
        for row in group.members:
            row.member = len(members)
            members.append(_member_data(row, group, figures))
    data = {"groups": [_group_data(group) for group in parts.groups], "members": members}
    template = _environment().get_template("report.html.j2")
    return template.render(
        tally=tally,
        rows=parts.rows,
        groups=parts.groups,
        prompts=parts.prompts,
        steps=sorted(tally.steps),
        causes=[cause for cause in CAUSES if any(row.cause == cause for row in parts.rows)],
        drifted=len(tally.drifted_cases),
        over_budget=len(tally.over_budget_cases),
        accept_command=accept_command,
        figures=figures,
        partial_legend=PARTIAL_LEGEND,
        quality=quality_views(quality, case_sections(parts.rows)),
        quality_gate=gate_views(quality_gate),
        listed_cases=LISTED_CASES,
        data=json_for_script(data),
    )
