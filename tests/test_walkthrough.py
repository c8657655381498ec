"""The README's walkthrough of the regression gate, on the example chain, end to end.

The example is copied out of the repository with its recorded runs, re-recorded from
its fake model on a port of its own, and then taken through the README's steps: edit
the classify prompt, see replay miss, record the new prompt and see the gate fail on
the drifted reasons, see it hold offline, accept, and replay cleanly. Each run is a
subprocess: the example's `triage` package may already be imported in this process,
from the repository's own copy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pytest_promptflow.prompts import prompt_version

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PROMPT = Path("examples/triage/prompts/classify.j2")
OLD_LINE = '- "reason": one sentence naming the product or the symptom that decided the level.'
NEW_LINE = '- "reason": one short sentence naming the product.'
T_1002 = "examples/test_triage.py::test_whole_chain[[]T-1002[]]"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def example(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """The example chain and its tickets, without recorded runs."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("examples", "fixtures"):
        shutil.copytree(REPO / folder, pytester.path / folder, ignore=ignore)
    pytester.makeini("[pytest]\naddopts = --strict-markers\n")
    for variable in ("CI", "TRIAGE_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(variable, raising=False)
    # The example's fake model listens here when recording, and nothing does otherwise.
    monkeypatch.setenv("TRIAGE_FAKE_LLM_PORT", str(free_port()))
    return pytester


def run(example: pytest.Pytester, *args: str) -> pytest.RunResult:
    return example.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "examples", *args
    )


def passes(result: pytest.RunResult) -> None:
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()


def summary(result: pytest.RunResult) -> dict[str, dict[str, Any]]:
    """The promptflow section's table: calls, compared, tolerated and drift by step."""
    rows = {}
    for line in result.stdout.lines:
        row = re.fullmatch(r"(\w+) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+)(?:  \((.*)\))?", line)
        if row is not None:
            name, *counts, causes = row.groups()
            calls, compared, tolerated, drift, _ = map(int, counts)
            rows[name] = {
                "calls": calls,
                "compared": compared,
                "tolerated": tolerated,
                "drift": drift,
                "causes": causes,
            }
    return rows


def interactions(example: pytest.Pytester) -> dict[str, list[dict[str, Any]]]:
    """Every recorded run's interactions, by the file's path below the cassette folder."""
    cassettes = example.path / "cassettes"
    return {
        path.relative_to(cassettes).as_posix(): json.loads(path.read_text())["interactions"]
        for path in sorted(cassettes.rglob("*.json"))
    }


