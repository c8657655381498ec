"""The static HTML report, opened in headless Chromium (Debian's package) by playwright.

Without a Chromium these tests skip, saying why; in CI (the CI variable set) they fail
instead, since CI installs it. The screenshot is kept under test-artifacts/.
"""

from __future__ import annotations

import html as html_text
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from drift_chains import write_chain
from headless_chromium import CHROMIUM, fetch_files_only, launched_chromium
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llm_fakes import Project
from usage_chains import LONG, NEW_PROMPT, TICKETS, record_chain

from pytest_promptflow.drift.classify import CaseDrift, StepDrift
from pytest_promptflow.drift.compare import FieldChange
from pytest_promptflow.prompts import prompt_version
from pytest_promptflow.report.html import case_anchor, html_report, word_diff
from pytest_promptflow.report.summary import SessionTally
from pytest_promptflow.settings import running_in_ci

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TITLE = "pytest-promptflow report"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # The project's conftest drops CI for generated runs; this reads the real environment.
    if not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM}: apt-get install chromium (as .ci/run does)"
        if running_in_ci(os.environ):
            pytest.fail(f"{reason}; CI must run the browser tests", pytrace=False)
        pytest.skip(reason)
    with launched_chromium() as browser:
        yield browser


def open_report(browser: Any, report: Path, fragment: str = "") -> Any:
    """A page showing ``report``, which may fetch nothing but files."""
    text = report.read_text(encoding="utf-8")
    # One file: nothing is fetched from anywhere.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    fetch_files_only(page)
    page.goto(report.as_uri() + fragment)
    return page


@pytest.fixture
def report_page(project: Project, browser: Any) -> Iterator[Any]:
    """The HTML report of the chain after a prompt edit that makes summaries longer:
    summarize drifts in all three cases alike, shout and sign only use more tokens (sign
    beyond its budget); prices are declared."""
    chain = record_chain(project, summary_rule="drift.similar(0.9)")
    (chain.path / "prompts" / "summarize.j2").write_text(NEW_PROMPT)
    chain.record("--promptflow-report=report.html", mode="new").assert_outcomes(failed=3)
    page = open_report(browser, chain.path / "report.html")
    try:
        yield page
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(ARTIFACTS / "html-report.png"), full_page=True)
        page.close()


def visible_groups(page: Any) -> list[tuple[str, str, int]]:
    groups = page.locator("section.group:visible")
    return [
        (
            groups.nth(i).get_attribute("data-step"),
            groups.nth(i).get_attribute("data-cause"),
            int(groups.nth(i).get_attribute("data-count")),
        )
        for i in range(groups.count())
    ]


def node(case: str) -> str:
    return f"test_chain.py::test_chain[{case}]"


def open_member(page: Any, anchor: str) -> Any:
    """The listed case with this anchor, opened; its values drawn."""
    member = page.locator(f"li.member#{anchor}")
    member.locator("summary").click()
    member.locator("table.fields, table.usage").first.wait_for()
    return member


def test_the_report_shows_each_step_its_changed_field_and_the_figures(report_page: Any) -> None:
    page = report_page
    summarize = page.locator("#steps tr[data-step=summarize]")
    assert summarize.count() == 1
    cells = summarize.locator("td").all_inner_texts()
    assert cells[0] == "summarize"
    assert "→" in summarize.locator("td.tokens-out").inner_text()
    assert summarize.locator("td").last.inner_text() == "3"  # over budget in 3 cases

    # The first case in test order is shown in full.
    export = page.locator(f"article#{case_anchor(node('export'), 'summarize')}")
    field = export.locator("tr.field[data-path=text]")
    assert field.locator("td").nth(1).inner_text() == "similar(0.9)"
    assert field.locator("td").nth(2).inner_text() == "DRIFT"
    assert re.fullmatch(r"0\.\d+", field.locator("td").nth(3).inner_text())
    assert field.locator("td.golden").inner_text() == "export is slow summarized"
    assert field.locator("td.now").inner_text() == LONG.format(text=TICKETS["export"])
    # Word-level highlighting: only the added words are marked in the new value.
    inserted = " ".join(field.locator("td.now ins").all_inner_texts())
    assert "great length" in inserted
    assert "export" not in inserted
    assert export.locator("table.usage tr.usage-golden").count() == 1
    heading = page.locator("section.group[data-step=summarize] h3").inner_text()
    assert "prompt DRIFT OVER BUDGET · 3 cases with the same changes" in heading

    # The other cases, opened, show theirs the same way.
    login = open_member(page, case_anchor(node("login"), "summarize"))
    field = login.locator("tr.field[data-path=text]")
    assert field.locator("td").nth(1).inner_text() == "similar(0.9)"
    assert field.locator("td").nth(2).inner_text() == "DRIFT"
    assert field.locator("td.golden").inner_text() == "cannot log in summarized"
    assert field.locator("td.now").inner_text() == LONG.format(text=TICKETS["login"])
    assert "great length" in " ".join(field.locator("td.now ins").all_inner_texts())
    assert login.locator("table.usage tr.usage-now").count() == 1

    sign = page.locator("section.group[data-step=sign]")
    assert "OVER BUDGET" in sign.locator("h3").inner_text()
    assert "tokens" in sign.locator(".overrun").first.inner_text()


