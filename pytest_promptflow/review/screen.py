"""The review: one screen per case and step, a key per decision, as cargo-insta's
``review`` does with snapshots.

``a`` accepts the change (its new golden values are written into the recorded run, with
no test run and no network call), ``r`` rejects it (the file stays as it is and the test
failing), ``s`` skips it; ``A``, ``R`` and ``S`` do the same for every change left; ``d``
shows the whole change (every value in full, the prompt's template diff); ``q`` quits,
keeping what was decided. Rejected and skipped changes stay pending, accepted ones leave.
Without a terminal, the review prints each pending change and the command that accepts
it, and changes nothing.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pytest_promptflow.review.apply import Applied, apply, stale
from pytest_promptflow.review.pending import PendingChange, step_accept_command

KeyReader = Callable[[], str]
KEYS_HELP = "a accept  r reject  s skip  A/R/S every change left  d full diff  q quit"
_CLEAR_SCREEN = "\x1b[H\x1b[2J"
_WORDS = re.compile(r"\s+|\w+|[^\w\s]")


@dataclass
class Outcome:
    """What a review did."""

    accepted: list[PendingChange] = field(default_factory=list)
    rejected: list[PendingChange] = field(default_factory=list)
    skipped: list[PendingChange] = field(default_factory=list)
    refused: list[tuple[PendingChange, str]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def add(self, applied: Applied) -> None:
        self.accepted += applied.accepted
        self.refused += applied.refused
        self.files += applied.files

    def summary_lines(self) -> list[str]:
        lines = [
            f"accepted {len(self.accepted)}, rejected {len(self.rejected)}, skipped "
            f"{len(self.skipped)}" + (f", refused {len(self.refused)}" if self.refused else "")
        ]
        for entry, why in self.refused:
            lines.append(f"refused: {entry.test} step {entry.step}: {why}")
        if self.files:
            lines.append(f"recorded runs changed ({len(self.files)}):")
            lines += [f"  {name}" for name in self.files]
        else:
            lines.append("no recorded run changed")
        return lines


def marked_words(old: str, new: str, color: bool) -> tuple[str, str]:
    """Both texts, the words only in the golden one marked ``[-...-]``, only in the new
    one ``{+...+}`` (in red and green on a colour terminal too)."""
    before, after = _WORDS.findall(old), _WORDS.findall(new)
    left: list[str] = []
    right: list[str] = []
    removed_open, removed_close = ("\x1b[31m[-", "-]\x1b[0m") if color else ("[-", "-]")
    added_open, added_close = ("\x1b[32m{+", "+}\x1b[0m") if color else ("{+", "+}")
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        removed, added = "".join(before[i1:i2]), "".join(after[j1:j2])
        if tag == "equal":
            left.append(removed)
            right.append(added)
            continue
        if removed:
            left.append(f"{removed_open}{removed}{removed_close}")
        if added:
            right.append(f"{added_open}{added}{added_close}")
    return "".join(left), "".join(right)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _visible_length(text: str) -> int:
    return len(re.sub(r"\x1b\[[0-9;]*m", "", text))


def side_by_side(left: str, right: str, width: int) -> list[str]:
    """Two texts in two columns, golden on the left and new on the right, each wrapped."""
    column = max(20, (width - 7) // 2)
    lefts = textwrap.wrap(left, column) or [""]
    rights = textwrap.wrap(right, column) or [""]
    lines = []
    for position in range(max(len(lefts), len(rights))):
        a = lefts[position] if position < len(lefts) else ""
        b = rights[position] if position < len(rights) else ""
        lines.append(f"    {a}{' ' * (column - _visible_length(a))} │ {b}")
    return lines


def screen_lines(
    entry: PendingChange, position: int, total: int, width: int, color: bool, full: bool
) -> list[str]:
    """The screen of one pending change: the test, the cause, each changed field with its
    rule, verdict and score, golden and new side by side with the changed words marked;
    with ``full``, every value whole and each prompt's template diff."""
    title = f" [{position}/{total}] {entry.test} — step {entry.step} "
    lines = [title.center(width, "─"), f"recorded run: {entry.file}"]
    column = max(20, (width - 7) // 2)
    for drift in entry.drifts:
        occurrence = f" (call {drift['occurrence'] + 1})" if drift["occurrence"] else ""
        lines.append(f"cause{occurrence}: {drift['cause']} — {drift['detail']}")
        for change in drift["changes"]:
            verdict = "tolerated" if change["tolerated"] else "DRIFT"
            expected = f"; expected: {change['expected']}" if change.get("expected") else ""
            score = f", {change['score']}" if change.get("score") is not None else ""
            lines.append(f"  {change['path']}  [{change['rule']}{score}{expected}; {verdict}]")
            old, new = _text(change["old"]), _text(change["new"])
            if change["kind"] == "added":
                old = ""
            elif change["kind"] == "removed":
                new = ""
            if not full:
                old, new = _shortened(old, 3 * column), _shortened(new, 3 * column)
            marked_old, marked_new = marked_words(old, new, color)
            lines.append(f"    {'golden':<{column}} │ new")
            lines += side_by_side(marked_old, marked_new, width)
        if full:
            for prompt, diff in sorted(drift.get("prompt_diffs", {}).items()):
                if diff:
                    lines.append(f"  template diff of prompt {prompt}:")
                    lines += textwrap.indent(diff, "    ").splitlines()
    if entry.budget is not None:
        for overrun in entry.budget.get("over_budget", []):
            lines.append(
                f"over budget: {overrun['metric']} {overrun['golden']:g} -> {overrun['now']:g}"
                f"  [budget {overrun['limit']}]"
            )
    lines += ["", KEYS_HELP]
    return lines


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextlib.contextmanager
def terminal_keys() -> Iterator[KeyReader]:
    """A reader of single key presses from the terminal, without waiting for Enter. The
    terminal stays in that mode for the whole review, so that a key pressed as soon as a
    screen shows is neither echoed nor held for a line."""
    import termios
    import tty

    descriptor = (sys.__stdin__ or sys.stdin).fileno()  # not pytest's captured stdin
    saved = termios.tcgetattr(descriptor)
    tty.setcbreak(descriptor, termios.TCSANOW)  # keys typed ahead are kept
    try:
        yield lambda: os.read(descriptor, 1).decode("utf-8", "replace")
    finally:
        termios.tcsetattr(descriptor, termios.TCSADRAIN, saved)


def _files_in_order(entries: Sequence[PendingChange]) -> Iterator[list[PendingChange]]:
    by_file: dict[str, list[PendingChange]] = {}
    for entry in entries:
        by_file.setdefault(entry.file, []).append(entry)
    yield from by_file.values()


def review(
    rootdir: Path,
    entries: Sequence[PendingChange],
    key: KeyReader,
    out: TextIO,
    color: bool = False,
    width: int | None = None,
    clear: bool = False,
) -> Outcome:
    """Review ``entries`` one screen at a time, reading each decision with ``key``; the
    decisions on one recorded run are written when the review leaves its case's file
    (or quits)."""
    width = width or shutil.get_terminal_size((100, 30)).columns
    outcome = Outcome()
    hashes: dict[str, str | None] = {}
    reviewable = []
    for entry in sorted(entries, key=lambda e: (e.file, e.test, e.step)):
        problem = stale(entry, rootdir, hashes)
        if problem is None:
            reviewable.append(entry)
        else:
            outcome.refused.append((entry, problem))
    for entry, why in outcome.refused:
        print(f"refused: {entry.test} step {entry.step}: {why}", file=out)
    everything: str | None = None
    total = len(reviewable)
    position = 0  # of the change on screen, from 1
    for group in _files_in_order(reviewable):
        accepted: list[PendingChange] = []
        for entry in group:
            position += 1
            decision = everything
            full = False
            while decision is None:
                screen = screen_lines(entry, position, total, width, color, full)
                if clear:  # each change on a screen of its own, as cargo-insta shows them
                    out.write(_CLEAR_SCREEN)
                print("\n".join(screen), file=out)
                out.flush()
                pressed = key()
                if pressed in ("a", "r", "s"):
                    decision = pressed
                elif pressed in ("A", "R", "S"):
                    decision = everything = pressed.lower()
                elif pressed == "d":
                    full = True
                elif pressed in ("q", "", "\x04"):  # q, end of input, Ctrl-D
                    decision = "q"
                else:
                    print(f"unknown key {pressed!r}: {KEYS_HELP}", file=out)
            if decision == "q":
                # What was decided so far is kept; the rest stays pending.
                outcome.skipped += reviewable[position - 1 :]
                outcome.add(apply(rootdir, accepted, entries, hashes))
                return outcome
            if decision == "a":
                accepted.append(entry)
            elif decision == "r":
                outcome.rejected.append(entry)
            else:
                outcome.skipped.append(entry)
        outcome.add(apply(rootdir, accepted, entries, hashes))
    return outcome


def without_terminal(entries: Sequence[PendingChange], out: TextIO) -> None:
    """What a review prints when there is no terminal to answer it: each pending change
    and the command that accepts it; nothing changes."""
    if not entries:
        print("no pending change to review", file=out)
        return
    print(f"{len(entries)} pending change(s); no terminal to review them, so nothing "
          "changed. Each accepts with:", file=out)  # fmt: skip
    for entry in sorted(entries, key=lambda e: (e.file, e.test, e.step)):
        kinds = ", ".join(entry.kinds) or "changed"
        causes = ", ".join(entry.causes)
        print(f"- {entry.test} step {entry.step} ({kinds}; {causes}) in {entry.file}", file=out)
        print(f"    {step_accept_command(entry.test, entry.step)}", file=out)
