"""Reviewing changes case by case and step by step: the pending file a session writes,
the interactive review in a pseudo-terminal, accepting a selection, and what neither
may do (change anything without a terminal, apply a stale change)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from drift_chains import HEADER
from llm_fakes import CANARY_TOKENS, Project
from terminal import drive

from pytest_promptflow.review.screen import KEYS_HELP

CHAIN = """
LABEL = Prompt.load("prompts/label.j2")
SUMMARY = Prompt.from_string("Summarize {{ topic }}", name="summary")


class Label(BaseModel):
    value: Annotated[str, drift.exact()]


class Summary(BaseModel):
    text: Annotated[str, drift.exact()]


@step(prompt=LABEL)
def label(topic: str) -> Label:
    return Label.model_validate_json(ask(LABEL.render(topic=topic)))


@step(prompt=SUMMARY)
def summarize(topic: str) -> Summary:
    return Summary.model_validate_json(ask(SUMMARY.render(topic=topic)))


@pytest.mark.promptflow_cases("topics.jsonl")
def test_label(chain_case):
    label(chain_case.input["topic"])
    summarize(chain_case.input["topic"])
"""
CASES = ("a", "b", "c")
OLD, NEW = "Label {{ topic }}", "Label this: {{ topic }}"


def node(case: str) -> str:
    return f"test_chain.py::test_label[{case}]"


def cassette(project: Project, case: str) -> Path:
    return project.cassettes / "test_chain" / "test_label" / f"{case}.json"


def run(project: Project, *args: str) -> pytest.RunResult:
    """pytest with its cache, where the pending changes are kept."""
    return project.pytester.runpytest(*args)


def command(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_promptflow", *args],
        cwd=project.path, capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def pending(project: Project) -> list[dict[str, Any]]:
    path = project.path / ".pytest_cache" / "v" / "promptflow" / "pending"
    changes: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["changes"]
    return changes


def script(project: Project, template: str, summary: str = "same") -> None:
    for case in CASES:
        topic = f"topic {case}"
        text = template.replace("{{ topic }}", topic)
        project.llm.answers[text] = json.dumps({"value": f"{text} -> label"})
        project.llm.answers[f"Summarize {topic}"] = json.dumps({"text": f"{summary} {case}"})


@pytest.fixture
def edited(project: Project) -> Project:
    """Three cases recorded with the old label prompt, then recorded again after an edit
    of it: each case's step label drifted, and waits for review."""
    (project.path / "prompts").mkdir()
    (project.path / "prompts" / "label.j2").write_text(OLD)
    (project.path / "fixtures").mkdir()
    (project.path / "fixtures" / "topics.jsonl").write_text(
        "".join(json.dumps({"id": case, "topic": f"topic {case}"}) + "\n" for case in CASES)
    )
    project.write(HEADER + textwrap.dedent(CHAIN))
    script(project, OLD)
    script(project, NEW)
    run(project, "--promptflow-record=all").assert_outcomes(passed=3)
    (project.path / "prompts" / "label.j2").write_text(NEW)
    run(project, "--promptflow-record=new").assert_outcomes(failed=3)
    project.llm.reset()
    return project


def accepted_by_the_plugin(project: Project, tmp_path: Path, *cases: str) -> dict[str, bytes]:
    """The recorded runs ``--promptflow-accept`` writes for ``cases``, in a copy."""
    copy = tmp_path / "copy"
    shutil.copytree(project.path, copy)
    subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--promptflow-accept",
         *(node(case) for case in cases)],
        cwd=copy, capture_output=True, check=True,
    )  # fmt: skip
    return {
        case: (copy / cassette(project, case).relative_to(project.path)).read_bytes()
        for case in cases
    }


# -- the pending file ------------------------------------------------------------------


def test_a_session_that_finds_drift_writes_each_change_pending(edited: Project) -> None:
    changes = pending(edited)

    assert [(c["test"], c["step"]) for c in changes] == [(node(c), "label") for c in CASES]
    first = changes[0]
    assert first["file"] == "cassettes/test_chain/test_label/a.json"
    assert first["drifts"][0]["cause"] == "prompt"
    assert first["drifts"][0]["changes"][0]["path"] == "value"
    # The golden values accepting writes, as text: their keys in the order of the file.
    golden = json.loads(first["golden"])
    assert [g["step"] for g in golden] == ["label", "summarize"]
    assert list(golden[0]) == list(json.loads(cassette(edited, "a").read_text())["steps"][0])
    text = (edited.path / ".pytest_cache" / "v" / "promptflow" / "pending").read_text()
    assert not any(token in text for token in CANARY_TOKENS)


