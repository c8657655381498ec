"""The helpers that keep untrusted text inert in the Markdown report, checked by parsing
their output with a CommonMark parser (markdown-it-py, GFM tables and strikethrough on,
linkify off as in CommonMark) for any text."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from pytest_promptflow.report.markdown_escape import (
    code_span,
    escape_text,
    fenced_block,
    table_cell,
    visible,
)

# The machine is shared: how long an example takes says nothing.
untimed = settings(deadline=None)

MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])
# Text that hypothesis makes from this alphabet is dense in markup: every CommonMark and
# GFM construct starts with one of these characters or words.
MARKUP = [
    *"`*_~[]()!<>&|\\#:@$=-+.;\"' \t\n\r\x00",
    "http://x.test",
    "www.x.test",
    "javascript:",
    "<img src=x>",
    "<script>",
    "&lt;",
    "&#42;",
    "a@b.test",
    "```",
    "~~~",
    "a",
    "é",
    "\u00a0",
]
hostile = st.lists(st.sampled_from(MARKUP), max_size=12).map("".join)
texts = hostile | st.text()

HOSTILE_PAYLOADS = [
    "ok` ![tracker](http://127.0.0.1:9/t.png) **ALL CHECKS PASSED** `",
    "`",
    "``",
    "a ``` b",
    "````",
    "![x](http://127.0.0.1:9/x.png)",
    "[link](javascript:alert(1))",
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "**bold** __strong__ _em_ *em* ~~gone~~",
    "<http://127.0.0.1:9/auto>",
    "http://127.0.0.1:9/bare www.example.test a@b.test",
    "a | b || c",
    "line one\nline two\n\n# heading",
    "&lt;b&gt; &amp; &#60;i&#62;",
    "\\`escaped\\`",
    "[ref]: http://127.0.0.1:9/ref",
    " padded ",
    "- [x] task",
]


def inline_tokens(source: str) -> list[Token]:
    """The inline tokens of ``source``, which must parse as one paragraph."""
    blocks = MARKDOWN.parse(source)
    assert [token.type for token in blocks] == ["paragraph_open", "inline", "paragraph_close"]
    children = blocks[1].children
    assert children is not None
    return children


def table_cell_tokens(cell: str) -> list[Token]:
    """The inline tokens of the one body cell of a table."""
    blocks = MARKDOWN.parse(f"| head |\n|---|\n| {cell} |\n")
    cells = [token for token in blocks if token.type == "td_open"]
    assert len(cells) == 1
    inline = blocks[blocks.index(cells[0]) + 1]
    assert inline.type == "inline"
    return inline.children or []


def shown(value: str) -> str:
    """What a span or escaped text shows of ``value``: itself, on one line."""
    return visible(value)


# -- code spans --------------------------------------------------------------------------


@untimed
@given(texts)
@example("ok` ![x](http://x) **PASSED** `")
@example(" `")
@example("  ")
@example(" x ")
@example(" \u00a0 ")
@example("`` ` ``")
def test_a_code_span_shows_its_value_and_nothing_else(value: str) -> None:
    assume(visible(value))
    expected = shown(value)
    # All whitespace, spaces at both ends: the other whitespace is shown escaped.
    whitespace_only = expected.startswith(" ") and expected.endswith(" ") and not expected.strip()
    assume(not whitespace_only or set(expected) == {" "})

    tokens = inline_tokens(f"before {code_span(value)} after")

    assert [token.type for token in tokens] == ["text", "code_inline", "text"]
    assert tokens[1].content == expected
    assert (tokens[0].content, tokens[2].content) == ("before ", " after")


@untimed
@given(texts)
def test_a_code_span_in_a_table_cell_shows_its_value(value: str) -> None:
    assume(visible(value))
    expected = shown(value)
    assume(not (expected.startswith(" ") and expected.endswith(" ") and not expected.strip()))

    tokens = table_cell_tokens(table_cell(code_span(value)))

    assert [token.type for token in tokens] == ["code_inline"]
    assert tokens[0].content == expected


def test_a_code_span_is_fenced_longer_than_the_values_backtick_runs() -> None:
    assert code_span("x") == "`x`"
    assert code_span("a ` b") == "``a ` b``"
    assert code_span("a ``` b") == "````a ``` b````"
    assert code_span("`x") == "`` `x ``"
    assert code_span(" x ") == "`  x  `"
    assert code_span("") == ""
    assert code_span("two\nlines") == "`two\\nlines`"
    # Parsers disagree on stripping a space from each end of " \u00a0 " (CommonMark
    # does, markdown-it does not): the other whitespace is shown escaped, padded.
    assert code_span(" \u00a0 ") == "`  \\u00a0  `"
    (span,) = inline_tokens(code_span(" \u00a0 "))
    assert span.content == " \\u00a0 "


# -- plain text ----------------------------------------------------------------------------


@untimed
@given(texts)
@example("**bold** _em_")
@example(" edges\u00a0")
def test_escaped_text_is_shown_as_written_and_starts_no_markup(value: str) -> None:
    tokens = inline_tokens(f"before {escape_text(value)} after")

    assert {token.type for token in tokens} == {"text"}
    assert "".join(token.content for token in tokens) == f"before {shown(value)} after"


@untimed
@given(texts)
def test_escaped_text_in_bold_is_one_strong_span(value: str) -> None:
    assume(value)

    tokens = inline_tokens(f"case **{escape_text(value)}** (drift)")

    types = [token.type for token in tokens]
    assert types[:2] == ["text", "strong_open"]
    assert types[-2:] == ["strong_close", "text"]
    assert set(types[2:-2]) <= {"text"}
    assert "".join(token.content for token in tokens[2:-2]) == shown(value)


@untimed
@given(texts)
def test_escaped_text_in_a_table_cell_is_one_cell(value: str) -> None:
    tokens = table_cell_tokens(table_cell(escape_text(value)))

    assert {token.type for token in tokens} <= {"text"}
    assert "".join(token.content for token in tokens) == shown(value)


def test_escaped_text_stays_readable_where_nothing_needs_escaping() -> None:
    detail = "classify changed 1a2b3c4d5e6f -> 0f9e8d7c6b5a; its inputs changed too (from x)"
    assert escape_text(detail) == detail
    assert escape_text("<b>&lt;") == "&lt;b>&amp;lt;"
    assert escape_text("see www.x.test") == "see www\\.x.test"


# -- blocks --------------------------------------------------------------------------------


def normalized(text: str) -> str:
    """What a CommonMark parser reads of ``text``: its line endings as \\n, NUL replaced."""
    return re.sub(r"\r\n?", "\n", text).replace("\0", "\ufffd")


@untimed
@given(texts)
@example("--- a\n+++ b\n-```\n+````python\n```")
def test_a_fenced_block_holds_the_text_whatever_its_fences(text: str) -> None:
    blocks = MARKDOWN.parse("\n".join(fenced_block(text, "diff")) + "\n\nafter\n")

    assert [token.type for token in blocks[:1]] == ["fence"]
    assert blocks[0].info == "diff"
    expected = normalized(text)
    assert blocks[0].content == (expected if expected.endswith("\n") else expected + "\n")
    assert [token.type for token in blocks[1:]] == [
        "paragraph_open",
        "inline",
        "paragraph_close",
    ]


# -- fixed payloads, every helper ----------------------------------------------------------

MADE_BY_MARKUP = {
    "image",
    "link_open",
    "em_open",
    "strong_open",
    "s_open",
    "html_inline",
    "html_block",
    "heading_open",
    "hardbreak",
    "softbreak",
}


@pytest.mark.parametrize("payload", HOSTILE_PAYLOADS)
def test_hostile_payloads_render_as_their_text(payload: str) -> None:
    for source in [
        f"x {code_span(payload)} y",
        f"x {escape_text(payload)} y",
        f"| a | b |\n|---|---|\n| {table_cell(code_span(payload))} | "
        f"{table_cell(escape_text(payload))} |",
    ]:
        tokens = MARKDOWN.parse(source)
        everything = [*tokens, *(child for token in tokens for child in token.children or [])]
        assert not {token.type for token in everything} & MADE_BY_MARKUP, source
        text = "".join(
            token.content for token in everything if token.type in ("text", "code_inline")
        )
        assert shown(payload) in text
