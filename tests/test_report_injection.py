"""A model's output cannot rewrite the Markdown report that CI posts as a pull-request
comment: a project whose model answers with Markdown, HTML and script payloads, whose
case ids, test ids, step names, prompt name and prompt template hold them too, renders
(by a CommonMark parser) no image, link, emphasis, HTML or heading a payload made, and
still shows every payload as text. The same for the report merged from JSON shards."""

from __future__ import annotations

import json
import textwrap
from html.parser import HTMLParser

import pytest
from llm_fakes import Project, run_merge_command
from markdown_it import MarkdownIt
from markdown_it.token import Token

from pytest_promptflow.report.markdown_escape import visible

# No backslash or double quote, so that each reads the same in a JSON-quoted value.
PAYLOADS = [
    "ok` ![tracker](http://127.0.0.1:9/t.png) **ALL CHECKS PASSED** `",
    "[link](javascript:alert(1)) and <http://127.0.0.1:9/auto> http://127.0.0.1:9/bare",
    "<img src=x onerror=alert(1)><script>alert(1)</script>",
    "**bold** _em_ ~~gone~~ | pipe || two",
    "line one\n\n# heading\n<details open>",
    "&lt;b&gt; &#60;i&#62; ``` fence `` ticks",
]
ANSWER_STEP = "answer` ![s](http://127.0.0.1:9/s.png) `"
ECHO_STEP = "<b>echo</b> | **x** [y](http://127.0.0.1:9/y)"
PROMPT_NAME = "prompt`\n\n<img src=x onerror=alert(1)>"
TEST_ID = "id` ![t](http://127.0.0.1:9/t.png) **PASSED** `"
CURRENCY = "<img src=c>"
OLD_PROMPT = "Answer briefly: {{ text }}"
NEW_PROMPT = (
    "Answer `x` ![p](http://127.0.0.1:9/p.png) <script>p()</script>\n"
    "```\n{{ text }}\n````\n</details>\n"
)

CHAIN = """
from typing import Annotated

import pytest
from pydantic import BaseModel

from endpoint import openai_client
from pytest_promptflow import Prompt, drift, step

PROMPT = Prompt.load("prompts/answer.j2", name={prompt_name!r})


def judge(old, new, criteria):
    return drift.Verdict(equivalent=True, reason=str(new))


class Ticket(BaseModel):
    text: str


class Answer(BaseModel):
    text: str
    reason: Annotated[str, drift.judged("the same answer", judge=judge)]
    exact: Annotated[str, drift.exact()]
    labels: dict[str, str]


@step(name={answer_step!r}, prompt=PROMPT)
def answer(ticket: Ticket) -> Answer:
    reply = openai_client().chat.completions.create(
        model="gpt-4o-mini",
        messages=[{{"role": "user", "content": PROMPT.render(text=ticket.text)}}],
    )
    text = reply.choices[0].message.content
    return Answer(text=text, reason=text, exact=text, labels={{text: text}})


@step(name={echo_step!r})
def echo(answer: Answer) -> Annotated[str, drift.exact()]:
    return answer.text


@pytest.mark.promptflow_cases("tickets.jsonl", model=Ticket)
def test_chain(chain_case):
    echo(answer(chain_case.input))


@pytest.mark.promptflow
@pytest.mark.parametrize("text", ["named"], ids=[{test_id!r}])
def test_named(text):
    echo(answer(Ticket(text=text)))
"""


@pytest.fixture
def hostile(project: Project) -> Project:
    """Recorded with plain answers, then with the hostile template and answers."""
    (project.path / "fixtures").mkdir()
    cases = [{"id": payload, "text": f"ticket {i}"} for i, payload in enumerate(PAYLOADS)]
    (project.path / "fixtures" / "tickets.jsonl").write_text(
        "".join(json.dumps(case) + "\n" for case in cases)
    )
    (project.path / "prompts").mkdir()
    prompt = project.path / "prompts" / "answer.j2"
    (project.path / "pyproject.toml").write_text(
        f'[tool.promptflow.prices]\ncurrency = "{CURRENCY}"\n'
        '"gpt-4o-mini" = { input = 0.15, output = 0.60 }\n'
    )
    project.pytester.makeini("[pytest]\npromptflow_budget = tokens +5%\n")
    texts = [f"ticket {i}" for i in range(len(PAYLOADS))] + ["named"]
    replies = [*PAYLOADS, TEST_ID]
    for text, reply in zip(texts, replies, strict=True):
        project.llm.answers[OLD_PROMPT.replace("{{ text }}", text)] = "ok"
        project.llm.answers[NEW_PROMPT.replace("{{ text }}", text)] = reply
    project.write(
        textwrap.dedent(CHAIN).format(
            prompt_name=PROMPT_NAME, answer_step=ANSWER_STEP, echo_step=ECHO_STEP, test_id=TEST_ID
        )
    )
    prompt.write_text(OLD_PROMPT)
    project.record().assert_outcomes(passed=len(PAYLOADS) + 1)
    prompt.write_text(NEW_PROMPT)
    project.record(
        "--promptflow-report=drift.md", "--promptflow-report=drift.json", mode="new"
    ).assert_outcomes(failed=len(PAYLOADS) + 1)
    return project


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text += data