def test_a_session_replaces_the_entries_of_the_tests_it_ran_and_keeps_the_others(
    edited: Project,
) -> None:
    with edited.llm.offline():
        run(edited, node("a"), "--promptflow-accept").assert_outcomes(passed=1)

    assert [c["test"] for c in pending(edited)] == [node("b"), node("c")]


# -- accepting a selection -------------------------------------------------------------


def test_accept_takes_exactly_what_promptflow_accept_writes_for_the_step(
    edited: Project, tmp_path: Path
) -> None:
    expected = accepted_by_the_plugin(edited, tmp_path, "a", "b")
    untouched = cassette(edited, "c").read_bytes()

    for case in ("a", "b"):
        done = command(edited, "accept", "--test", node(case), "--step", "label")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"accepted: {node(case)} step label (prompt)" in done.stdout

    for case in ("a", "b"):
        assert cassette(edited, case).read_bytes() == expected[case]
    assert cassette(edited, "c").read_bytes() == untouched
    assert [c["test"] for c in pending(edited)] == [node("c")]
    with edited.llm.offline():
        replayed = edited.run()
    replayed.assert_outcomes(passed=2, failed=1)
    replayed.stdout.fnmatch_lines(["FAILED test_chain.py::test_label[[]c[]]*"])
    assert edited.llm.requests == []


def test_accept_selects_by_step_and_cause(edited: Project) -> None:
    nothing = command(edited, "accept", "--step", "summarize")
    everything = command(edited, "accept", "--step", "label", "--cause", "prompt")

    assert "no pending change matches; nothing accepted" in nothing.stdout
    assert everything.returncode == 0
    assert everything.stdout.count("accepted: ") == 3
    assert pending(edited) == []


def test_a_stale_change_is_refused_naming_its_file(edited: Project) -> None:
    path = cassette(edited, "a")
    path.write_text(path.read_text() + "\n")

    refused = command(edited, "accept", "--test", node("a"))

    assert refused.returncode == 1
    assert (
        "refused: test_chain.py::test_label[a] step label: cassettes/test_chain/test_label/"
        "a.json changed since the session that found this change"
    ) in refused.stdout
    assert [c["test"] for c in pending(edited)] == [node(c) for c in CASES]


# -- the review --------------------------------------------------------------------------


def test_without_a_terminal_the_review_prints_each_change_and_changes_nothing(
    edited: Project,
) -> None:
    before = edited.files()

    shown = command(edited, "review")

    assert shown.returncode == 0
    assert "3 pending change(s); no terminal to review them, so nothing changed" in shown.stdout
    for case in CASES:
        assert (
            f"python -m pytest_promptflow accept --test 'test_chain.py::test_label[{case}]' "
            "--step label"
        ) in shown.stdout
    assert edited.files() == before
    assert len(pending(edited)) == 3


def test_the_review_in_a_terminal_accepts_two_and_rejects_one(
    edited: Project, tmp_path: Path
) -> None:
    expected = accepted_by_the_plugin(edited, tmp_path, "a", "c")
    rejected = cassette(edited, "b").read_bytes()

    screen = drive(["-m", "pytest_promptflow", "review"], ["a", "r", "a"], edited.path, KEYS_HELP)

    assert "[1/3] test_chain.py::test_label[a] — step label" in screen
    assert "value  [exact; DRIFT]" in screen
    assert "Label{+ this:+} topic a" in screen  # the words the new answer added, marked
    assert "accepted 2, rejected 1, skipped 0" in screen
    assert cassette(edited, "a").read_bytes() == expected["a"]
    assert cassette(edited, "c").read_bytes() == expected["c"]
    assert cassette(edited, "b").read_bytes() == rejected
    assert [c["test"] for c in pending(edited)] == [node("b")]
    with edited.llm.offline():
        edited.run().assert_outcomes(passed=2, failed=1)


def test_keys_typed_before_the_first_screen_are_taken_in_order(edited: Project) -> None:
    screen = drive(
        ["-m", "pytest_promptflow", "review"], [], edited.path, KEYS_HELP, typed_ahead="ars"
    )

    assert "accepted 1, rejected 1, skipped 1" in screen
    assert [c["test"] for c in pending(edited)] == [node("b"), node("c")]