def test_the_prompt_diff_is_shown_once_and_every_case_links_to_it(report_page: Any) -> None:
    page = report_page
    version = f"{prompt_version('Summarize: {{ text }}')}-{prompt_version(NEW_PROMPT)}"
    anchor = f"prompt-summarize-{version}"
    prompts = page.locator("section.prompt-change")
    assert prompts.count() == 1
    assert prompts.first.get_attribute("id") == anchor
    assert page.locator("pre.diff").count() == 1
    assert page.locator("pre.diff .add").all_inner_texts() == [f"+{NEW_PROMPT}"]
    assert page.locator("pre.diff .remove").all_inner_texts() == ["-Summarize: {{ text }}"]
    assert page.evaluate("document.body.innerText").count(f"+{NEW_PROMPT}") == 1
    assert "3 alike" in prompts.first.inner_text()

    # The case shown in full and every listed case link to it.
    links = page.locator("article.case-step a.prompt-link")
    assert [links.nth(i).get_attribute("href") for i in range(links.count())] == [f"#{anchor}"]
    for case in ("login", "outage"):
        member = open_member(page, case_anchor(node(case), "summarize"))
        assert member.locator("a.prompt-link").get_attribute("href") == f"#{anchor}"
    member.locator("a.prompt-link").click()
    assert page.evaluate("location.hash") == f"#{anchor}"
    assert page.evaluate("document.body.innerText").count(f"+{NEW_PROMPT}") == 1


def test_a_group_shows_its_count_and_every_case_its_anchor_and_accept_command(
    report_page: Any,
) -> None:
    page = report_page
    summarize = page.locator("section.group[data-step=summarize]")
    assert summarize.count() == 1
    assert summarize.locator(".count").inner_text() == "3 cases"
    assert summarize.locator("article.case-step").count() == 1
    assert summarize.locator("li.member summary").all_text_contents() == ["login", "outage"]
    for case in TICKETS:
        for step in ("summarize", "shout", "sign"):
            section = page.locator(f"#{case_anchor(node(case), step)}")
            assert section.count() == 1, (case, step)
            accept = section.locator(".accept code").all_text_contents()
            assert accept == [
                f"pytest '{node(case)}' --promptflow-accept",
                f"python -m pytest_promptflow accept --test '{node(case)}' --step {step}",
            ]

    # A link to a listed case opens it, whatever the filters say.
    page.check("#drift-only")
    page.select_option("#step-filter", "shout")
    anchor = case_anchor(node("outage"), "summarize")
    page.evaluate(f"location.hash = '#{anchor}'")
    member = page.locator(f"#{anchor}")
    member.locator("table.fields").wait_for()
    assert member.locator("details").get_attribute("open") is not None
    assert member.is_visible()
    assert member.locator("td.now").inner_text() == LONG.format(text=TICKETS["outage"])


def test_a_case_linked_from_elsewhere_opens_on_arrival(report_page: Any, browser: Any) -> None:
    url = report_page.url
    anchor = case_anchor(node("outage"), "sign")
    page = browser.new_page()
    try:
        page.goto(f"{url}#{anchor}")
        member = page.locator(f"#{anchor}")
        member.locator("table.usage").wait_for()
        assert member.is_visible()
        assert "tokens" in member.locator(".overrun").inner_text()
    finally:
        page.close()


