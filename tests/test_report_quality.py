"""The quality table and the quality gate's lines of the Markdown report, read by a
CommonMark parser (markdown-it-py, GFM tables on) as a pull-request comment is: the rows
and requirements as the JSON report has them, and case ids and a test path that are
payloads shown as text, making no image, link, emphasis or HTML, also once merged."""

from __future__ import annotations

import pytest
from llm_fakes import Project, run_merge_command
from markdown_it import MarkdownIt
from markdown_it.token import Token
from quality_chains import (
    HOSTILE_CASES,
    HOSTILE_FOLDER,
    record_regression,
    report,
    write_hostile_project,
)

from pytest_promptflow.report.markdown_escape import visible

MADE_BY_A_PAYLOAD = {"image", "link_open", "em_open", "s_open", "html_inline", "html_block"}
Cell = list[tuple[str, str]]
"""A cell's inline tokens: (type, content)."""


def parse(markdown: str) -> list[Token]:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(markdown)


def inline_tokens(blocks: list[Token]) -> list[Token]:
    return [child for block in blocks for child in block.children or []]


def quality_table(blocks: list[Token]) -> list[list[Cell]]:
    """The rows of the table headed ``quality``, each cell as its inline tokens."""
    rows: list[list[Cell]] = []
    inside = False
    for token in blocks:
        if token.type == "table_open":
            inside, rows = True, []
        elif token.type == "table_close":
            if rows and rows[0][0] == [("text", "quality")]:
                return rows
            inside = False
        elif inside and token.type == "tr_open":
            rows.append([])
        elif inside and token.type == "inline":
            rows[-1].append([(child.type, child.content) for child in token.children or []])
    raise AssertionError("no quality table")


def gate_items(blocks: list[Token]) -> list[Cell]:
    """The items of the list after the quality gate's verdict."""
    start = next(
        n
        for n, token in enumerate(blocks)
        if token.type == "inline" and token.content.startswith(("**Quality gate", "Quality gate"))
    )
    items = []
    for token in blocks[start + 1 :]:
        if token.type == "bullet_list_close":
            break
        if token.type == "inline":
            items.append([(child.type, child.content) for child in token.children or []])
    return items


def text(cell: Cell) -> str:
    return "".join(content for kind, content in cell if kind in ("text", "code_inline"))


def test_the_quality_table_and_gate_lines_read_as_the_json_report(project: Project) -> None:
    regression = record_regression(project, "q.md", "q.json")
    blocks = parse((regression.path / "q.md").read_text(encoding="utf-8"))
    document = report(regression, "q.json")

    rows = quality_table(blocks)
    assert [text(cell) for cell in rows[0]] == [
        "quality",
        "field",
        "golden",
        "now",
        "fixed",
        "broken",
        "verdict",
    ]
    assert [r["field"] for r in document["quality"]] == ["category", "mentions_the_category"]
    category, metric = rows[1:]
    assert category[0] == [("code_inline", "test_classify")]
    assert category[1] == [("code_inline", "classify.category")]
    assert [text(cell) for cell in category[2:]] == [
        "7/10 70.0% [39.7-89.2]",
        "1/10 10.0% [1.8-40.4]",
        "—",
        "t0 t1 t2 t3 t4 t5",
        "worse p=0.0156",
    ]
    broken = [content for kind, content in category[5] if kind == "code_inline"]
    assert broken == document["quality"][0]["broken"]
    assert [text(cell) for cell in metric[1:4]] == [
        "classify.mentions_the_category",
        "10/10 100.0% [72.2-100.0]; mean 1.00 [1.00-1.00]",
        "10/10 100.0% [72.2-100.0]; mean 1.00 [1.00-1.00]",
    ]

    verdicts = [t.content for t in blocks if t.type == "inline" and "Quality gate" in t.content]
    assert verdicts == ["**Quality gate failed:** 1 requirement(s) not met."]
    assert [text(item) for item in gate_items(blocks)] == [
        "classify.category no worse: not met — test_chain.py::test_classify "
        "classify.category: worse, p=0.0156; broken t0 t1 t2 t3 t4 t5",
        "classify.mentions_the_category >= 50%: met — test_chain.py::test_classify "
        "classify.mentions_the_category: 10/10",
        "draft.* >= 90%: not evaluated — nothing scored",
    ]
    assert [r["passed"] for r in document["quality_gate"]] == [False, True, None]


def assert_quality_inert(markdown: str) -> None:
    """No markup made by a payload anywhere; every case id shown exactly in the quality
    table; the test's path and the case ids shown as text in the gate's lines."""
    blocks = parse(markdown)
    tokens = [*blocks, *inline_tokens(blocks)]
    assert not [token.type for token in tokens if token.type in MADE_BY_A_PAYLOAD]

    rows = quality_table(blocks)
    # No pipe of a payload made a cell.
    assert {len(row) for row in rows} == {7}
    [category] = rows[1:]
    assert (
        category[5]
        == [
            part
            for case in sorted(HOSTILE_CASES)
            for part in (("text", " "), ("code_inline", visible(case)))
        ][1:]
    )

    items = gate_items(blocks)
    assert len(items) == 2
    test_id = f"{HOSTILE_FOLDER}/test_chain.py::test_classify"
    for item in items:
        assert {kind for kind, _ in item} <= {"text", "code_inline", "strong_open", "strong_close"}
    assert text(items[0]) == (
        f"classify.category no broken: not met — {test_id} classify.category: broken "
        + " ".join(sorted(HOSTILE_CASES))
    )
    assert text(items[1]) == (
        f"classify.category >= 10%: not met — {test_id} classify.category: 0/4 = 0.0% < 10%"
    )


@pytest.fixture
def hostile(project: Project) -> Project:
    hostile = write_hostile_project(project)
    result = hostile.record("--promptflow-report=q.md", "--promptflow-report=q.json", mode="all")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the gate, not the tests
    return hostile


def test_payloads_in_the_quality_table_and_gate_lines_make_no_markup(hostile: Project) -> None:
    assert_quality_inert((hostile.path / "q.md").read_text(encoding="utf-8"))


def test_payloads_in_merged_quality_make_no_markup(hostile: Project) -> None:
    done = run_merge_command("q.json", "--out", "merged.md", cwd=hostile.path)

    assert done.returncode == 1, done.stderr  # the recorded requirements fail again
    assert_quality_inert((hostile.path / "merged.md").read_text(encoding="utf-8"))
