"""Usage cost: what reading tokens, cost and latency per step adds to replay.

The 4-step chain of ``bench/drift.py`` (extract -> classify -> resolve -> draft) runs
over N cases through the real openai SDK, recorded once from a local server with
prices declared in ``pyproject.toml``. With the server stopped, the recordings are
replayed alternately:

- with usage: as shipped, every case's figures are read from its replayed responses,
  priced, compared with the golden figures and judged by a budget (``tokens +20%``);
- without usage: the same run with the plugin's usage measurement replaced by one that
  returns nothing (a conftest patch that only this benchmark makes).

The time spent inside the usage measurement is also summed during the runs with usage.
Times cover the run of the tests, not start-up or collection; medians are kept.

    python bench/usage.py [--cases 1000] [--repeats 3] [--json PATH]
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
from pathlib import Path

from drift import STEPS, chain_arguments, record_project, run_pytest, write_project

PRICES = """
[tool.promptflow.prices]
currency = "USD"
"gpt-4o-mini" = { input = 0.15, output = 0.60 }
"""
BUDGET_INI = "[pytest]\npromptflow_budget = tokens +20%\n"
TIMED_USAGE = """
import time

import pytest_promptflow.plugin as _plugin

_measure = _plugin.measure_usage
_spent = [0.0]


def _timed(*args, **kwargs):
    started = time.perf_counter()
    try:
        return _measure(*args, **kwargs)
    finally:
        _spent[0] += time.perf_counter() - started


_plugin.measure_usage = _timed


def pytest_unconfigure(config):
    with open("usage_seconds.json", "w") as stream:
        stream.write(str(_spent[0]))
"""
NO_USAGE = """
import pytest_promptflow.plugin as _plugin
from pytest_promptflow.budget import CaseUsage


def _nothing(golden, known, run, consumed, prices, policy):
    return CaseUsage(run.test_id or "", run.case_id)


_plugin.measure_usage = _nothing
"""


def measure(workdir: Path, cases: int, repeats: int) -> dict[str, object]:
    with_usage = workdir / "with-usage"
    without_usage = workdir / "without-usage"
    write_project(with_usage, cases)
    (with_usage / "pyproject.toml").write_text(PRICES)
    (with_usage / "pytest.ini").write_text(BUDGET_INI)
    record_project(with_usage)
    shutil.copytree(with_usage, without_usage)
    conftest = (with_usage / "conftest.py").read_text()
    (with_usage / "conftest.py").write_text(conftest + TIMED_USAGE)
    (without_usage / "conftest.py").write_text(conftest + NO_USAGE)

    with_times, without_times, inside = [], [], []
    for _ in range(repeats):
        output = run_pytest(with_usage, "--promptflow-report=report.json")
        with_times.append(output.seconds)
        inside.append(float((with_usage / "usage_seconds.json").read_text()))
        report = json.loads((with_usage / "report.json").read_text())
        calls = sum(report["steps"][step]["usage"]["now"]["model_calls"] for step in STEPS)
        if calls != cases * len(STEPS):
            raise SystemExit(f"expected {cases * len(STEPS)} model calls measured, got {calls}")
        without_times.append(run_pytest(without_usage).seconds)
    with_s, without_s = statistics.median(with_times), statistics.median(without_times)
    inside_s = statistics.median(inside)
    return {
        "cases": cases,
        "steps_per_case": len(STEPS),
        "without_usage_s": round(without_s, 4),
        "with_usage_s": round(with_s, 4),
        "overhead_pct": round(100.0 * (with_s - without_s) / without_s, 1),
        "inside_usage_s": round(inside_s, 4),
        "inside_usage_pct": round(100.0 * inside_s / (with_s - inside_s), 2),
        "runs_with_s": [round(s, 3) for s in with_times],
        "runs_without_s": [round(s, 3) for s in without_times],
    }


def main() -> None:
    arguments = chain_arguments(__doc__.split("\n\n")[0])
    with tempfile.TemporaryDirectory(prefix="promptflow-usage-bench-") as temporary:
        result = measure(Path(temporary), arguments.cases, arguments.repeats)
    print(
        f"{result['cases']} cases x {len(STEPS)} steps; median of {arguments.repeats} runs each\n"
        f"without usage {result['without_usage_s']:.3f} s, with usage {result['with_usage_s']:.3f}"
        f" s ({result['overhead_pct']:+.1f}%); inside the usage measurement "
        f"{result['inside_usage_s']:.3f} s ({result['inside_usage_pct']:.2f}% of the rest)\n"
        f"runs (s): with {result['runs_with_s']}, without {result['runs_without_s']}"
    )
    if arguments.json is not None:
        arguments.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
