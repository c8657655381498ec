"""Untrusted text made inert in Markdown: shown as written, never taken as markup.

Step outputs and inputs, case ids, test, step and prompt names, prompt diffs, scores and
judges' reasons reach the Markdown report, which CI posts as a pull-request comment. A
model's answer must not be able to close a code span and go on as an image, a link, bold
text or raw HTML there, so every piece of such text goes through one of these helpers:

- ``code_span``: a code span fenced by a longer backtick run than the value holds (as
  CommonMark allows), padded with a space where the value begins or ends with a backtick
  or a space;
- ``fenced_block``: a fenced block whose fence is longer than any backtick run inside;
- ``escape_text``: plain text with every character that could start markup escaped (``<``
  and ``&`` as character references, which every Markdown dialect and HTML read as text);
- ``table_cell``: a cell's Markdown with its pipes escaped, which GFM tables split on
  before anything else, even inside code spans.

Line breaks and other control characters are shown as escapes (``\\n``, ``\\x1b``) by
``visible``: a line break inside a span or a cell would let the next line start a new
block (a heading, a list, the end of a table).
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED_CONTROLS = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_BACKTICK_RUN = re.compile(r"`+")
# What starts CommonMark's inline markup (code, emphasis, links, images) and GFM's and
# GitHub's (strikethrough, tables, autolinked URLs and emails, mentions, issue references,
# math): escaped with a backslash.
_MARKUP = re.compile(r"[\\`*_~\[\]!|$:@#]|(?<=[wW]{3})\.")
# What starts raw HTML, autolinks and entities: written as character references, which
# every Markdown dialect and HTML read as text.
_HTML = re.compile(r"[<&]")
_REFERENCES = {"<": "&lt;", "&": "&amp;"}
_EDGE_SPACE = re.compile(r"^\s+|\s+$")


def visible(text: str) -> str:
    """``text`` on one line: control characters, line breaks among them, as escapes."""
    return _CONTROL.sub(
        lambda found: _NAMED_CONTROLS.get(found[0], f"\\x{ord(found[0]):02x}"), text
    )


def longest_backtick_run(text: str) -> int:
    return max((len(run) for run in _BACKTICK_RUN.findall(text)), default=0)


def code_span(value: str) -> str:
    """``value`` as an inline code span whose content is exactly ``visible(value)``; an
    empty value is no span at all (CommonMark has no empty code span)."""
    text = visible(value)
    if not text:
        return ""
    if text[0] == text[-1] == " " and not text.strip() and text.strip(" "):
        # Only whitespace, spaces at both ends, other whitespace inside: CommonMark and
        # markdown-it disagree on whether a space is stripped from each end, so the other
        # whitespace is shown escaped.
        text = "".join(c if c == " " else f"\\u{ord(c):04x}" for c in text)
    fence = "`" * (longest_backtick_run(text) + 1)
    # A backtick at either end would join the fence; spaces at both ends would lose one
    # each. CommonMark strips exactly one space from each end of padded content.
    padded = text[0] == "`" or text[-1] == "`" or (text[0] == text[-1] == " " and text.strip())
    pad = " " if padded else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def fenced_block(text: str, info: str = "") -> list[str]:
    """The lines of a fenced code block showing ``text`` as it is: its fence is longer
    than any backtick run in it, so no line of ``text`` can close it."""
    fence = "`" * max(3, longest_backtick_run(text) + 1)
    return [fence + info, *text.removesuffix("\n").split("\n"), fence]


def _edge_space(found: re.Match[str]) -> str:
    return "".join(f"&#{ord(c)};" for c in found[0])


def escape_text(text: str) -> str:
    """``text`` as plain Markdown text that renders as written: on one line, every
    character that could start markup backslash-escaped (raw HTML and entities by a
    character reference), and whitespace at either end written as a character reference,
    so that ``**`` around it still makes it bold."""
    escaped = _MARKUP.sub(r"\\\g<0>", visible(text))
    escaped = _HTML.sub(lambda found: _REFERENCES[found[0]], escaped)
    return _EDGE_SPACE.sub(_edge_space, escaped)


def table_cell(markdown: str) -> str:
    """A table cell holding ``markdown`` (escaped text or code spans): GFM splits a row on
    every pipe not preceded by a backslash, inside code spans too, and then drops that
    backslash, so each pipe gets one more."""
    return markdown.replace("|", "\\|")
