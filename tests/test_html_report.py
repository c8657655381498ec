"""The static HTML report, opened in headless Chromium (Debian's package) by playwright.

Without a Chromium these tests skip, saying why; in CI (the CI variable set) they fail
instead, since CI installs it. The screenshot is kept under test-artifacts/.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_fakes import Project
from usage_chains import LONG, NEW_PROMPT, TICKETS, record_chain

from pytest_promptflow.settings import running_in_ci

CHROMIUM = Path(os.environ.get("PROMPTFLOW_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    # The project's conftest drops CI for generated runs; this reads the real environment.
    if not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM}: apt-get install chromium (as .ci/run does)"
        if running_in_ci(os.environ):
            pytest.fail(f"{reason}; CI must run the browser tests", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def report_page(project: Project, browser: object) -> Iterator[object]:
    """The HTML report of the chain after a prompt edit that makes summaries longer."""
    chain = record_chain(project, summary_rule="drift.similar(0.9)")
    (chain.path / "prompts" / "summarize.j2").write_text(NEW_PROMPT)
    chain.record("--promptflow-report=report.html", mode="new").assert_outcomes(failed=3)
    html = (chain.path / "report.html").read_text(encoding="utf-8")
    # One file: nothing is fetched from anywhere.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    page = browser.new_page(viewport={"width": 1366, "height": 900})  # type: ignore[attr-defined]
    page.route(
        "**/*",
        lambda route: (
            route.abort() if not route.request.url.startswith("file:") else route.continue_()
        ),
    )
    page.goto((chain.path / "report.html").as_uri())
    try:
        yield page
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "html-report.png"), full_page=True)
        page.close()


def visible_sections(page: object) -> list[tuple[str, str]]:
    sections = page.locator("section.case-step:visible")  # type: ignore[attr-defined]
    return [
        (sections.nth(i).get_attribute("data-step"), sections.nth(i).get_attribute("data-cause"))
        for i in range(sections.count())
    ]


def test_the_report_shows_each_step_its_changed_field_and_the_figures(report_page: object) -> None:
    page = report_page
    summarize = page.locator("#steps tr[data-step=summarize]")  # type: ignore[attr-defined]
    assert summarize.count() == 1
    cells = summarize.locator("td").all_inner_texts()
    assert cells[0] == "summarize"
    assert "→" in summarize.locator("td.tokens-out").inner_text()
    assert summarize.locator("td").last.inner_text() == "3"  # over budget in 3 cases

    login = page.locator("section.case-step[data-step=summarize]", has_text="case login")
    field = login.locator("tr.field[data-path=text]")
    assert field.locator("td").nth(1).inner_text() == "similar(0.9)"
    assert field.locator("td").nth(2).inner_text() == "DRIFT"
    assert re.fullmatch(r"0\.\d+", field.locator("td").nth(3).inner_text())
    assert field.locator("td.golden").inner_text() == "cannot log in summarized"
    assert field.locator("td.now").inner_text() == LONG.format(text=TICKETS["login"])
    # Word-level highlighting: only the added words are marked in the new value.
    inserted = " ".join(field.locator("td.now ins").all_inner_texts())
    assert "great length" in inserted
    assert "cannot" not in inserted
    assert login.locator("table.usage tr.usage-golden").count() == 1
    assert "DRIFT OVER BUDGET" in login.locator("h3").inner_text()
    assert "tokens" in login.locator(".overrun").first.inner_text()
    diff = login.locator("pre.diff .add").all_inner_texts()
    assert f"+{NEW_PROMPT}" in diff


def test_the_filters_by_step_cause_and_drift(report_page: object) -> None:
    page = report_page
    everything = visible_sections(page)
    assert len(everything) == 9  # three cases x summarize (prompt), shout and sign (propagated)

    page.select_option("#step-filter", "summarize")  # type: ignore[attr-defined]
    assert visible_sections(page) == [("summarize", "prompt")] * 3
    assert page.locator("#shown").inner_text() == "3 of 9 shown"  # type: ignore[attr-defined]

    page.select_option("#step-filter", "")  # type: ignore[attr-defined]
    page.select_option("#cause-filter", "propagated")  # type: ignore[attr-defined]
    assert sorted({step for step, _ in visible_sections(page)}) == ["shout", "sign"]

    page.select_option("#cause-filter", "")  # type: ignore[attr-defined]
    page.check("#drift-only")  # type: ignore[attr-defined]
    # shout stays within its own budget (+400%); sign, under the project's +20%, does not.
    assert (
        sorted(visible_sections(page))
        == [("sign", "propagated")] * 3 + [("summarize", "prompt")] * 3
    )