def test_the_filters_by_step_cause_and_drift(report_page: Any) -> None:
    page = report_page
    everything = visible_groups(page)
    # Three cases, each of summarize (prompt), shout and sign (propagated), in 3 groups.
    assert sorted(everything) == [
        ("shout", "propagated", 3),
        ("sign", "propagated", 3),
        ("summarize", "prompt", 3),
    ]
    assert page.locator("#shown").inner_text() == "9 of 9 shown"

    page.select_option("#step-filter", "summarize")
    assert visible_groups(page) == [("summarize", "prompt", 3)]
    assert page.locator("#shown").inner_text() == "3 of 9 shown"

    page.select_option("#step-filter", "")
    page.select_option("#cause-filter", "propagated")
    assert sorted(step for step, _, _ in visible_groups(page)) == ["shout", "sign"]

    page.select_option("#cause-filter", "")
    page.check("#drift-only")
    # shout stays within its own budget (+400%); sign, under the project's +20%, does not.
    assert sorted(visible_groups(page)) == [("sign", "propagated", 3), ("summarize", "prompt", 3)]

    page.select_option("#step-filter", "shout")
    assert visible_groups(page) == []
    assert page.locator("#empty").is_visible()


def test_cost_columns_are_shown_when_prices_are_declared(report_page: Any) -> None:
    page = report_page
    headers = page.locator("#steps th").all_inner_texts()
    assert "cost (golden → now)" in headers
    assert re.search(r"USD", page.locator("#steps tr[data-step=summarize] td.cost").inner_text())
    assert "cost" in page.locator("article.case-step table.usage th").all_inner_texts()
    member = open_member(page, case_anchor(node("login"), "sign"))
    assert "cost" in member.locator("table.usage th").all_inner_texts()


def test_cost_columns_are_hidden_without_prices(project: Project, browser: Any) -> None:
    chain = record_chain(project, summary_rule="drift.similar(0.9)")
    (chain.path / "pyproject.toml").unlink()
    (chain.path / "prompts" / "summarize.j2").write_text(NEW_PROMPT)
    chain.record("--promptflow-report=report.html", mode="new").assert_outcomes(failed=3)
    page = open_report(browser, chain.path / "report.html")
    try:
        assert "cost (golden → now)" not in page.locator("#steps th").all_inner_texts()
        assert page.locator(".cost").count() == 0
        assert "cost" not in page.locator("article.case-step table.usage th").all_inner_texts()
        member = open_member(page, case_anchor(node("login"), "sign"))
        headers = member.locator("table.usage th").all_inner_texts()
        assert headers == ["usage", "model calls", "tokens in", "tokens out", "latency"]
        assert "no price" not in page.evaluate("document.body.innerText")
    finally:
        page.close()


# -- two prompts edited, cases whose changes differ in shape ----------------------------

TWO_PROMPTS = """
SUMMARIZE = Prompt.load("prompts/summarize.j2")
TITLE = Prompt.load("prompts/title.j2")


class Ticket(BaseModel):
    text: str


class Summary(BaseModel):
    text: Annotated[str, drift.similar(0.7)]


class Title(BaseModel):
    title: Annotated[str, drift.exact()]


@step(prompt=SUMMARIZE)
def summarize(ticket: Ticket) -> Summary:
    return Summary(text=ask(SUMMARIZE.render(text=ticket.text)))


@step(prompt=TITLE)
def title(ticket: Ticket) -> Title:
    return Title(title=ask(TITLE.render(text=ticket.text)))


@pytest.mark.promptflow_cases("tickets.jsonl", model=Ticket)
def test_chain(chain_case):
    summarize(chain_case.input)
    title(chain_case.input)
"""
FOUR_TICKETS = {
    "a-login": "cannot log in",
    "b-export": "export is slow",
    "c-outage": "vault is down",
    "d-billing": "charged twice",
}
PROMPTS = {"summarize": ("Summarize: {{ text }}", "Summarize briefly: {{ text }}")}
PROMPTS["title"] = ("Title: {{ text }}", "A title: {{ text }}")