def every_token(tokens: list[Token]) -> list[Token]:
    return [*tokens, *(child for token in tokens for child in token.children or [])]


def inline_after(tokens: list[Token], opening: Token) -> list[Token]:
    """The inline tokens between ``opening`` and its closing token."""
    start = tokens.index(opening) + 1
    depth, found = 1, []
    for token in tokens[start:]:
        depth += token.nesting
        if depth == 0:
            return found
        found.append(token)
    raise AssertionError(f"{opening.type} is not closed")


def assert_inert(markdown: str) -> None:
    """The report renders no markup a payload made, and shows every payload as text."""
    # GFM's tables and strikethrough on; linkify off, as in CommonMark.
    blocks = MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(markdown)
    tokens = every_token(blocks)
    made = {"image", "link_open", "em_open", "s_open", "html_inline"}
    assert not [token for token in tokens if token.type in made]

    headings = [token for token in blocks if token.type == "heading_open"]
    assert [h.tag for h in headings] == ["h2", "h3", "h3"]
    titles = [blocks[blocks.index(h) + 1].children or [] for h in headings]
    assert [c.type for c in titles[0]] == ["text"]
    assert titles[0][0].content == "pytest-promptflow drift report"
    assert sorted([(c.type, c.content) for c in title] for title in titles[1:]) == sorted(
        [[("code_inline", ANSWER_STEP)], [("code_inline", ECHO_STEP)]]
    )

    names = {visible(payload) for payload in PAYLOADS} | {f"test_chain.py::test_named[{TEST_ID}]"}
    for token in tokens:
        if token.type == "strong_open":
            inline = [child for block in blocks if block.children for child in block.children]
            inner = inline_after(inline, token)
            assert {child.type for child in inner} == {"text"}
            text = "".join(child.content for child in inner)
            assert text in names or text == "drift" or text.endswith(("drifted", "over budget."))

    html_text = ""
    for token in tokens:
        if token.type == "html_block":
            parsed = _Tags()
            parsed.feed(token.content)
            assert all(attrs == [] for _, attrs in parsed.tags)
            assert {tag for tag, _ in parsed.tags} <= {"details", "summary", "code"}
            html_text += parsed.text
    assert f"prompt {visible(PROMPT_NAME)} diff" in html_text

    for table in (token for token in blocks if token.type == "table_open"):
        rows = inline_after(blocks, table)
        widths = {
            sum(cell.type in ("th_open", "td_open") for cell in inline_after(rows, row))
            for row in rows
            if row.type == "tr_open"
        }
        assert len(widths) == 1  # no pipe of a payload made a cell

    shown = "\n".join(
        token.content for token in tokens if token.type in ("text", "code_inline", "fence")
    )
    for payload in [*PAYLOADS, TEST_ID, ANSWER_STEP, ECHO_STEP, CURRENCY]:
        assert visible(payload) in shown, payload
    fences = [token.content for token in tokens if token.type == "fence"]
    template_lines = [f"+{line}\n" for line in NEW_PROMPT.splitlines()]
    assert any("".join(template_lines) in fence for fence in fences)


def test_the_markdown_report_renders_no_markup_from_a_run(hostile: Project) -> None:
    assert_inert((hostile.path / "drift.md").read_text(encoding="utf-8"))


def test_the_merged_markdown_report_renders_no_markup_from_the_shards(hostile: Project) -> None:
    done = run_merge_command("drift.json", "--out", "merged.md", cwd=hostile.path)

    assert done.returncode == 0, done.stderr
    assert_inert((hostile.path / "merged.md").read_text(encoding="utf-8"))
