"""The Quality section of the HTML report, opened in headless Chromium and read as a
reviewer reads it: each row's rates as the JSON report has them, a labelled field's
confusion matrix, fixed and broken cases linked to their sections, a worse row marked,
the quality gate's requirements met, not met or not evaluated; case ids, test paths and
labels that are payloads shown as text. The section's screenshot is kept as
test-artifacts/html-quality.png."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import test_html_report as html_report_tests
from llm_fakes import Project
from quality_chains import (
    CASES,
    EXPECTED,
    HOSTILE_CASES,
    HOSTILE_FOLDER,
    HOSTILE_LABELS,
    answer,
    record_regression,
    report,
    row,
    set_version,
    write_hostile_project,
    write_project,
)

from pytest_promptflow.report.html import case_anchor

ARTIFACTS, TITLE = html_report_tests.ARTIFACTS, html_report_tests.TITLE
open_report = html_report_tests.open_report
browser = html_report_tests.browser  # a fixture: one Chromium for this module's tests

RATE = re.compile(r"(\d+)/(\d+) (\d+\.\d)% \[(\d+\.\d)-(\d+\.\d)\]")
MEAN = re.compile(r"mean (\d\.\d\d) \[(\d\.\d\d)-(\d\.\d\d)\]")
# Below the sticky filter bar, when there is one, and above the bottom of the window.
IN_VIEW = """(id) => {
  const top = document.getElementById(id).getBoundingClientRect().top;
  const bar = document.querySelector(".filters").getBoundingClientRect();
  return top >= Math.max(0, bar.bottom) - 1 && top < window.innerHeight;
}"""


def node(case: str) -> str:
    return f"test_chain.py::test_classify[{case}]"


@pytest.fixture
def regression(project: Project) -> Project:
    return record_regression(project, "q.html", "q.json")


@pytest.fixture
def quality_page(regression: Project, browser: Any) -> Iterator[Any]:
    """The regression's report, its Quality section kept as a screenshot."""
    page = open_report(browser, regression.path / "q.html")
    try:
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator("#quality-section").screenshot(path=str(ARTIFACTS / "html-quality.png"))
        yield page
    finally:
        page.close()


def shown_rows(page: Any) -> dict[str, dict[str, Any]]:
    """The quality table's rows by field, each with its test, verdict and cells' text."""
    rows = page.locator("#quality tr.quality-row").evaluate_all(
        """rows => rows.map((r) => ({
             test: r.dataset.test, field: r.dataset.field, verdict: r.dataset.verdict,
             cells: Array.from(r.cells).map((c) => c.innerText),
           }))"""
    )
    return {shown["field"]: shown for shown in rows}


def rate_of(text: str) -> tuple[int, int, float, float, float]:
    found = RATE.search(text)
    assert found, text
    correct, scored, rate, low, high = found.groups()
    return int(correct), int(scored), float(rate), float(low), float(high)


def json_rate(rate: dict[str, Any]) -> tuple[int, int, float, float, float]:
    return (
        rate["correct"],
        rate["scored"],
        pytest.approx(rate["rate"] * 100, abs=0.05),
        pytest.approx(rate["low"] * 100, abs=0.05),
        pytest.approx(rate["high"] * 100, abs=0.05),
    )


def test_each_row_shows_the_rates_and_cases_of_the_json_report(
    regression: Project, quality_page: Any
) -> None:
    document = report(regression, "q.json")
    shown = shown_rows(quality_page)

    assert sorted(shown) == sorted(f"{r['step']}.{r['field']}" for r in document["quality"])
    for data in document["quality"]:
        found = shown[f"{data['step']}.{data['field']}"]
        test, field, golden, now, fixed, broken, _ = found["cells"]
        assert (found["test"], test) == ("test_chain.py::test_classify", "test_classify")
        assert found["verdict"] == data["verdict"]
        assert rate_of(golden) == json_rate(data["golden"])
        assert rate_of(now) == json_rate(data["now"])
        assert fixed.split() == (data["fixed"] or ["—"])
        assert broken.split() == (data["broken"] or ["—"])
        if data["kind"] == "metric":
            assert field == f"{data['step']}.{data['field']} metric"
            for text, mean in ((golden, data["mean"]["golden"]), (now, data["mean"]["now"])):
                found_mean = MEAN.search(text)
                assert found_mean, text
                assert [float(x) for x in found_mean.groups()] == [
                    pytest.approx(mean[key], abs=0.005) for key in ("value", "low", "high")
                ]
    category = shown["classify.category"]["cells"]
    assert category[2:] == [
        "7/10 70.0% [39.7-89.2]",
        "1/10 10.0% [1.8-40.4]",
        "—",
        "t0 t1 t2 t3 t4 t5",
        "▼ worse p=0.0156",
    ]


