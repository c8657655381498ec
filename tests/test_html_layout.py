"""The HTML report's layout, without a browser: prompt edits once, cases grouped by the
shape of their changes, anchors, costs shown only when priced, safe inline JSON."""

from __future__ import annotations

import json
import re
import shlex

from hypothesis import given
from hypothesis import strategies as st

from pytest_promptflow.budget import CaseUsage, Overrun, StepUsage
from pytest_promptflow.drift.classify import CaseDrift, StepDrift
from pytest_promptflow.drift.compare import FieldChange
from pytest_promptflow.quality.tally import ItemScore, QualityTally
from pytest_promptflow.report.html import (
    LISTED_CASES,
    accept_command_for,
    case_anchor,
    case_sections,
    common_ends,
    has_prices,
    html_report,
    json_for_script,
    label_texts,
    layout,
    prompt_versions,
    quality_views,
)
from pytest_promptflow.report.summary import SessionTally
from pytest_promptflow.usage import Figures

DIFF = "--- classify (golden)\n+++ classify (now)\n@@ -1 +1 @@\n-Classify: x\n+Classify well: x"
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def drifted_case(
    test: str,
    *changes: FieldChange,
    step: str = "classify",
    cause: str = "prompt",
    detail: str = "classify changed aaaa -> bbbb",
    diffs: dict[str, str] | None = None,
) -> CaseDrift:
    prompt_diffs = {"classify": DIFF} if diffs is None else diffs
    drift = StepDrift(step, 0, cause, detail, list(changes), prompt_diffs)  # type: ignore[arg-type]
    case = test[test.index("[") + 1 : -1] if "[" in test else None
    return CaseDrift(test, case, [step], [drift])


def reason(old: str, new: str, tolerated: bool = False) -> FieldChange:
    return FieldChange("reason", "changed", old, new, "similar(0.8)", tolerated, 0.5)


def test_a_prompt_edit_seen_in_many_cases_is_one_entry_with_its_versions() -> None:
    cases = [drifted_case(f"t.py::test[{n}]", reason("a", f"b{n}")) for n in range(5)]
    parts = layout(cases, [])
    rows, prompts = parts.rows, parts.prompts

    assert len(prompts) == 1
    (prompt,) = prompts
    assert (prompt.name, prompt.golden, prompt.now) == ("classify", "aaaa", "bbbb")
    assert prompt.anchor == "prompt-classify-aaaa-bbbb"
    assert prompt.case_steps == 5
    assert all(row.prompts == [prompt] for row in rows)
    assert [kind for kind, _ in prompt.lines] == ["file", "file", "hunk", "remove", "add"]


def test_two_edits_of_one_prompt_are_two_entries() -> None:
    cases = [
        drifted_case("t.py::test[a]", reason("a", "b")),
        drifted_case("t.py::test[b]", reason("a", "b"), detail="classify changed aaaa -> cccc"),
    ]
    prompts = layout(cases, []).prompts
    assert [(p.golden, p.now, p.case_steps) for p in prompts] == [
        ("aaaa", "bbbb", 1),
        ("aaaa", "cccc", 1),
    ]


def test_prompt_versions_are_read_from_the_detail_of_each_kind_of_edit() -> None:
    detail = "a changed 1a -> 2b; b removed (was 3c); c added (4d); its inputs changed too"
    assert prompt_versions(detail, "a") == ("1a", "2b")
    assert prompt_versions(detail, "b") == ("3c", None)
    assert prompt_versions(detail, "c") == (None, "4d")
    assert prompt_versions(detail, "d") is None
    # A name that ends another's is not mistaken for it.
    assert prompt_versions("subclassify changed 1a -> 2b", "classify") is None


def test_an_edit_without_versions_in_the_detail_is_keyed_by_its_diff() -> None:
    cases = [
        drifted_case(f"t.py::test[{n}]", reason("a", "b"), detail="something else")
        for n in range(3)
    ]
    (prompt,) = layout(cases, []).prompts
    assert prompt.golden is None
    assert re.fullmatch(r"prompt-classify-[0-9a-f]{10}", prompt.anchor)
    assert prompt.case_steps == 3


