"""``python -m pytest_promptflow.report merge shard-*.json --out report.md --out report.html``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_promptflow.errors import PromptflowError
from pytest_promptflow.report.merge import merge_command


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
    options = parser.parse_args(arguments)
    try:
        merge_command(options.reports, options.out)
    except PromptflowError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    written = ", ".join(str(path) for path in dict.fromkeys(options.out))
    print(f"merged {len(options.reports)} report(s) into {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