def test_a_labelled_field_shows_its_confusion_matrix_now(
    regression: Project, quality_page: Any
) -> None:
    page = quality_page
    category = row(report(regression, "q.json"))
    assert page.locator("#quality tr.confusion-row").count() == 1  # none for the metric
    matrix = page.locator("#quality tr.confusion-row[data-field='classify.category'] table")
    assert matrix.is_visible()

    labels = ["billing", "bug", "outage"]
    head = matrix.locator("thead tr")
    assert head.nth(0).locator("th").all_inner_texts() == ["expected ↓", "answered →", "per label"]
    assert head.nth(1).locator("th").all_inner_texts() == [
        *labels,
        *("precision", "recall", "F1", "items"),
    ]
    body = matrix.locator("tbody tr")
    assert body.locator("th").all_inner_texts() == labels
    counts = [[int(n) for n in r.locator("td.count").all_inner_texts()] for r in body.all()]
    # What the model answered under v3, counted here: rows expected, columns answered.
    answered = [json.loads(answer("v3", case))["category"] for case in CASES]
    truth = [[0] * 3 for _ in labels]
    for expected, given in zip(EXPECTED, answered, strict=True):
        truth[labels.index(expected)][labels.index(given)] += 1
    assert counts == truth == category["confusion"]
    hits = body.locator("td.hit").all_inner_texts()
    assert [int(n) for n in hits] == [truth[i][i] for i in range(3)]

    figures = [r.locator("td").all_inner_texts()[3:] for r in body.all()]
    assert figures == [
        [f"{f['precision']:.2f}", f"{f['recall']:.2f}", f"{f['f1']:.2f}", str(f["support"])]
        for f in category["per_label"]
    ]
    caption = page.locator("#quality .confusion-caption").inner_text()
    assert caption.endswith(f"macro-F1 {category['macro_f1']:.2f}")


def test_a_worse_row_is_marked(quality_page: Any) -> None:
    page = quality_page
    worse = page.locator("#quality tr.quality-row[data-verdict=worse]")
    unchanged = page.locator("#quality tr.quality-row[data-verdict=unchanged]")
    assert worse.get_attribute("data-field") == "classify.category"
    assert unchanged.get_attribute("data-field") == "classify.mentions_the_category"

    def look(cell: Any) -> dict[str, str]:
        return cell.evaluate(
            """(c) => {
                 const style = getComputedStyle(c);
                 return {color: style.color, weight: style.fontWeight,
                         background: style.backgroundColor, bar: style.boxShadow};
               }"""
        )

    assert worse.locator("td.verdict-cell").inner_text() == "▼ worse p=0.0156"
    assert unchanged.locator("td.verdict-cell").inner_text() == "unchanged"
    verdict, plain_verdict = (look(r.locator("td.verdict-cell")) for r in (worse, unchanged))
    assert verdict["color"] != plain_verdict["color"]
    assert verdict["weight"] != plain_verdict["weight"]
    # The whole row is tinted, with a bar at its start.
    first, plain_first = (look(r.locator("td.test")) for r in (worse, unchanged))
    assert first["background"] != plain_first["background"]
    assert first["bar"] != plain_first["bar"] == "none"


def test_a_broken_case_link_scrolls_to_its_section_and_opens_it(quality_page: Any) -> None:
    page = quality_page
    links = page.locator("#quality tr.quality-row[data-field='classify.category'] td.broken a")
    assert links.all_inner_texts() == ["t0", "t1", "t2", "t3", "t4", "t5"]
    assert links.evaluate_all("links => links.map((a) => a.getAttribute('href'))") == [
        f"#{case_anchor(node(case), 'classify')}" for case in ("t0", "t1", "t2", "t3", "t4", "t5")
    ]

    # t0 is the case shown in full; t3 is listed in its group, its values drawn when opened.
    t0 = case_anchor(node("t0"), "classify")
    links.nth(0).click()
    page.wait_for_function(IN_VIEW, arg=t0)
    verdict = page.locator(f"article#{t0} tr.field[data-path=category] td").nth(2)
    assert verdict.inner_text() == "tolerated · broken"

    t3 = case_anchor(node("t3"), "classify")
    member = page.locator(f"li.member#{t3}")
    assert member.locator("details").get_attribute("open") is None
    links.nth(3).click()
    member.locator("table.fields").wait_for()
    page.wait_for_function(IN_VIEW, arg=t3)
    assert member.locator("details").get_attribute("open") is not None
    assert member.locator("tr.field[data-path=category] td").nth(2).inner_text() == (
        "tolerated · broken"
    )
    assert member.locator("tr.field[data-path=category] td.now").inner_text() == "bug"

    # Closed and scrolled away from, the same link (no change of hash) opens it again.
    member.locator("summary").click()
    assert member.locator("details").get_attribute("open") is None
    page.evaluate("window.scrollTo(0, 0)")
    links.nth(3).click()
    page.wait_for_function(IN_VIEW, arg=t3)
    assert member.locator("details").get_attribute("open") is not None


