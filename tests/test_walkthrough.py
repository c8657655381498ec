"""The README's walkthroughs of the regression gate, on the example chain, end to end.

The example is copied out of the repository with its recorded runs, re-recorded from
its fake model on a port of its own, and then taken through the README's steps: edit
the classify prompt, see replay miss, record the new prompt and see the gate fail on
the drifted reasons, see it hold offline, accept, and replay cleanly; then the edit of
the urgency scale that fixes one case's expected level and breaks another's, and what
a quality requirement makes of it. The example's quality table, replayed from the
committed recordings, is checked against the README and against a count of its own.
Each run is a subprocess: the example's `triage` package may already be imported in
this process, from the repository's own copy.
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
from pytest_promptflow.report.quality import QUALITY_HEADING

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PROMPT = Path("examples/triage/prompts/classify.j2")
OLD_LINE = '- "reason": one sentence naming the product or the symptom that decided the level.'
NEW_LINE = '- "reason": one short sentence naming the product.'
T_1002 = "examples/test_triage.py::test_whole_chain[[]T-1002[]]"
SCALE_LINE = "2 - a minor inconvenience with a workaround"
EDITED_SCALE_LINE = (
    "2 - a minor inconvenience with a workaround, or a question about something that went wrong"
)
CLASSIFYING_TESTS = (
    "test_classify_after_extract",
    "test_draft_follows_the_resolution",
    "test_whole_chain",
)
STEP_TEST = "test_classify_alone"
"""The test of classify alone: it replays each ticket's recorded call of classify, and is
scored against the ticket's labels as the chain tests are."""
SCORED_TESTS = tuple(sorted((*CLASSIFYING_TESTS, STEP_TEST)))
FENCED_BLOCK = re.compile(
    r"^(?P<indent> *)```[\w-]*\n(?P<body>.*?)\n(?P=indent)```[ \t]*$", re.MULTILINE | re.DOTALL
)


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
    return step_rows(result.stdout.lines)


def step_rows(lines: list[str]) -> dict[str, dict[str, Any]]:
    """The rows of a promptflow step table among `lines`, by step."""
    rows = {}
    for line in lines:
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


def readme_blocks() -> list[list[str]]:
    """The lines of each fenced block of the README, without the indentation of a block
    inside a list item."""
    blocks = []
    for match in FENCED_BLOCK.finditer(README.read_text(encoding="utf-8")):
        indent = len(match["indent"])
        blocks.append([line[indent:] for line in match["body"].split("\n")])
    return blocks


def readme_block(first: str, containing: str = "") -> list[str]:
    """The README's fenced block whose first line starts with `first`, holding `containing`."""
    for lines in readme_blocks():
        if lines[0].startswith(first) and any(containing in line for line in lines):
            return lines
    raise AssertionError(f"README.md shows no block starting {first!r} holding {containing!r}")


def section(result: pytest.RunResult, first: str) -> list[str]:
    """The output's lines from the one starting with `first` to the next blank or rule."""
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    shown = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.strip() or line.startswith("="):
            break
        shown.append(line)
    return shown


def quality_gate(result: pytest.RunResult) -> list[str]:
    """The `promptflow quality gate` block, its heading rule included."""
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if " promptflow quality gate " in line)
    return [lines[start], *section(result, lines[start + 1])]


def quality_rows(lines: list[str]) -> dict[str, list[str]]:
    """A quality table's rows by test and field, as the words of each, padding ignored."""
    return {" ".join(line.split()[:2]): line.split()[2:] for line in lines[1:]}


def failed(result: pytest.RunResult) -> set[str]:
    return {match[1] for line in result.stdout.lines if (match := re.match(r"FAILED (\S+)", line))}


def shows(result: pytest.RunResult, block: list[str]) -> bool:
    """Whether the output holds the lines of `block`, one after another."""
    lines = result.stdout.lines
    return any(lines[i : i + len(block)] == block for i in range(len(lines)))


def in_words(text: str) -> str:
    return " ".join(text.split())


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


def golden_classifications(cassettes: Path, test: str) -> dict[str, dict[str, Any]]:
    """The golden output of `classify` in each case's recorded run of `test`, by case."""
    outputs = {}
    for path in sorted((cassettes / "examples" / "test_triage" / test).glob("*.json")):
        recorded = json.loads(path.read_text(encoding="utf-8"))
        (call,) = [step for step in recorded["steps"] if step["step"] == "classify"]
        outputs[recorded["case"]] = call["output"]
    return outputs


