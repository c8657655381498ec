"""What the plugin costs tests that do not use it.

A suite of N trivial tests (no marker, no fixture of the plugin) runs with the plugin
loaded and with it disabled (``-p no:promptflow``); the runs alternate and the median
CPU time of each side's tests is kept, start-up and collection excluded. The
difference, divided by N, is what each plain test pays for the plugin being installed.

    python bench/plain_tests.py [--tests 5000] [--repeats 7] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from harness import TIMER_PLUGIN, timed_pytest

PLAIN_TESTS = """
import pytest

@pytest.mark.parametrize("number", range({tests}))
def test_plain(number):
    assert number >= 0
"""

WITH_PLUGIN = ("-p", "no:recording", "-p", "no:hypothesispytest")
WITHOUT_PLUGIN = (*WITH_PLUGIN, "-p", "no:promptflow")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=5000, help="trivial tests in the suite")
    parser.add_argument("--repeats", type=int, default=7, help="runs per side (median kept)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="promptflow-plain-bench-") as temporary:
        folder = Path(temporary)
        (folder / "conftest.py").write_text(TIMER_PLUGIN)
        (folder / "test_plain.py").write_text(PLAIN_TESTS.format(tests=arguments.tests))
        (folder / "pytest.ini").write_text("[pytest]\n")
        with_plugin, without_plugin = [], []
        for _ in range(arguments.repeats):
            with_plugin.append(timed_pytest(folder, *WITH_PLUGIN)[0].cpu_seconds)
            without_plugin.append(timed_pytest(folder, *WITHOUT_PLUGIN)[0].cpu_seconds)

    with_s = statistics.median(with_plugin)
    without_s = statistics.median(without_plugin)
    per_test_us = 1e6 * (with_s - without_s) / arguments.tests
    print(
        f"{arguments.tests} plain tests, CPU time of the tests, median of {arguments.repeats} "
        f"runs: {without_s:.3f} s without the plugin, {with_s:.3f} s with it, "
        f"{per_test_us:+.1f} µs per test"
    )
    if arguments.json is not None:
        result = {
            "tests": arguments.tests,
            "without_plugin_s": round(without_s, 4),
            "with_plugin_s": round(with_s, 4),
            "per_test_us": round(per_test_us, 2),
        }
        arguments.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