def test_a_fixed_case_links_to_its_tolerated_change(project: Project, browser: Any) -> None:
    write_project(project)
    project.record().assert_outcomes(passed=10)
    set_version(project, "v2")
    project.record("--promptflow-report=q.html", mode="new").assert_outcomes(passed=9, failed=1)
    page = open_report(browser, project.path / "q.html")
    try:
        category = page.locator("#quality tr.quality-row[data-field='classify.category']")
        assert category.get_attribute("data-verdict") == "inconclusive"
        assert category.locator("td.verdict-cell").inner_text() == "better? p=0.625 inconclusive"
        fixed = category.locator("td.fixed a")
        assert fixed.all_inner_texts() == ["t7", "t8"]
        # t7 is shown in full, t8 listed beside it: both fixed the same way.
        for number, case in enumerate(("t7", "t8")):
            anchor = case_anchor(node(case), "classify")
            fixed.nth(number).click()
            section = page.locator(f"#{anchor}")
            section.locator("table.fields").wait_for()
            page.wait_for_function(IN_VIEW, arg=anchor)
            verdict = section.locator("tr.field[data-path=category] td").nth(2)
            assert verdict.inner_text() == "tolerated · fixed"
            assert verdict.get_attribute("class") == "verdict-tolerated"

        category.locator("td.broken a").click()
        anchor = case_anchor(node("t0"), "classify")
        page.wait_for_function(IN_VIEW, arg=anchor)
        verdict = page.locator(f"#{anchor} tr.field[data-path=category] td").nth(2)
        assert verdict.inner_text() == "DRIFT · broken"
    finally:
        page.close()


def test_the_gate_lists_each_requirement_met_not_met_or_not_evaluated(
    regression: Project, quality_page: Any
) -> None:
    page = quality_page
    gate = report(regression, "q.json")["quality_gate"]
    assert [result["passed"] for result in gate] == [False, True, None]

    rows = page.locator("#quality-gate tbody tr")
    shown = [r.locator("td").all_inner_texts() for r in rows.all()]
    assert shown == [
        [
            "classify.category no worse",
            "not met",
            "test_chain.py::test_classify classify.category: worse, p=0.0156; "
            "broken t0 t1 t2 t3 t4 t5",
        ],
        [
            "classify.mentions_the_category >= 50%",
            "met",
            "test_chain.py::test_classify classify.mentions_the_category: 10/10",
        ],
        ["draft.* >= 90%", "not evaluated", "nothing scored"],
    ]
    colours = rows.locator("td.status").evaluate_all(
        "cells => cells.map((c) => getComputedStyle(c).color)"
    )
    assert len(set(colours)) == 3
    assert page.locator("#quality-section p.verdict.failing").inner_text() == (
        "1 of 3 requirement(s) not met."
    )

    # The page's first lines say so too, and lead to it.
    top = page.locator("#quality-gate-verdict")
    assert top.inner_text() == "The quality gate failed: 1 requirement(s) not met."
    top.locator("a").click()
    assert page.evaluate("location.hash") == "#quality-gate-heading"
    assert page.locator("#quality-gate").is_visible()


def test_payloads_in_case_ids_test_paths_and_labels_are_shown_as_text(
    project: Project, browser: Any
) -> None:
    hostile = write_hostile_project(project)
    hostile.record("--promptflow-report=q.html", mode="all")
    path = hostile.path / "q.html"
    raw = path.read_text(encoding="utf-8")
    assert len(re.findall(r"<script", raw, re.IGNORECASE)) == 2
    assert "<!--" not in raw

    page = open_report(browser, path)
    try:
        test_id = f"{HOSTILE_FOLDER}/test_chain.py::test_classify"
        quality_row = page.locator("#quality tr.quality-row")
        assert quality_row.get_attribute("data-test") == test_id
        assert quality_row.locator("td.test code").get_attribute("title") == test_id
        # Every case broke; each id is the text of a link to its section, also the ids
        # pytest escapes in its node ids.
        links = quality_row.locator("td.broken a")
        assert links.all_inner_texts() == sorted(HOSTILE_CASES)
        for number, case in enumerate(sorted(HOSTILE_CASES)):
            anchor = links.nth(number).get_attribute("href").removeprefix("#")
            section = page.locator(f"[id='{anchor}']")
            names = section.locator("h4 code, summary").first
            assert names.inner_text() == case
        links.nth(3).click()  # café: a listed case, opened
        page.locator(f"[id='{anchor}'] table.fields").wait_for()

        matrix = page.locator("#quality table.confusion")
        assert matrix.locator("thead th.label").all_inner_texts() == sorted(HOSTILE_LABELS)
        assert matrix.locator("tbody th.label").all_inner_texts() == sorted(HOSTILE_LABELS)
        details = page.locator("#quality-gate tbody td:nth-child(3)").all_inner_texts()
        assert len(details) == 2
        assert all(detail.startswith(test_id) for detail in details)
        assert (
            details[0] == f"{test_id} classify.category: broken {' '.join(sorted(HOSTILE_CASES))}"
        )

        assert page.evaluate("typeof window.pwned") == "undefined"
        assert page.title() == TITLE
        assert page.locator("script").count() == 2
        injected = "img, svg, iframe, object, embed, [onerror], [onload], [onclick]"
        assert page.locator(injected).count() == 0
        hrefs = page.locator("a[href]").evaluate_all("nodes => nodes.map(n => n.href)")
        assert all(href.startswith(path.as_uri() + "#") for href in hrefs)
    finally:
        page.close()