def test_cases_group_by_fields_kinds_rules_verdicts_and_cause() -> None:
    same = [drifted_case(f"t.py::test[s{n}]", reason(f"old {n}", f"new {n}")) for n in range(4)]
    tolerated = drifted_case("t.py::test[tolerated]", reason("a", "b", tolerated=True))
    other_rule = drifted_case(
        "t.py::test[rule]", FieldChange("reason", "changed", "a", "b", "exact", False)
    )
    added = drifted_case("t.py::test[added]", FieldChange("reason", "added", None, "b", "x", False))
    two_fields = drifted_case(
        "t.py::test[two]", reason("a", "b"), FieldChange("tone", "changed", 1, 2, "exact", False)
    )
    model = drifted_case("t.py::test[model]", reason("a", "b"), cause="model", diffs={})
    # Drifted on its tone as two_fields is; its reason differs from that one's in verdict.
    tone = FieldChange("tone", "changed", 1, 2, "exact", False)
    reason_tolerated = drifted_case("t.py::test[tone]", reason("a", "b", True), tone)
    cases = [*same, tolerated, other_rule, added, two_fields, model, reason_tolerated]

    groups = layout(cases, []).groups

    sizes = sorted((len(g.rows), g.representative.case) for g in groups)
    alone = ["added", "model", "rule", "tolerated", "tone", "two"]
    assert sizes == [(1, case) for case in alone] + [(4, "s0")]
    largest = max(groups, key=lambda g: len(g.rows))
    assert [row.case for row in largest.members] == ["s1", "s2", "s3"]
    # Failing groups come before tolerated ones, the largest first.
    assert groups[0] is largest
    assert groups[-1].representative.case == "tolerated"
    assert [g.number for g in groups] == list(range(len(groups)))


def test_overruns_and_prompt_edits_are_part_of_the_shape() -> None:
    cases = [drifted_case(f"t.py::test[{n}]", reason("a", "b")) for n in range(3)]
    cases.append(
        drifted_case("t.py::test[9]", reason("a", "b"), detail="classify changed aaaa -> cccc")
    )
    over = CaseUsage(
        "t.py::test[0]",
        "0",
        [
            StepUsage(
                "classify",
                Figures(model_calls=1, output_tokens=30),
                Figures(model_calls=1, output_tokens=10),
                "prompt",
                [Overrun("tokens", 10, 30, "tokens +20%")],
            )
        ],
    )
    groups = layout(cases, [over]).groups
    assert sorted(len(g.rows) for g in groups) == [1, 1, 2]
    alone = {g.representative.case for g in groups if len(g.rows) == 1}
    assert alone == {"0", "9"}


def test_case_anchors_are_stable_readable_and_distinct() -> None:
    anchor = case_anchor("tests/test_a.py::test_chain[T-1001]", "classify")
    assert anchor == case_anchor("tests/test_a.py::test_chain[T-1001]", "classify")
    assert re.fullmatch(r"case-classify-T-1001-[0-9a-f]{10}", anchor)
    others = {
        case_anchor("tests/test_a.py::test_chain[T-1001]", "extract"),
        case_anchor("tests/test_a.py::test_chain[T-1001]", "classify", 1),
        case_anchor("tests/test_a.py::test_alone[T-1001]", "classify"),
        case_anchor("tests/test_a.py::test_chain[T 1001]", "classify"),
    }
    assert anchor not in others
    assert len(others) == 4


@given(st.text(), st.text(min_size=1), st.integers(min_value=0, max_value=3))
def test_an_anchor_is_safe_in_an_attribute_a_fragment_and_a_selector(
    test: str, step: str, occurrence: int
) -> None:
    assert re.fullmatch(r"case-[A-Za-z0-9_.-]*[0-9a-f]{10}", case_anchor(test, step, occurrence))


@given(st.text())
def test_the_accept_command_quotes_the_node_id_for_the_shell(test: str) -> None:
    assert shlex.split(accept_command_for(test)) == ["pytest", test, "--promptflow-accept"]


@given(JSON_VALUES)
def test_json_for_a_script_element_reads_back_and_cannot_end_it(value: object) -> None:
    text = str(json_for_script(value))
    assert json.loads(text) == value
    assert not {"<", ">", "&", "\u2028", "\u2029"} & set(text)


@given(st.text(max_size=5), st.text(max_size=5), st.text(max_size=5), st.text(max_size=5))
def test_common_ends_split_two_texts_around_what_differs(
    start_in_common: str, old_between: str, new_between: str, end_in_common: str
) -> None:
    old = start_in_common + old_between + end_in_common
    new = start_in_common + new_between + end_in_common
    start, old_middle, new_middle, end = common_ends(old, new)
    assert start + old_middle + end == old
    assert start + new_middle + end == new
    # Nothing more in common at either end of what differs.
    if old_middle and new_middle:
        assert old_middle[0] != new_middle[0]
        assert old_middle[-1] != new_middle[-1]


def priced_tally(*figures: Figures, currency: str = "") -> SessionTally:
    tally = SessionTally(currency=currency)
    for number, now in enumerate(figures):
        usage = CaseUsage(f"t.py::test[{number}]", str(number), [StepUsage("s", now, now)])
        tally.add_usage(usage)
    return tally