def record_two_prompts(
    project: Project,
    payloads: dict[str, str] | None = None,
    prompts: dict[str, tuple[str, str]] = PROMPTS,
    tickets: dict[str, str] = FOUR_TICKETS,
) -> Path:
    """Four tickets through two prompted steps, both prompts then edited: the summaries
    of two tickets are reworded a little (tolerated), of the other two replaced (drift),
    and every title changes (drift). ``payloads`` replace the new summaries."""
    (project.path / "fixtures").mkdir()
    (project.path / "fixtures" / "tickets.jsonl").write_text(
        "".join(json.dumps({"id": case, "text": text}) + "\n" for case, text in tickets.items())
    )
    (project.path / "prompts").mkdir()
    write_chain(project, TWO_PROMPTS)
    for number, (case, text) in enumerate(tickets.items()):
        (old_summary, new_summary), (old_title, new_title) = prompts.values()
        answers = project.llm.answers
        answers[old_summary.replace("{{ text }}", text)] = f"The customer says {text}."
        answers[new_summary.replace("{{ text }}", text)] = (payloads or {}).get(case) or (
            f"The customer says {text}!" if number < 2 else "Nothing in common here"
        )
        answers[old_title.replace("{{ text }}", text)] = text.title()
        answers[new_title.replace("{{ text }}", text)] = text.upper()
    for name, (old, _) in prompts.items():
        (project.path / "prompts" / f"{name}.j2").write_text(old)
    project.record().assert_outcomes(passed=4)
    for name, (_, new) in prompts.items():
        (project.path / "prompts" / f"{name}.j2").write_text(new)
    project.record("--promptflow-report=report.html", mode="new").assert_outcomes(failed=4)
    return project.path / "report.html"


def test_cases_are_grouped_by_the_shape_of_their_changes(project: Project, browser: Any) -> None:
    page = open_report(browser, record_two_prompts(project))
    try:
        # Each edited prompt's diff once, linked from the groups of its step.
        prompts = page.locator("section.prompt-change")
        assert prompts.evaluate_all("nodes => nodes.map(n => n.dataset.prompt)") == [
            "summarize",
            "title",
        ]
        assert page.locator("pre.diff").count() == 2
        text = page.evaluate("document.body.innerText")
        for _, new in PROMPTS.values():
            assert text.count(f"+{new}") == 1
        summarize_prompt = page.locator("section.prompt-change[data-prompt=summarize]")
        assert "2 alike, 2 alike" in summarize_prompt.inner_text()

        groups = page.locator("section.group")
        assert groups.count() == 3
        shapes = [
            (
                group.get_attribute("data-step"),
                group.get_attribute("data-failing"),
                group.locator(".count").inner_text(),
                group.locator("article.case-step h4 code").inner_text(),
                group.locator("li.member summary").all_text_contents(),
            )
            for group in groups.all()
        ]
        assert shapes == [
            ("summarize", "true", "2 cases", "c-outage", ["d-billing"]),
            ("summarize", "false", "2 cases", "a-login", ["b-export"]),
            ("title", "true", "4 cases", "a-login", ["b-export", "c-outage", "d-billing"]),
        ]
        tolerated = groups.nth(1)
        assert "tolerated" in tolerated.locator("h3").inner_text()
        assert "DRIFT" not in tolerated.locator("h3").inner_text()
        member = open_member(page, case_anchor(node("b-export"), "summarize"))
        assert member.locator("td.verdict-tolerated").inner_text() == "tolerated"
        assert member.locator("td.now ins").all_inner_texts() == ["!"]
        assert member.locator("a.prompt-link").get_attribute("href") == (
            "#" + summarize_prompt.get_attribute("id")
        )

        page.check("#drift-only")
        assert page.locator("#shown").inner_text() == "6 of 8 shown"
    finally:
        page.close()


# -- what a model answers is text, never code -------------------------------------------

HOSTILE_ID = '<img src=x onerror="window.pwned = 6">'
PAYLOADS = {
    HOSTILE_ID: "<script>window.pwned = 1</script><img src=x onerror='window.pwned = 2'>",
    "b-export": "</textarea></script><script>document.title = 'pwned'</script><!--",
    "c-outage": '<a href="javascript:window.pwned = 3">open</a><svg onload="window.pwned = 4">',
    "d-billing": "\u2028</SCRIPT ><!--<script>window.pwned = 5</script>-->\"'&amp;",
}


