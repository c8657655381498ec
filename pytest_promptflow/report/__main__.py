"""``python -m pytest_promptflow.report merge shard-*.json --out report.md --out report.html``
and ``python -m pytest_promptflow.report compare BASE.json HEAD.json``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_promptflow.errors import PromptflowError
from pytest_promptflow.report.merge import compare_reports, comparison_lines, merge_command


def main(arguments: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_promptflow.report",
        description="Work with pytest-promptflow reports.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    merge = commands.add_parser(
        "merge", help="Join the JSON reports of several runs into one .md, .json or .html report."
    )
    merge.add_argument("reports", nargs="+", type=Path, help="JSON reports (--promptflow-report)")
    merge.add_argument(
        "--out",
        action="append",
        required=True,
        type=Path,
        help="the merged report's path (.md, .json or .html); give it again to write several",
    )
    compare = commands.add_parser(
        "compare",
        help="Pair the quality outcomes of two JSON reports case by case (BASE's as the "
        "golden side, HEAD's as now); exit 1 when HEAD is worse on any row.",
    )
    compare.add_argument("base", type=Path, help="the JSON report of the base run")
    compare.add_argument("head", type=Path, help="the JSON report of the run compared with it")
    options = parser.parse_args(arguments)
    if options.command == "compare":
        return _compare(options.base, options.head)
    try:
        merged = merge_command(options.reports, options.out)
    except PromptflowError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    written = ", ".join(str(path) for path in dict.fromkeys(options.out))
    print(f"merged {len(options.reports)} report(s) into {written}")
    if merged.quality_gate_failed:
        print("promptflow quality gate failed:", file=sys.stderr)
        for result in merged.quality_gate:
            if result.passed is False:
                print(f"  {result.requirement}: {result.detail}", file=sys.stderr)
        return 1
    return 0


def _compare(base: Path, head: Path) -> int:
    try:
        rows = compare_reports(base, head)
    except PromptflowError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for line in comparison_lines(rows):
        print(line)
    worse = [row for row in rows if row.verdict() == "worse"]
    if worse:
        names = ", ".join(f"{row.step}.{row.name} ({row.test})" for row in worse)
        print(f"HEAD is worse than BASE on {names}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