def test_the_readme_shows_the_example_quality_table(
    example: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(REPO / "cassettes", example.path / "cassettes")
    # Replay only, as the Quickstart runs it: the recorded runs name the fake model's
    # default port, and nothing listens on it, or on any other.
    monkeypatch.delenv("TRIAGE_FAKE_LLM_PORT")
    committed = {path: path.read_bytes() for path in (example.path / "cassettes").rglob("*.json")}

    result = run(
        example, "-o", "promptflow_quality=classify.level >= 90%", "--promptflow-report=q.json"
    )

    # Every test passes, and the requirement alone fails the run.
    outcomes = result.parseoutcomes()
    assert set(outcomes) == {"passed"}, result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    readme = in_words(README.read_text(encoding="utf-8"))
    assert f"`python -m pytest examples` reports `{outcomes['passed']} passed`" in readme
    assert section(result, QUALITY_HEADING) in readme_blocks()
    assert quality_gate(result) in readme_blocks()
    assert {
        path: path.read_bytes() for path in (example.path / "cassettes").rglob("*.json")
    } == committed

    # The figures, counted again from the labels and the golden outputs recorded.
    cases = (REPO / "fixtures" / "tickets.jsonl").read_text(encoding="utf-8").splitlines()
    expected = {case["id"]: case["expected"]["classify"] for case in map(json.loads, cases)}
    report = json.loads((example.path / "q.json").read_text(encoding="utf-8"))
    rows = {(row["test"], row["field"]): row for row in report["quality"]}
    assert rows.keys() == {
        (f"examples/test_triage.py::{test}", field)
        for test in SCORED_TESTS
        for field in ("category", "level")
    }
    for test in CLASSIFYING_TESTS:
        golden = golden_classifications(REPO / "cassettes", test)
        assert golden.keys() == expected.keys()
        for field in ("category", "level"):
            right = sum(golden[case][field] == expected[case][field] for case in expected)
            # The step test replays a recorded call of this same golden output per ticket.
            for scored in (test, STEP_TEST):
                row = rows[(f"examples/test_triage.py::{scored}", field)]
                assert row["golden"]["correct"] == row["now"]["correct"] == right, (scored, field)
                assert row["golden"]["scored"] == row["now"]["scored"] == len(expected)
        # What the README says the fake model gets wrong, and right.
        assert all(golden[case]["category"] == expected[case]["category"] for case in expected)
        wrong = {
            case: golden[case]["level"]
            for case in expected
            if golden[case]["level"] != expected[case]["level"]
        }
        assert wrong == {"T-1003": 3, "T-1012": 1}
    assert "it answers 1 for T-1012 and 3 for T-1003; it gets every category right" in readme


def test_the_readme_walkthrough_of_an_edit_that_fixes_one_case_and_breaks_another(
    example: pytest.Pytester,
) -> None:
    prompt = example.path / PROMPT
    source = prompt.read_text(encoding="utf-8")
    assert source.count(f"\n{SCALE_LINE}\n") == 1
    edited = source.replace(f"\n{SCALE_LINE}\n", f"\n{EDITED_SCALE_LINE}\n")
    old, new = prompt_version(source), prompt_version(edited)
    assert [SCALE_LINE] in readme_blocks()
    assert [EDITED_SCALE_LINE] in readme_blocks()
    text = README.read_text(encoding="utf-8")
    readme = in_words(text)
    assert f"prompt classify changed: {old} -> {new}" in readme

    # Every ticket of one test that classifies, and every test of the two cases the edit
    # changes, re-recorded from the fake model on this test's port.
    shutil.copytree(REPO / "cassettes", example.path / "cassettes")
    only = ("-k", "classify_after_extract or T-1004 or T-1012")
    passes(run(example, *only, "--promptflow-record=all"))
    before = interactions(example)
    prompt.write_text(edited, encoding="utf-8")

    # 1. Recorded: T-1012 is fixed, which is tolerated; T-1004 is broken, which fails each
    # test that classifies it, the step test scored against the same labels included.
    recorded = run(example, *only, "--promptflow-record=new", "--promptflow-report=drift.md")

    assert recorded.ret == pytest.ExitCode.TESTS_FAILED
    node = "examples/test_triage.py::{}[{}]".format
    step_tests = {node(STEP_TEST, case) for case in ("T-1004", "T-1012")}
    assert failed(recorded) == {node(test, "T-1004") for test in SCORED_TESTS}
    assert shows(recorded, readme_block("drift from the golden run in case T-1004"))
    assert shows(
        recorded,
        [
            f"drift from the golden run in case T-1004 ({node(STEP_TEST, 'T-1004')}):",
            f"  step classify — prompt: classify changed {old} -> {new}",
            "    level: 1 -> 2  [exact; expected: broken; DRIFT]",
        ],
    )
    assert "the four tests that classify T-1012 pass, the step test" in readme
    assert "`test_classify_alone[T-1012]` among them" in readme
    assert "fails, `test_classify_alone[T-1004]` too:" in readme
    drift_report = (example.path / "drift.md").read_text(encoding="utf-8")
    assert "\n".join(readme_block("- **T-1004** (drift)")) in drift_report
    classify = summary(recorded)["classify"]
    shown = step_rows(readme_block("step      calls"))["classify"]
    assert (classify["tolerated"], classify["drift"], classify["causes"]) == (4, 4, "4 prompt")
    assert (shown["tolerated"], shown["drift"], shown["causes"]) == (4, 4, "4 prompt")
    # Only classify's requests reach the model, and resolve's where the level it quotes
    # changed; the step tests record theirs into recorded runs of their own.
    after = interactions(example)
    sent: Counter[str] = Counter()
    for name, kept in after.items():
        earlier = before.get(name, [])
        assert kept[: len(earlier)] == earlier, f"{name} lost a recording"
        sent.update(
            f"{interaction['step']} {name.split('/')[2]}" for interaction in kept[len(earlier) :]
        )
    assert sum(n for key, n in sent.items() if key.startswith("classify ")) == classify["calls"]
    assert sent[f"classify {STEP_TEST}"] == len(step_tests)
    assert {key for key in sent if not key.startswith("classify ")} == {
        "resolve test_whole_chain",
        "resolve test_draft_follows_the_resolution",
    }
    assert sent["resolve test_whole_chain"] + sent["resolve test_draft_follows_the_resolution"] == 4
    assert "and the 4 of `resolve` whose prompt quotes a level that changed" in readme
    # The quality table: the test that classified every ticket shows the README's row,
    # figure for figure; the three others, run on T-1004 and T-1012 only, the same cases
    # fixed and broken, and the same verdict.
    table = section(recorded, QUALITY_HEADING)
    readme_table = readme_block(QUALITY_HEADING, "fixed T-1012")
    ran, shown_rows = quality_rows(table), quality_rows(readme_table)
    assert ran.keys() == shown_rows.keys()
    for key in ran:
        if key.startswith("test_classify_after_extract "):
            assert ran[key] == shown_rows[key], key
        verdict = ran[key][ran[key].index("fixed") :]
        assert verdict == shown_rows[key][shown_rows[key].index("fixed") :], key
    level = ran["test_classify_after_extract classify.level"]
    assert " ".join(level[-6:]) == "fixed T-1012 broken T-1004 p=1 inconclusive"

    # 2. With `no worse`, the requirement is the policy: T-1004's tests pass, the step
    # test's too, and so does the gate. With `no broken` beside it, T-1004's tests fail
    # again, and the gate.
    lenient = run(example, *only, "-o", "promptflow_quality=classify.level no worse")
    passes(lenient)
    assert "Every test passes (`134 passed`) and the run exits with status 0" in readme
    gate = quality_gate(lenient)
    shown_gate = readme_block("=", "classify.level no worse")
    assert in_words(gate[0]) == in_words(shown_gate[0])
    assert gate[1:] == shown_gate[1:] == ["classify.level no worse: passed", "  met on 4 row(s)"]
    strict = run(
        example, *only, "-o", "promptflow_quality=classify.level no worse\nclassify.level no broken"
    )
    assert strict.ret == pytest.ExitCode.TESTS_FAILED
    assert failed(strict) == failed(recorded)
    broken = [
        f"examples/test_triage.py::{test} classify.level: broken T-1004" for test in SCORED_TESTS
    ]
    assert quality_gate(strict)[1:] == [
        "classify.level no worse: passed",
        "  met on 4 row(s)",
        "classify.level no broken: FAILED",
        "  " + "; ".join(broken),
    ]
    assert f"(`classify.level no broken: FAILED`, then `{broken[0]}`" in readme
    assert "the same for the three other tests), also with `classify.level no worse`" in readme

    # 3. Accepted, the new levels are golden, and nothing is fixed or broken any more.
    passes(run(example, "-k", "classify_after_extract", "--promptflow-accept"))
    settled = run(example, "-k", "classify_after_extract")
    passes(settled)
    level = quality_rows(section(settled, QUALITY_HEADING))[
        "test_classify_after_extract classify.level"
    ]
    assert " ".join(level) == (
        "12/14 85.7% [60.1-96.0] -> 12/14 85.7% [60.1-96.0] fixed - broken - unchanged"
    )
    assert "`12/14 ... -> 12/14 ...  fixed -  broken -  unchanged`" in text