def test_model_payloads_are_shown_as_text_and_never_run(project: Project, browser: Any) -> None:
    tickets = dict(zip(PAYLOADS, FOUR_TICKETS.values(), strict=True))
    report = record_two_prompts(project, PAYLOADS, tickets=tickets)
    raw = report.read_text(encoding="utf-8")
    # Only the report's own two script elements, and no comment anything could hide in.
    assert len(re.findall(r"<script", raw, re.IGNORECASE)) == 2
    assert len(re.findall(r"</script", raw, re.IGNORECASE)) == 2
    assert "<!--" not in raw

    page = open_report(browser, report)
    try:
        drifted = page.locator("section.group[data-step=summarize]")
        assert drifted.count() == 1
        # The case id sorts first, so its case is the one shown in full.
        shown_in_full = drifted.locator("article.case-step")
        assert shown_in_full.get_attribute("id") == case_anchor(node(HOSTILE_ID), "summarize")
        assert shown_in_full.locator("h4 code").inner_text() == HOSTILE_ID
        assert shown_in_full.locator("td.now").inner_text() == PAYLOADS[HOSTILE_ID]
        for case in ("b-export", "c-outage", "d-billing"):
            member = open_member(page, case_anchor(node(case), "summarize"))
            assert member.locator("td.now").inner_text() == PAYLOADS[case]
        page.evaluate(f"location.hash = '#{case_anchor(node('b-export'), 'title')}'")
        page.wait_for_timeout(200)  # let an injected image fail to load, if there were one

        assert page.evaluate("typeof window.pwned") == "undefined"
        assert page.title() == TITLE
        assert page.locator("script").count() == 2
        injected = "img, svg, iframe, object, embed, textarea, [onerror], [onload], [onclick]"
        assert page.locator(injected).count() == 0
        hrefs = page.locator("a[href]").evaluate_all("nodes => nodes.map(n => n.href)")
        assert hrefs
        assert all(href.startswith(report.as_uri() + "#") for href in hrefs)
    finally:
        page.close()


def test_a_hostile_prompt_template_is_shown_as_text(project: Project, browser: Any) -> None:
    hostile = "</script><script>document.title = 'pwned'</script> Summarize: {{ text }}"
    prompts = {**PROMPTS, "summarize": (PROMPTS["summarize"][0], hostile)}
    report = record_two_prompts(project, prompts=prompts)
    assert len(re.findall(r"<script", report.read_text(encoding="utf-8"))) == 2
    page = open_report(browser, report)
    try:
        assert page.locator("pre.diff .add").first.inner_text() == f"+{hostile}"
        assert page.title() == TITLE
        assert page.locator("script").count() == 2
    finally:
        page.close()


# -- a listed case is marked as the case shown in full would be --------------------------

TEXTS = st.text(
    alphabet=st.sampled_from(list("ab c.,!'-_\t\n\x1c\x85\xa0\u2003\ufeffé中½٣\u0301😀<&")),
    max_size=30,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs=st.lists(st.tuples(TEXTS, TEXTS), min_size=1, max_size=25))
def test_a_listed_case_marks_the_words_python_marks(
    browser: Any, pairs: list[tuple[str, str]]
) -> None:
    tally = SessionTally()
    anchors = []
    for number, (old, new) in enumerate([("x", "y"), *pairs]):
        test = f"t.py::test[{number}]"
        change = FieldChange("text", "changed", old, new, "exact", False)
        tally.add_case(
            CaseDrift(test, str(number), ["s"], [StepDrift("s", 0, "code", "", [change])])
        )
        anchors.append(case_anchor(test, "s"))
    page = browser.new_page()
    try:
        page.set_content(html_report(tally, "pytest --promptflow-accept"))
        drawn = page.evaluate(
            """() => Array.from(document.querySelectorAll("li.member details")).map((d) => {
                 d.open = true;
                 return d;
               })"""
        )
        assert len(drawn) == len(pairs)
        page.wait_for_function(
            f"document.querySelectorAll('li.member td.now').length === {len(pairs)}"
        )
        for anchor, (old, new) in zip(anchors[1:], pairs, strict=True):
            cells = [merged(side) for side in page.evaluate(SEGMENTS, anchor)]
            expected = [segments(side) for side in word_diff(old, new)]
            assert cells == expected, (old, new)
    finally:
        page.close()


SEGMENTS = """(anchor) => ["golden", "now"].map((side) => {
  const cell = document.getElementById(anchor).querySelector("td." + side);
  return Array.from(cell.childNodes).map((n) =>
    [n.nodeName === "#text" ? "" : n.nodeName.toLowerCase(), n.textContent]);
})"""


def segments(markup: str) -> list[list[str]]:
    """Python's marked text as the browser's child nodes: [tag or "", text]."""
    found = []
    for tag, inner, plain in re.findall(r"<(del|ins)>(.*?)</\1>|([^<]+)", markup, re.S):
        found.append([tag, html_text.unescape(inner if tag else plain)])
    return merged(found)


def merged(nodes: list[list[str]]) -> list[list[str]]:
    """Adjacent pieces of one kind joined, as a browser would show them."""
    joined: list[list[str]] = []
    for tag, text in nodes:
        if joined and joined[-1][0] == tag:
            joined[-1][1] += text
        elif text:
            joined.append([tag, text])
    return joined