def test_each_change_has_the_screen_to_itself(edited: Project) -> None:
    final: list[str] = []

    drive(["-m", "pytest_promptflow", "review"], ["a", "s", "r"], edited.path, KEYS_HELP,
          final_screen=final)  # fmt: skip

    shown = "\n".join(final)
    assert "[3/3] test_chain.py::test_label[c] — step label" in shown
    assert "[1/3]" not in shown
    assert "[2/3]" not in shown
    assert shown.count(KEYS_HELP) == 1
    assert "accepted 1, rejected 1, skipped 1" in shown


def test_quitting_keeps_what_was_decided_and_the_rest_pending(edited: Project) -> None:
    screen = drive(["-m", "pytest_promptflow", "review"], ["a", "q"], edited.path, KEYS_HELP)

    assert "accepted 1, rejected 0, skipped 2" in screen
    assert [c["test"] for c in pending(edited)] == [node("b"), node("c")]


def test_two_changed_steps_of_one_case_one_accepted_the_other_rejected(
    edited: Project,
) -> None:
    # The summary step of case a changes too: two changed steps in one recorded run.
    script(edited, NEW, summary="other")
    run(edited, node("a"), "--promptflow-record=all").assert_outcomes(failed=1)
    steps = [c["step"] for c in pending(edited) if c["test"] == node("a")]
    assert steps == ["label", "summarize"]
    before = json.loads(cassette(edited, "a").read_text())

    screen = drive(
        ["-m", "pytest_promptflow", "review"], ["a", "r", "s", "s"], edited.path, KEYS_HELP
    )

    assert "accepted 1, rejected 1, skipped 2" in screen
    after = json.loads(cassette(edited, "a").read_text())
    label, summary = after["steps"]
    assert label["output"] == {"value": "Label this: topic a -> label"}
    assert summary == before["steps"][1]  # rejected: as it was
    with edited.llm.offline():
        replayed = edited.run(node("a"))
    replayed.assert_outcomes(failed=1)
    replayed.stdout.fnmatch_lines(["*step summarize*"])
    replayed.stdout.no_fnmatch_line("*step label —*")
    # The rejected step stays pending, and still applies to the file its case now has.
    later = command(edited, "accept", "--test", node("a"), "--step", "summarize")
    assert later.returncode == 0, later.stdout
    with edited.llm.offline():
        edited.run(node("a")).assert_outcomes(passed=1)


def test_the_reports_carry_each_case_and_step_s_accept_command(edited: Project) -> None:
    with edited.llm.offline():
        edited.run("--promptflow-report=drift.md", "--promptflow-report=drift.html")

    markdown = (edited.path / "drift.md").read_text()
    page = (edited.path / "drift.html").read_text()
    for case in CASES:
        command_text = (
            f"python -m pytest_promptflow accept --test 'test_chain.py::test_label[{case}]' "
            "--step label"
        )
        assert f"accept this step: `{command_text}`" in markdown
        assert command_text.replace("'", "&#39;") in page


def test_promptflow_review_runs_the_tests_then_reviews_what_they_found(edited: Project) -> None:
    with edited.llm.offline():
        screen = drive(
            ["-m", "pytest", "--promptflow-review", "-n", "2"],
            ["A"],
            edited.path,
            KEYS_HELP,
        )

    assert "3 failed" in screen  # the tests ran first, on two workers
    assert "[1/3] test_chain.py::test_label[a] — step label" in screen
    assert "accepted 3, rejected 0, skipped 0" in screen
    assert pending(edited) == []
    with edited.llm.offline():
        edited.run().assert_outcomes(passed=3)


def test_d_shows_every_value_whole_and_the_prompt_s_template_diff(edited: Project) -> None:
    screen = drive(["-m", "pytest_promptflow", "review"], ["d", "S"], edited.path, KEYS_HELP)

    assert "template diff of prompt label:" in screen
    assert "-Label {{ topic }}" in screen
    assert "+Label this: {{ topic }}" in screen
    assert "accepted 0, rejected 0, skipped 3" in screen
    assert len(pending(edited)) == 3