def test_costs_are_shown_once_anything_is_priced() -> None:
    unpriced = Figures(model_calls=2, input_tokens=5, unpriced_calls=2)
    priced = Figures(model_calls=2, input_tokens=5, cost_nanos=10, unpriced_calls=1)
    assert not has_prices(SessionTally())
    assert not has_prices(priced_tally(unpriced, unpriced))
    assert has_prices(priced_tally(unpriced, priced))
    assert has_prices(priced_tally(unpriced, currency="USD"))


def test_a_report_without_prices_has_no_cost_anywhere() -> None:
    figures = Figures(model_calls=1, input_tokens=5, output_tokens=9, unpriced_calls=1)
    tally = SessionTally()
    tally.add_usage(
        CaseUsage(
            "t.py::test[a]",
            "a",
            [StepUsage("s", figures, Figures(model_calls=1, input_tokens=5, unpriced_calls=1))],
        )
    )
    html = html_report(tally, "pytest --promptflow-accept")
    assert not re.search(r"<t[hd][^>]*>cost", html)
    assert "no price" not in html

    tally.currency = "USD"
    html = html_report(tally, "pytest --promptflow-accept")
    assert re.search(r"<th[^>]*>cost \(golden → now\)</th>", html)
    assert re.search(r"<th[^>]*>cost</th>", html)
    assert "no price" in html


def test_a_second_call_of_a_step_is_a_row_of_its_own() -> None:
    first = StepDrift("classify", 0, "code", "", [reason("a", "b")])
    second = StepDrift("classify", 1, "code", "", [reason("c", "d")])
    case = CaseDrift("t.py::test[x]", "x", ["classify", "classify"], [first, second])
    rows = layout([case], []).rows
    assert [row.label for row in rows] == ["x", "x (call 2)"]
    assert rows[0].anchor != rows[1].anchor


# -- the quality table ------------------------------------------------------------------


def broken_items(test: str, *cases: str) -> QualityTally:
    quality = QualityTally()
    quality.add(ItemScore(test, case, "classify", "reason", "field", False, True) for case in cases)
    return quality


def test_a_quality_row_links_a_case_to_its_first_section_whatever_its_node_id() -> None:
    # pytest writes a non-ASCII or backslash in an id escaped in the node id: the
    # section's anchor is found by the case id, as the quality row names the case.
    escaped = CaseDrift("t.py::test[caf\\xe9]", "café", ["classify"], [])
    escaped.steps.append(StepDrift("classify", 0, "code", "", [reason("a", "b")]))
    # Only the second call of the step changed: the link goes to that call's section.
    second = StepDrift("classify", 1, "code", "", [reason("c", "d")])
    later = CaseDrift("t.py::test[x]", "x", ["classify", "classify"], [second])
    # Both calls changed: the link goes to the first.
    first = StepDrift("classify", 0, "code", "", [reason("e", "f")])
    both = CaseDrift("t.py::test[z]", "z", ["classify", "classify"], [first, second])
    rows = layout([escaped, later, both], []).rows

    quality = broken_items("t.py::test", "café", "x", "y", "z")
    [view] = quality_views(quality, case_sections(rows))

    assert [(link.case, link.anchor) for link in view.broken] == [
        ("café", case_anchor("t.py::test[caf\\xe9]", "classify")),
        ("x", case_anchor("t.py::test[x]", "classify", 1)),
        ("y", None),  # its output did not change: no section to go to
        ("z", case_anchor("t.py::test[z]", "classify", 0)),
    ]


@given(
    st.lists(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        unique_by=lambda label: json.dumps(label),
        max_size=8,
    )
)
def test_labels_head_a_matrix_each_told_apart(labels: list[object]) -> None:
    texts = label_texts(labels)
    assert len(set(texts)) == len(labels)
    if all(isinstance(label, str) and label.strip() for label in labels):
        assert texts == labels


def test_labels_are_plain_text_when_every_one_is_a_string_that_shows() -> None:
    assert label_texts(["billing", "bug"]) == ["billing", "bug"]
    assert label_texts(["1", 1]) == ['"1"', "1"]
    assert label_texts(["", "bug"]) == ['""', '"bug"']
    assert label_texts([False, True]) == ["false", "true"]


def test_a_long_list_of_cases_shows_its_first_ones_and_the_rest_behind_a_disclosure() -> None:
    cases = [f"c{n:02}" for n in range(LISTED_CASES + 3)]
    html = html_report(
        SessionTally(), "pytest --promptflow-accept", broken_items("t.py::t", *cases)
    )

    cell = re.search(r'<td class="cases broken">(.*?)</td>', html, re.S)
    assert cell
    listed, _, more = cell[1].partition('<details class="more-cases">')
    assert re.findall(r'<span class="case-name">(\w+)</span>', listed) == cases[:LISTED_CASES]
    assert re.search(r"<summary>3 more</summary>", more)
    assert re.findall(r'<span class="case-name">(\w+)</span>', more) == cases[LISTED_CASES:]