def test_the_readme_walkthrough_of_a_prompt_edit(example: pytest.Pytester) -> None:
    prompt = example.path / PROMPT
    source = prompt.read_text(encoding="utf-8")
    assert source.count(OLD_LINE) == 1
    old, new = prompt_version(source), prompt_version(source.replace(OLD_LINE, NEW_LINE))
    readme = README.read_text(encoding="utf-8")
    assert OLD_LINE in readme
    assert NEW_LINE in readme
    assert f"{old} -> {new}" in readme

    # Re-record every request from the fake model, on this test's port, and accept.
    shutil.copytree(REPO / "cassettes", example.path / "cassettes")
    passes(run(example, "--promptflow-record=all"))
    passes(run(example, "--promptflow-accept"))
    before = interactions(example)
    port = os.environ["TRIAGE_FAKE_LLM_PORT"]
    assert all(
        i["request"]["url"].startswith(f"http://127.0.0.1:{port}/")
        for kept in before.values()
        for i in kept
    )

    prompt.write_text(source.replace(OLD_LINE, NEW_LINE), encoding="utf-8")

    # 1. Replay misses, naming the step and the prompt change.
    missed = run(example)
    assert missed.ret == pytest.ExitCode.TESTS_FAILED
    missed.stdout.fnmatch_lines(
        [
            "no recording for a request of step 'classify' in case T-1001",
            f"  prompt classify changed: {old} -> {new}",
        ]
    )
    missed.stdout.no_fnmatch_line("*no recording for a request of step '[!c]*")
    assert interactions(example) == before

    # 2. Record the new version: only classify's requests and resolve's, whose prompt
    # quotes the reason, reach the model; the gate fails on the reasons that drifted.
    drifted = run(example, "--promptflow-record=new", "--promptflow-report=drift.md")
    assert drifted.ret == pytest.ExitCode.TESTS_FAILED
    drifted.stdout.fnmatch_lines(
        [
            f"drift from the golden run in case T-1002 ({T_1002}):",
            f"  step classify — prompt: classify changed {old} -> {new}",
            '    reason: "Acme Pulse has an outage: the customer reports '
            '\\"Our Acme Pulse dashboard is down.\\"" -> "Acme Pulse has an outage."'
            """  [[]facts(), quote -"Our Acme Pulse dashboard is down."; DRIFT[]]""",
            "If the new outputs are right, accept them as golden:",
            f"  pytest '{T_1002}' --promptflow-accept",
        ]
    )
    drifted.stdout.no_fnmatch_line("*no recording*")
    counts = summary(drifted)
    classify, resolve = counts["classify"], counts["resolve"]
    # Every classify call drifted, because of its prompt; no other step drifted.
    assert classify["calls"] == classify["compared"] == classify["drift"] > 0
    assert classify["causes"] == f"{classify['drift']} prompt"
    assert {name: row["drift"] for name, row in counts.items() if name != "classify"} == {
        "extract": 0,
        "resolve": 0,
        "draft": 0,
    }
    after = interactions(example)
    sent: Counter[str] = Counter()
    for name, kept in before.items():
        assert after[name][: len(kept)] == kept, f"{name} lost a recording"
        sent.update(interaction["step"] for interaction in after[name][len(kept) :])
    for name in after.keys() - before.keys():
        sent.update(interaction["step"] for interaction in after[name])
    assert sent.keys() == {"classify", "resolve"}
    assert sent["classify"] == classify["calls"]
    assert 0 < sent["resolve"] <= resolve["calls"]

    report = (example.path / "drift.md").read_text(encoding="utf-8")
    drift = classify["drift"]
    assert f"| `classify` | {drift} | {drift} | 0 | {drift} | {drift} prompt | 0 |" in report
    for name in ("extract", "resolve", "draft"):
        calls = counts[name]["calls"]
        assert f"| `{name}` | {calls} | {calls} | 0 | 0 | — | 0 |" in report
    assert (
        "  - `reason`: "
        '`"Acme Pulse has an outage: the customer reports \\"Our Acme Pulse dashboard is down.\\""`'
        ' → `"Acme Pulse has an outage."` (facts(), quote -"Our Acme Pulse dashboard is down."; '
        "**drift**)"
    ) in report
    assert "<details><summary>prompt <code>classify</code> diff</summary>" in report
    assert f"\n-{OLD_LINE}\n+{NEW_LINE}\n" in report

    # 3. The gate holds offline: the new recordings replay, and still differ.
    held = run(example)
    assert held.ret == pytest.ExitCode.TESTS_FAILED
    held.stdout.no_fnmatch_line("*no recording*")
    assert summary(held)["classify"]["drift"] == drift

    # 4. Accept, offline; the old prompt's recordings go, and replay passes.
    passes(run(example, "--promptflow-accept"))
    for name, kept in interactions(example).items():
        versions = {i["prompts"]["classify"] for i in kept if i["step"] == "classify"}
        assert versions <= {new}, name
    replayed = run(example)
    passes(replayed)
    assert all(row["drift"] == 0 for row in summary(replayed).values())
    assert summary(replayed)["classify"]["compared"] == classify["calls"]


def test_a_rerecording_of_every_request_that_drifts_is_kept(example: pytest.Pytester) -> None:
    # The README's way to re-record the example from a real model is
    # --promptflow-record=all: a prompt edit that drifts must leave its recordings behind,
    # so the gate holds offline and accepting has something to accept.
    shutil.copytree(REPO / "cassettes", example.path / "cassettes")
    only = ("-k", "T-1002")
    passes(run(example, *only, "--promptflow-record=all"))
    passes(run(example, *only, "--promptflow-accept"))
    before = interactions(example)
    prompt = example.path / PROMPT
    source = prompt.read_text(encoding="utf-8")
    new = prompt_version(source.replace(OLD_LINE, NEW_LINE))
    prompt.write_text(source.replace(OLD_LINE, NEW_LINE), encoding="utf-8")

    drifted = run(example, *only, "--promptflow-record=all")

    assert drifted.ret == pytest.ExitCode.TESTS_FAILED
    drifted.stdout.fnmatch_lines([f"drift from the golden run in case T-1002 ({T_1002}):"])
    after = interactions(example)
    changed = [name for name in before if after[name] != before[name]]
    assert any(name.startswith("examples/test_triage/test_whole_chain/") for name in changed)
    for name in changed:
        versions = {i["prompts"]["classify"] for i in after[name] if i["step"] == "classify"}
        assert versions <= {new}, name
    held = run(example, *only)
    assert held.ret == pytest.ExitCode.TESTS_FAILED
    held.stdout.fnmatch_lines([f"drift from the golden run in case T-1002 ({T_1002}):"])
    held.stdout.no_fnmatch_line("*no recording*")
    passes(run(example, *only, "--promptflow-accept"))
    passes(run(example, *only))


def test_the_example_records_from_scratch(example: pytest.Pytester) -> None:
    # A fresh clone without recorded runs, or a team recording its chain for the first
    # time: the tests of one step alone have nothing to run on yet, but the chain's tests
    # must still record.
    result = run(example, "--promptflow-record=new")

    result.stdout.no_fnmatch_line("*error during collection*")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    # An id with an upper-case letter gets a hash: on macOS and Windows, T-1001 and
    # t-1001 would otherwise be one file.
    cassette = example.path / "cassettes/examples/test_triage/test_whole_chain/T-1001-cb216f.json"
    assert cassette.exists()
