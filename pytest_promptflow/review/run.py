"""The review as a command runs it: on a terminal, one screen per change; without one,
each change and the command that accepts it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO

from pytest_promptflow.errors import PromptflowError
from pytest_promptflow.review.pending import read_pending
from pytest_promptflow.review.screen import review, terminal_keys, without_terminal
from pytest_promptflow.review.store import write_remaining


def review_pending(
    rootdir: Path, path: Path, stdin: TextIO | None = None, stdout: TextIO | None = None
) -> int:
    """Review the pending changes at ``path``; the exit status of the command."""
    stdin = stdin or sys.__stdin__ or sys.stdin
    stdout = stdout or sys.__stdout__ or sys.stdout
    try:
        entries = read_pending(path)
    except PromptflowError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not (stdin.isatty() and stdout.isatty()):
        without_terminal(entries, stdout)
        return 0
    if not entries:
        print("no pending change to review", file=stdout)
        return 0
    color = "NO_COLOR" not in os.environ
    with terminal_keys() as key:
        outcome = review(rootdir, entries, key, stdout, color=color, clear=True)
    write_remaining(path, entries, outcome.accepted, rootdir, outcome.files)
    print("\n".join(outcome.summary_lines()), file=stdout)
    return 0
