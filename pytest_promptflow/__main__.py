"""``python -m pytest_promptflow review`` and ``python -m pytest_promptflow accept``: the
pending changes the last sessions found, reviewed step by step or accepted by selection."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_promptflow.errors import PromptflowError
from pytest_promptflow.review.apply import apply
from pytest_promptflow.review.pending import (
    DEFAULT_CACHE_DIR,
    PendingChange,
    pending_path,
    read_pending,
)
from pytest_promptflow.review.run import review_pending
from pytest_promptflow.review.screen import Outcome
from pytest_promptflow.review.store import write_remaining


def main(arguments: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_promptflow",
        description="Review and accept the changes pytest-promptflow found (drift, budget "
        "overruns, broken expected values), step by step, without running the tests.",
    )
    parser.add_argument(
        "--rootdir", type=Path, default=Path("."), help="the project's rootdir (default: .)"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help=f"pytest's cache directory (default: ROOTDIR/{DEFAULT_CACHE_DIR})",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "review",
        help="one screen per case and step: a accept, r reject, s skip, A/R/S every change "
        "left, d full diff, q quit; without a terminal, print each change and its command",
    )
    accept = commands.add_parser("accept", help="accept the pending changes selected")
    accept.add_argument("--step", help="only the changes of this step")
    accept.add_argument("--cause", help="only changes with this cause (prompt, model...)")
    accept.add_argument("--case", help="only the changes of this case id")
    accept.add_argument("--test", help="only the changes of this test (its node id)")
    options = parser.parse_args(arguments)
    rootdir = options.rootdir.resolve()
    path = pending_path(options.cache_dir or rootdir / DEFAULT_CACHE_DIR)
    if options.command == "review":
        return review_pending(rootdir, path)
    try:
        entries = read_pending(path)
    except PromptflowError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return _accept(rootdir, path, entries, options)


def _accept(
    rootdir: Path, path: Path, entries: list[PendingChange], options: argparse.Namespace
) -> int:
    chosen = [
        entry
        for entry in entries
        if (options.step is None or entry.step == options.step)
        and (options.cause is None or options.cause in entry.causes)
        and (options.case is None or entry.case == options.case)
        and (options.test is None or entry.test == options.test)
    ]
    if not chosen:
        print("no pending change matches; nothing accepted")
        return 0
    applied = apply(rootdir, chosen, entries)
    write_remaining(path, entries, applied.accepted, rootdir, applied.files)
    outcome = Outcome(accepted=applied.accepted, refused=applied.refused, files=applied.files)
    for entry in applied.accepted:
        print(f"accepted: {entry.test} step {entry.step} ({', '.join(entry.causes)})")
    print("\n".join(outcome.summary_lines()))
    return 1 if applied.refused else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # a pager or ``head`` stopped reading: nothing more to say
        # As the Python documentation advises: the rest of the output goes nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