def test_a_pending_change_carries_its_budget_overrun_and_broken_expected_value(
    edited: Project,
) -> None:
    topics = edited.path / "fixtures" / "topics.jsonl"
    expected = {"label": {"value": "Label topic a -> label"}}
    lines = topics.read_text().splitlines()
    lines[0] = json.dumps(json.loads(lines[0]) | {"expected": expected})
    topics.write_text("\n".join(lines) + "\n")
    edited.pytester.makeini("[pytest]\npromptflow_budget = label: output_tokens +0\n")

    with edited.llm.offline():
        run(edited).assert_outcomes(failed=3)

    first = pending(edited)[0]
    assert first["test"] == node("a")
    assert first["budget"]["over_budget"][0]["metric"] == "output_tokens"
    shown = command(edited, "review")
    assert (
        "- test_chain.py::test_label[a] step label (drift, broken, over budget; prompt)"
        in shown.stdout
    )


DOWNSTREAM = (
    CHAIN.replace('"Summarize {{ topic }}"', '"Summarize {{ label }}"')
    .replace("def summarize(topic: str)", "def summarize(label: str)")
    .replace("SUMMARY.render(topic=topic)", "SUMMARY.render(label=label)")
    .replace(
        '    label(chain_case.input["topic"])\n    summarize(chain_case.input["topic"])',
        '    summarize(label(chain_case.input["topic"]).value)',
    )
)


def test_accepting_a_case_s_changed_step_renews_the_steps_downstream_that_passed(
    edited: Project, tmp_path: Path
) -> None:
    # summarize now reads the label: after the edit its request and inputs change, and
    # it answers the same, so it passes the gate and only label waits for review.
    edited.write(HEADER + textwrap.dedent(DOWNSTREAM))
    for template in (OLD, NEW):
        for case in CASES:
            text = template.replace("{{ topic }}", f"topic {case}")
            edited.llm.answers[f"Summarize {text} -> label"] = json.dumps({"text": case})
    (edited.path / "prompts" / "label.j2").write_text(OLD)
    shutil.rmtree(edited.cassettes)
    run(edited, "--promptflow-record=all").assert_outcomes(passed=3)
    (edited.path / "prompts" / "label.j2").write_text(NEW)
    run(edited, "--promptflow-record=new").assert_outcomes(failed=3)
    assert [(c["test"], c["step"]) for c in pending(edited)] == [(node(c), "label") for c in CASES]
    expected = accepted_by_the_plugin(edited, tmp_path, "a")
    before = json.loads(cassette(edited, "a").read_text())

    accepted = command(edited, "accept", "--case", "a")

    assert accepted.returncode == 0, accepted.stdout
    assert cassette(edited, "a").read_bytes() == expected["a"]
    after = json.loads(cassette(edited, "a").read_text())
    assert after["steps"][1]["inputs"] != before["steps"][1]["inputs"]
    assert after["steps"][1]["output"] == before["steps"][1]["output"]
    with edited.llm.offline():
        edited.run(node("a")).assert_outcomes(passed=1)


def test_what_a_session_of_some_tests_found_is_accepted_without_pruning(
    edited: Project,
) -> None:
    # Case a found drifting again by a session of that test alone, which cannot know
    # what the module's other tests replay; b as the whole module's session found it.
    with edited.llm.offline():
        run(edited, node("a")).assert_outcomes(failed=1)
    recorded = {case: json.loads(cassette(edited, case).read_text()) for case in "ab"}
    assert [len(recorded[case]["interactions"]) for case in "ab"] == [3, 3]

    for case in "ab":
        assert command(edited, "accept", "--case", case).returncode == 0

    a, b = (json.loads(cassette(edited, case).read_text()) for case in "ab")
    assert a["interactions"] == recorded["a"]["interactions"]
    assert a["steps"][0]["output"] == {"value": "Label this: topic a -> label"}
    assert len(b["interactions"]) == 2  # the old prompt's recording dropped
    with edited.llm.offline():
        edited.run(node("a"), node("b")).assert_outcomes(passed=2)


def test_a_pending_file_that_cannot_be_read_is_named_and_nothing_changes(
    edited: Project,
) -> None:
    path = edited.path / ".pytest_cache" / "v" / "promptflow" / "pending"
    path.write_text('{"format": 1, "changes": [{"test": ')
    before = edited.files()

    for args in (["review"], ["accept", "--step", "label"]):
        refused = command(edited, *args)
        assert refused.returncode == 2
        assert f"pending changes {path} cannot be read" in refused.stderr
        assert "run the tests again to write them anew" in refused.stderr
    assert edited.files() == before
