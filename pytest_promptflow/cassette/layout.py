"""How a JSON text was written: what writes a parsed body back as the bytes received.

A JSON body, or the JSON ``data`` of a server-sent event, is stored parsed, keys in the
order the server sent them, so that a recorded run stays readable. Its layout (the
separators, the indentation, whether non-ASCII characters were escaped, a final newline)
is found when it is recorded, by writing the parsed value back and comparing, and is
stored beside it as a short string such as ``"spaced"`` or ``"indent=2 keys-spaced
newline"``. A text no layout reproduces (``1.50``, ``1e3``, ``-0``, escaped slashes, keys
repeated) is stored as received as well, and that text is what replays.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SEPARATORS: dict[str, tuple[str, str]] = {
    "compact": (",", ":"),
    "spaced": (", ", ": "),
    "keys-spaced": (",", ": "),
    "items-spaced": (", ", ":"),
}
"""Named (item, key) separators, the most common first: tried in this order."""
_NAMES = {separators: name for name, separators in SEPARATORS.items()}
MAX_INDENT = 16


@dataclass(frozen=True, slots=True)
class JsonLayout:
    """The way ``json.dumps`` writes a value back as a server wrote it."""

    separators: tuple[str, str]
    indent: int | str | None = None
    """Spaces per level, ``"\\t"``, or None for one line."""
    ensure_ascii: bool = False
    newline: bool = False
    """A newline after the document."""

    @classmethod
    def parse(cls, text: str) -> JsonLayout:
        """The layout a stored string names; ValueError for anything else."""
        separators: tuple[str, str] | None = None
        indent: int | str | None = None
        ensure_ascii = newline = False
        for token in text.split(" "):
            if token in SEPARATORS and separators is None:
                separators = SEPARATORS[token]
            elif token == "ascii" and not ensure_ascii:
                ensure_ascii = True
            elif token == "newline" and not newline:
                newline = True
            elif token.startswith("indent=") and indent is None:
                width = token.removeprefix("indent=")
                if width == "tab":
                    indent = "\t"
                elif width.isdigit() and width.isascii() and 0 < int(width) <= MAX_INDENT:
                    indent = int(width)
                else:
                    raise ValueError(f"{token!r} is not an indentation")
            else:
                raise ValueError(f"{token!r} is not part of a JSON layout")
        if separators is None:
            raise ValueError(f"a JSON layout names its separators ({', '.join(SEPARATORS)})")
        return cls(separators, indent, ensure_ascii, newline)

    def __str__(self) -> str:
        tokens = [_NAMES[self.separators]]
        if self.indent is not None:
            tokens.append(f"indent={'tab' if self.indent == chr(9) else self.indent}")
        if self.ensure_ascii:
            tokens.append("ascii")
        if self.newline:
            tokens.append("newline")
        return " ".join(tokens)

    def write(self, value: Any) -> str:
        return _encoder(self)(value) + ("\n" if self.newline else "")

    @classmethod
    def of(cls, text: str, value: Any) -> JsonLayout | None:
        """The layout that writes ``value`` (parsed from ``text``) back as ``text``
        exactly, None when none does."""
        core = text.removesuffix("\n")
        if not core or core[0].isspace() or core[-1].isspace():
            return None
        indent: int | str | None = None
        if "\n" in core:
            second = core.split("\n", 2)[1]
            lead = second[: len(second) - len(second.lstrip(" \t"))]
            if lead == "\t":
                indent = "\t"
            elif lead and lead == " " * len(lead) and len(lead) <= MAX_INDENT:
                indent = len(lead)
            else:
                return None
        # Text without non-ASCII characters and escapes is written alike either way.
        escapes = [False, True] if core.isascii() and "\\u" in core else [False]
        order = list(SEPARATORS.values())
        if indent is not None:  # json.dumps's own separators with an indent come first
            order.sort(key=lambda separators: separators != (",", ": "))
        for ensure_ascii in escapes:
            for separators in order:
                layout = cls(separators, indent, ensure_ascii, core != text)
                if layout.write(value) == text:
                    return layout
        return None


BODY_DEFAULT = JsonLayout(SEPARATORS["spaced"])
"""How a response body without a stored layout replays (every body of older files)."""
EVENT_DEFAULT = JsonLayout(SEPARATORS["compact"])
"""How an event's data without a stored layout replays (every event of older files)."""


@functools.lru_cache(maxsize=64)
def _encoder(layout: JsonLayout) -> Callable[[Any], str]:
    return json.JSONEncoder(
        ensure_ascii=layout.ensure_ascii,
        indent=layout.indent,
        separators=layout.separators,
        allow_nan=True,
    ).encode


@functools.lru_cache(maxsize=64)
def writer(stored: str | None, default: JsonLayout) -> Callable[[Any], str]:
    """What writes a stored body or event's data back: by its stored layout, else the way
    files without one always replayed."""
    layout = JsonLayout.parse(stored) if stored is not None else default
    return layout.write


def stored_layout(text: str, value: Any, default: JsonLayout) -> tuple[str | None, bool]:
    """(the layout to store for ``value`` parsed from ``text``, None for ``default``;
    whether ``text`` must be stored too, no layout reproducing it)."""
    if default.write(value) == text:
        return None, False
    layout = JsonLayout.of(text, value)
    return (None, True) if layout is None else (str(layout), False)
