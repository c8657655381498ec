"""Quality cost: what scoring step outputs against expected values adds to replay.

The 4-step chain of ``bench/drift.py`` (extract -> classify -> resolve -> draft), its
``draft`` step given one metric, runs over N cases through the real openai SDK, recorded
once from a local server. The same recordings are then replayed alternately:

- without expected values: the cases as recorded, so each test is compared with its
  golden values and nothing is scored;
- with expected values: every case expects values of all 4 steps (9 fields: a
  ``Literal`` label, an int under ``exact``, texts under ``facts()``, lists under
  ``unordered``, an identifier under ``exact``), so that each of the 4 step calls of a
  test, and its golden value, is scored, and ``draft``'s metric (``links_expected``, the
  share of the expected links in the reply) is measured on both. Most expected values
  equal the recorded output; one case in ten says it in other words (texts reworded
  with the same facts, lists in another order) and one in twenty is wrong on every
  field, so that every rule compares, and the confusion matrix and the metric's
  interval have something to count.

Both sides write a JSON report, whose quality rows are checked against the expected
values written (every item scored, the right ones counted right). A timing plugin wraps
the quality code inside the runs: scoring (``CaseQuality``: its construction,
``items``, ``judged_changes``) and aggregating (``QualityTally.add``,
``QualityRow.to_json`` for the terminal table and the report, ``quality_lines``).
Times are the CPU time of the pytest process while it runs the tests, not start-up or
collection, medians of each side. During the replays the local server is listening on
the recordings' address and counts the requests it receives: any request fails the
benchmark.

    python bench/quality.py [--cases 1000] [--repeats 3] [--json PATH]
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drift import (
    CHAIN,
    PORT,
    STEPS,
    chain_arguments,
    completion,
    record_project,
    write_project,
)
from harness import TimedRuns, Timing, local_chat_completions, timed_pytest
from werkzeug import Request, Response

METRIC = '''

def links_expected(output: Reply, expected: dict) -> float:
    """The share of the expected links that the reply gives."""
    wanted = expected.get("links") or []
    return sum(link in output.links for link in wanted) / len(wanted) if wanted else 1.0
'''
CHAIN_WITH_METRIC = CHAIN.replace(
    "\n\n@step(prompt=DRAFT)", METRIC + "\n\n@step(prompt=DRAFT, metrics=[links_expected])"
)

EXPECTED_FIELDS = {
    "extract": ("summary", "symptoms"),
    "classify": ("category", "urgency", "tags"),
    "resolve": ("action", "kb_article"),
    "draft": ("body", "links"),
}
"""The fields each case expects, by step: a ``Literal`` label (``category``), ints and
identifiers under ``exact`` (``urgency``, ``kb_article``), texts under ``facts()``
(``summary``, ``action``, ``body``) and lists under ``unordered`` (``symptoms``,
``tags``, ``links``)."""
METRIC_NAME = "links_expected"
TEXTS = ("summary", "action", "body")
LISTS = ("symptoms", "tags", "links")
OTHER_CATEGORY = {
    "billing": "bug",
    "bug": "account",
    "account": "how-to",
    "how-to": "outage",
    "outage": "billing",
}

TIMED_QUALITY = """
import gc
import time

import pytest

import pytest_promptflow.session as _session
from pytest_promptflow.quality.case import CaseQuality as _CaseQuality
from pytest_promptflow.quality.tally import QualityRow as _QualityRow
from pytest_promptflow.quality.tally import QualityTally as _QualityTally

_spent = {"scoring": 0.0, "aggregating": 0.0, "collecting_garbage": 0.0}
_depth = [0]
_collecting = {"since": 0.0, "seconds": 0.0}


def _collection(phase, info):
    if phase == "start":
        _collecting["since"] = time.process_time()
    else:
        _collecting["seconds"] += time.process_time() - _collecting["since"]


gc.callbacks.append(_collection)


def _timed(function, part):
    # Only the outermost timed call counts (quality_lines calls QualityRow.to_json), and
    # without the garbage collections that happen to start inside it: they are counted
    # apart, over the whole run, since what a collection costs depends on every object
    # alive, not on the call that allocated last.
    def timed(*args, **kwargs):
        _depth[0] += 1
        started, collected = time.process_time(), _collecting["seconds"]
        try:
            return function(*args, **kwargs)
        finally:
            _depth[0] -= 1
            if not _depth[0]:
                elapsed = time.process_time() - started
                _spent[part] += elapsed - (_collecting["seconds"] - collected)

    return timed


for _name in ("__init__", "items", "judged_changes"):
    setattr(_CaseQuality, _name, _timed(getattr(_CaseQuality, _name), "scoring"))
_QualityTally.add = _timed(_QualityTally.add, "aggregating")
_QualityRow.to_json = _timed(_QualityRow.to_json, "aggregating")
_session.quality_lines = _timed(_session.quality_lines, "aggregating")


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    collected = _collecting["seconds"]
    try:
        return (yield)
    finally:
        _spent["collecting_garbage"] = _collecting["seconds"] - collected


def pytest_unconfigure(config):
    # The CPU time up to the end of collection (start-up included), and from there up to
    # now: the tests, then the reports and the terminal summary, which the timing of the
    # tests leaves out.
    collected = config._bench_started[1]
    spent = {**_spent, "collection": collected, "to_end": time.process_time() - collected}
    with open("quality_seconds.json", "w") as stream:
        stream.write(json.dumps(spent))
"""
REPORT = "report.json"


def expected_values(golden: dict[str, dict[str, Any]], number: int) -> dict[str, Any]:
    """What case ``number`` expects of each step, from the golden ``output`` by step: the
    output itself, in other words for one case in ten, wrong for one in twenty."""
    variant = number % 20
    expected: dict[str, Any] = {}
    for step, names in EXPECTED_FIELDS.items():
        values = {name: golden[step][name] for name in names}
        if variant in (17, 18):  # other words, the same answer
            values = {
                name: f"As far as we can tell, {value[0].lower()}{value[1:]}"
                if name in TEXTS
                else value[::-1]
                if name in LISTS
                else value
                for name, value in values.items()
            }
        elif variant == 19:  # wrong on every field
            values = {name: wrong(name, value) for name, value in values.items()}
        expected[step] = values
    return expected


def wrong(name: str, value: Any) -> Any:
    if name == "category":
        return OTHER_CATEGORY[value]
    if name == "urgency":
        return value % 5 + 1
    if name == "kb_article":
        return "KB-0000"
    if name in TEXTS:  # a number, a date and a name the output does not state
        return f"{value} It happened 3 times since 12 March, says Jordan."
    return [f"{item} (elsewhere)" for item in value]


def write_expected_cases(folder: Path) -> int:
    """Rewrite the case file of the recorded project in ``folder`` with every case's
    expected values; returns how many cases are wrong on every field."""
    cases_path = folder / "fixtures" / "cases.jsonl"
    cases = [json.loads(line) for line in cases_path.read_text().splitlines()]
    documents = [
        json.loads(path.read_text(encoding="utf-8"))
        for path in (folder / "cassettes").rglob("*.json")
    ]
    recorded = {document["case"]: document for document in documents}
    wrong_cases = 0
    for number, case in enumerate(cases):
        document = recorded[case["id"]]
        golden = {step["step"]: step["output"] for step in document["steps"]}
        if list(golden) != list(STEPS):
            raise SystemExit(f"case {case['id']} holds no golden value for every step")
        case["expected"] = expected_values(golden, number)
        wrong_cases += number % 20 == 19
    cases_path.write_text("".join(json.dumps(case) + "\n" for case in cases))
    return wrong_cases


def check_quality_rows(report: dict[str, Any], cases: int, wrong_cases: int) -> None:
    """Every expected field and the metric scored on every case, now and in the golden
    run, the cases written wrong counted wrong and no others."""
    found = {(row["step"], row["field"]): row for row in report["quality"]}
    wanted = {(step, name) for step, names in EXPECTED_FIELDS.items() for name in names}
    wanted.add(("draft", METRIC_NAME))
    if set(found) != wanted:
        raise SystemExit(f"expected quality rows {sorted(wanted)}, found {sorted(found)}")
    for (step, name), row in sorted(found.items()):
        for side in ("now", "golden"):
            rate = row[side]
            if rate is None or (rate["scored"], rate["correct"]) != (cases, cases - wrong_cases):
                raise SystemExit(
                    f"{step}.{name} {side}: expected {cases - wrong_cases}/{cases} right, "
                    f"found {rate}"
                )


@dataclass
class Side(TimedRuns):
    """One replay of the recordings, and its measured runs."""

    folder: Path
    cases: int
    runs: list[Timing] = field(default_factory=list)
    inside: list[dict[str, float]] = field(default_factory=list)
    """Per run: CPU seconds scoring and aggregating, up to the end of collection, and
    from there to the end of the session."""

    def run(self) -> dict[str, Any]:
        timing, _ = timed_pytest(self.folder, f"--promptflow-report={REPORT}")
        self.runs.append(timing)
        self.inside.append(json.loads((self.folder / "quality_seconds.json").read_text()))
        report: dict[str, Any] = json.loads((self.folder / REPORT).read_text())
        compared = {step: report["steps"][step]["compared"] for step in STEPS}
        if any(count != self.cases for count in compared.values()):
            raise SystemExit(f"{self.folder.name}: compared step calls {compared}")
        return report

    def median(self, part: str) -> float:
        return statistics.median(spent[part] for spent in self.inside)


def measure(workdir: Path, cases: int, repeats: int) -> dict[str, Any]:
    plain = Side(workdir / "without-expected", cases)
    scored = Side(workdir / "with-expected", cases)
    write_project(plain.folder, cases)
    (plain.folder / "chain.py").write_text(CHAIN_WITH_METRIC)
    record_project(plain.folder)
    shutil.copytree(plain.folder, scored.folder)
    wrong_cases = write_expected_cases(scored.folder)
    for side in (plain, scored):
        conftest = side.folder / "conftest.py"
        conftest.write_text(conftest.read_text() + TIMED_QUALITY)

    requests: list[str] = []

    def counted(request: Request) -> Response:
        requests.append(request.path)
        return completion(request)

    # Listening where the recordings were made: a replay that reached the network would
    # be answered, and counted here.
    with local_chat_completions(counted, port=PORT):
        for _ in range(repeats):
            report = scored.run()
            check_quality_rows(report, cases, wrong_cases)
            report = plain.run()
            if report["quality"]:
                raise SystemExit("replay without expected values wrote quality rows")
    if requests:
        raise SystemExit(f"the replays sent {len(requests)} requests to the local server")

    plain_s, scored_s = plain.cpu_s, scored.cpu_s
    scoring_s, aggregating_s = scored.median("scoring"), scored.median("aggregating")
    plain_end_s, scored_end_s = plain.median("to_end"), scored.median("to_end")
    scored_calls = cases * len(STEPS)
    return {
        "cases": cases,
        "steps_per_case": len(STEPS),
        "expected_fields_per_case": sum(len(names) for names in EXPECTED_FIELDS.values()),
        "metrics_per_case": 1,
        "without_expected_s": round(plain_s, 4),
        "with_expected_s": round(scored_s, 4),
        "overhead_pct": round(100.0 * (scored_s - plain_s) / plain_s, 1),
        "scoring_s": round(scoring_s, 4),
        "aggregating_s": round(aggregating_s, 4),
        "scoring_per_call_us": round(1e6 * scoring_s / scored_calls, 1),
        "aggregating_per_call_us": round(1e6 * aggregating_s / scored_calls, 1),
        "inside_quality_pct": round(
            100.0 * (scoring_s + aggregating_s) / (scored_end_s - scoring_s - aggregating_s), 2
        ),
        "without_expected_to_end_s": round(plain_end_s, 4),
        "with_expected_to_end_s": round(scored_end_s, 4),
        "to_end_overhead_pct": round(100.0 * (scored_end_s - plain_end_s) / plain_end_s, 1),
        "without_expected_collection_s": round(plain.median("collection"), 4),
        "with_expected_collection_s": round(scored.median("collection"), 4),
        "without_expected_gc_s": round(plain.median("collecting_garbage"), 4),
        "with_expected_gc_s": round(scored.median("collecting_garbage"), 4),
        "network_requests": len(requests),
        "runs_without_s": [round(t.cpu_seconds, 3) for t in plain.runs],
        "runs_with_s": [round(t.cpu_seconds, 3) for t in scored.runs],
        "wall_without_s": round(plain.wall_s, 4),
        "wall_with_s": round(scored.wall_s, 4),
    }


def main() -> None:
    arguments = chain_arguments(__doc__.split("\n\n")[0])
    with tempfile.TemporaryDirectory(prefix="promptflow-quality-bench-") as temporary:
        result = measure(Path(temporary), arguments.cases, arguments.repeats)
    print(
        f"{result['cases']} cases x {len(STEPS)} steps, {result['expected_fields_per_case']} "
        f"expected fields and 1 metric per case; CPU seconds, median of {arguments.repeats} "
        f"runs each\n"
        f"the tests: without expected values {result['without_expected_s']:.3f}, with them "
        f"{result['with_expected_s']:.3f} ({result['overhead_pct']:+.1f}%)\n"
        f"the tests, reports and summary: {result['without_expected_to_end_s']:.3f} against "
        f"{result['with_expected_to_end_s']:.3f} ({result['to_end_overhead_pct']:+.1f}%)\n"
        f"start-up and collection: {result['without_expected_collection_s']:.3f} against "
        f"{result['with_expected_collection_s']:.3f}\n"
        f"timed inside: scoring {result['scoring_s']:.3f} "
        f"({result['scoring_per_call_us']:.0f} µs per step call), aggregating "
        f"{result['aggregating_s']:.3f} ({result['aggregating_per_call_us']:.0f} µs per "
        f"step call), {result['inside_quality_pct']:.2f}% of the rest\n"
        f"garbage collection during the tests: {result['without_expected_gc_s']:.3f} against "
        f"{result['with_expected_gc_s']:.3f}\n"
        f"requests to the local server during the replays: {result['network_requests']}\n"
        f"runs of the tests, in order: with {result['runs_with_s']}, "
        f"without {result['runs_without_s']}"
    )
    if arguments.json is not None:
        arguments.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
