"""The drift report: Markdown and JSON, and the same under pytest-xdist as in a serial run."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from drift_chains import reply, write_chain
from llm_fakes import Project, run_merge_command

from pytest_promptflow.prompts import prompt_version

CHAIN = """
CLASSIFY = Prompt.load("prompts/classify.j2")


class Ticket(BaseModel):
    text: str


class Urgency(BaseModel):
    level: Annotated[int, drift.exact()]
    reason: Annotated[str, drift.similar(0.8)]


@step
def extract(ticket: Ticket) -> str:
    return ticket.text


@step(prompt=CLASSIFY)
def classify(text: str) -> Urgency:
    return Urgency.model_validate_json(ask(CLASSIFY.render(text=text)))


@pytest.mark.promptflow_cases("tickets.jsonl", model=Ticket)
def test_triage(chain_case):
    classify(extract(chain_case.input))
"""
TICKETS = {"login": "cannot log in", "export": "export is slow", "outage": "vault is down"}
OLD_PROMPT = "Classify: {{ text }}"
NEW_PROMPT = "Classify by urgency: {{ text }}"
# With the new prompt, login answers the same, export rewords its reason (tolerated)
# and outage drops a level (drift).
ANSWERS = {
    OLD_PROMPT: {
        "login": (2, "The login page rejects the password."),
        "export": (3, "Exports of large files are slow."),
        "outage": (5, "Acme Vault is down for everyone."),
    },
    NEW_PROMPT: {
        "login": (2, "The login page rejects the password."),
        "export": (3, "Exports of large files are too slow."),
        "outage": (4, "Acme Vault is down for everyone."),
    },
}
OLD, NEW = prompt_version(OLD_PROMPT), prompt_version(NEW_PROMPT)
WITHOUT_HYPOTHESIS = ("-p", "no:hypothesispytest")


@pytest.fixture
def drifted(project: Project) -> Project:
    """Recorded with the old prompt, then the new prompt recorded: outage drifted."""
    (project.path / "fixtures").mkdir()
    (project.path / "fixtures" / "tickets.jsonl").write_text(
        "".join(f'{{"id": "{case}", "text": "{text}"}}\n' for case, text in TICKETS.items())
    )
    (project.path / "prompts").mkdir()
    prompt = project.path / "prompts" / "classify.j2"
    write_chain(project, CHAIN)
    for source, answers in ANSWERS.items():
        for case, (level, reason) in answers.items():
            rendered = source.replace("{{ text }}", TICKETS[case])
            project.llm.answers[rendered] = reply({"level": level, "reason": reason})
    prompt.write_text(OLD_PROMPT)
    project.record().assert_outcomes(passed=3)
    prompt.write_text(NEW_PROMPT)
    project.record(mode="new").assert_outcomes(passed=2, failed=1)
    return project


def replay(project: Project, *args: str) -> pytest.RunResult:
    with project.llm.offline():
        return project.run(*args)


def test_the_markdown_report_has_the_table_the_changes_and_the_prompt_diff(
    drifted: Project,
) -> None:
    replay(drifted, "--promptflow-report", "drift.md").assert_outcomes(passed=2, failed=1)

    report = (drifted.path / "drift.md").read_text()
    usage = re.search(r"\n\n(\| usage \|.*?)(?=\n\n)", report, flags=re.S)
    assert usage is not None
    assert usage.group(1).splitlines()[2].startswith("| `classify` | 3 | 63 | ")
    report = report.replace(usage.group(0), "")
    body, accept = report.split("\nAccept the new outputs as golden, once reviewed:\n\n")
    assert body == "\n".join(
        [
            "## pytest-promptflow drift report",
            "",
            "**1 case(s) drifted** beyond the policy.",
            "",
            "| step | calls | compared | tolerated | drift | causes | contract broken |",
            "|---|---:|---:|---:|---:|---|---:|",
            "| `classify` | 3 | 3 | 1 | 1 | 1 prompt | 0 |",
            "| `extract` | 3 | 3 | 0 | 0 | — | 0 |",
            "",
            "### `classify`",
            "",
            f"- **export** (tolerated) — prompt: classify changed {OLD} -> {NEW}",
            '  - `reason`: `"Exports of large files are slow."` → '
            '`"Exports of large files are too slow."` (similar(0.8), score 0.941; tolerated)',
            f"- **outage** (drift) — prompt: classify changed {OLD} -> {NEW}",
            "  - `level`: `5` → `4` (exact; **drift**)",
            "  - accept this step: `python -m pytest_promptflow accept --test "
            "'test_chain.py::test_triage[outage]' --step classify`",
            "",
            "<details><summary>prompt <code>classify</code> diff</summary>",
            "",
            "```diff",
            "--- classify (golden)",
            "+++ classify (now)",
            "@@ -1 +1 @@",
            f"-{OLD_PROMPT}",
            f"+{NEW_PROMPT}",
            "```",
            "",
            "</details>",
            "",
        ]
    )
    # This session's command, with --promptflow-accept in place of the report option.
    assert re.fullmatch(r"```bash\npytest (.* )?--promptflow-accept\n```\n", accept)
    assert "drift.md" not in accept


def test_the_json_report_has_the_counts_and_every_change(drifted: Project) -> None:
    replay(drifted, "--promptflow-report=drift.json").assert_outcomes(passed=2, failed=1)

    report = json.loads((drifted.path / "drift.json").read_text())
    assert report["schema"] == 3
    assert report["drifted_cases"] == 1
    usage = report["steps"]["classify"].pop("usage")
    assert usage["now"]["model_calls"] == usage["golden"]["model_calls"] == 3
    assert usage["golden_cases"] == 3
    assert report["steps"] == {
        "classify": {
            "calls": 3,
            "compared": 3,
            "tolerated": 1,
            "drift": {"prompt": 1},
            "contract_broken": 0,
        },
        "extract": {"calls": 3, "compared": 3, "tolerated": 0, "drift": {}, "contract_broken": 0},
    }
    export, outage = sorted(report["cases"], key=lambda case: case["case"])
    diff = f"--- classify (golden)\n+++ classify (now)\n@@ -1 +1 @@\n-{OLD_PROMPT}\n+{NEW_PROMPT}"
    assert outage == {
        "test": "test_chain.py::test_triage[outage]",
        "case": "outage",
        "compared": ["extract", "classify"],
        "drifted": True,
        "steps": [
            {
                "step": "classify",
                "occurrence": 0,
                "cause": "prompt",
                "detail": f"classify changed {OLD} -> {NEW}",
                "drifted": True,
                "changes": [
                    {
                        "path": "level",
                        "kind": "changed",
                        "old": 5,
                        "new": 4,
                        "rule": "exact",
                        "tolerated": False,
                        "score": None,
                        "expected": None,
                    }
                ],
                "prompt_diffs": {"classify": diff},
                "also": [],
            }
        ],
    }
    assert export["drifted"] is False
    (change,) = export["steps"][0]["changes"]
    assert change == {
        "path": "reason",
        "kind": "changed",
        "old": "Exports of large files are slow.",
        "new": "Exports of large files are too slow.",
        "rule": "similar(0.8)",
        "tolerated": True,
        "score": 0.941,
        "expected": None,
    }


def test_a_report_without_drift_says_so_and_offers_no_command(drifted: Project) -> None:
    with drifted.llm.offline():
        drifted.run("--promptflow-accept").assert_outcomes(passed=3)
        drifted.run("--promptflow-report=drift.md").assert_outcomes(passed=3)
        drifted.run("--promptflow-report=drift.json").assert_outcomes(passed=3)

    markdown = (drifted.path / "drift.md").read_text()
    assert "No drift beyond the policy." in markdown
    assert "| `classify` | 3 | 3 | 0 | 0 | — | 0 |" in markdown
    assert "--promptflow-accept" not in markdown
    document = json.loads((drifted.path / "drift.json").read_text())
    assert (document["drifted_cases"], document["cases"]) == (0, [])


@pytest.mark.parametrize("name", ["drift.txt", "drift"])
def test_a_report_path_with_another_suffix_is_a_usage_error(project: Project, name: str) -> None:
    write_chain(project, "def test_nothing():\n    pass\n")

    result = project.run(f"--promptflow-report={name}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*--promptflow-report={name}: the suffix chooses the format; use one of .md, .json*"]
    )
    assert not (project.path / name).exists()


# -- under pytest-xdist ----------------------------------------------------------------------


def summary_section(result: pytest.RunResult) -> list[str]:
    """The lines of the promptflow section, the accept command less its arguments."""
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if re.fullmatch(r"=+ promptflow =+", line))
    section = []
    for line in lines[start + 1 :]:
        if line.startswith("=="):
            break
        section.append(
            "  pytest ... --promptflow-accept" if "--promptflow-accept" in line else line
        )
    return section


def normalized(report: dict[str, Any]) -> dict[str, Any]:
    return {**report, "cases": sorted(report["cases"], key=lambda case: case["test"])}


def test_xdist_gives_the_same_summary_and_report_as_a_serial_run(drifted: Project) -> None:
    with drifted.llm.offline():
        serial = drifted.run("--promptflow-report=serial.json")
        parallel = drifted.pytester.runpytest_subprocess(
            *WITHOUT_HYPOTHESIS, "-p", "xdist", "-n", "2", "-v", "--promptflow-report=xdist.json"
        )

    serial.assert_outcomes(passed=2, failed=1)
    parallel.assert_outcomes(passed=2, failed=1)
    # Both workers ran cases, so what the controller reports was merged from both.
    parallel.stdout.fnmatch_lines(["*[[]gw0[]]*"])
    parallel.stdout.fnmatch_lines(["*[[]gw1[]]*"])
    assert summary_section(parallel) == summary_section(serial)
    assert summary_section(serial)[:3] == [
        "step      calls  compared  tolerated  drift  contract broken",
        "classify      3         3          1      1                0  (1 prompt)",
        "extract       3         3          0      0                0",
    ]
    assert "1 case(s) drifted beyond the policy." in "\n".join(summary_section(serial))
    serial_report = json.loads((drifted.path / "serial.json").read_text())
    parallel_report = json.loads((drifted.path / "xdist.json").read_text())
    assert normalized(parallel_report) == normalized(serial_report)
    assert serial_report["drifted_cases"] == 1


# -- several reports from one run --------------------------------------------------------

SEVERAL = ("--promptflow-report=drift.md", "--promptflow-report", "drift.html")


def without_accept_command(markdown: str) -> str:
    return re.sub(r"```bash\n.*\n```\n", "```bash\n...\n```\n", markdown)


def test_every_report_named_is_written_from_one_run(drifted: Project) -> None:
    with drifted.llm.offline():
        several = drifted.run(*SEVERAL, "--promptflow-report=drift.json")
        drifted.run("--promptflow-report=alone.md").assert_outcomes(passed=2, failed=1)
    several.assert_outcomes(passed=2, failed=1)

    markdown = (drifted.path / "drift.md").read_text()
    assert markdown == (drifted.path / "alone.md").read_text()
    assert "<h1>pytest-promptflow report</h1>" in (drifted.path / "drift.html").read_text()
    assert json.loads((drifted.path / "drift.json").read_text())["drifted_cases"] == 1
    # The accept command, in the report and in the summary, leaves out every report option.
    in_report = re.search(r"```bash\n(.*)\n```", markdown)
    assert in_report is not None
    in_summary = [line for line in several.stdout.lines if line.endswith("--promptflow-accept")]
    assert in_summary[-1].strip() == in_report.group(1)
    assert in_report.group(1).startswith("pytest -p no:cacheprovider ")
    assert "--promptflow-report" not in in_report.group(1)
    assert "drift." not in in_report.group(1)


def test_under_xdist_the_controller_writes_every_report(drifted: Project) -> None:
    with drifted.llm.offline():
        drifted.run(*SEVERAL, "--promptflow-report=drift.json").assert_outcomes(passed=2, failed=1)
        parallel = drifted.pytester.runpytest_subprocess(
            *WITHOUT_HYPOTHESIS,
            "-p",
            "xdist",
            "-n",
            "2",
            "--promptflow-report=xdist.md",
            "--promptflow-report=xdist.html",
            "--promptflow-report=xdist.json",
        )
    parallel.assert_outcomes(passed=2, failed=1)

    serial_json = json.loads((drifted.path / "drift.json").read_text())
    parallel_json = json.loads((drifted.path / "xdist.json").read_text())
    assert normalized(parallel_json) == normalized(serial_json)
    assert without_accept_command((drifted.path / "xdist.md").read_text()) == (
        without_accept_command((drifted.path / "drift.md").read_text())
    )
    assert (drifted.path / "xdist.html").read_text().count('class="case-step') == 2


def test_a_bad_suffix_among_several_reports_stops_the_run_before_any_is_written(
    project: Project,
) -> None:
    write_chain(project, "def test_nothing():\n    pass\n")

    result = project.run("--promptflow-report=ok.md", "--promptflow-report=bad.txt")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--promptflow-report=bad.txt: the suffix chooses the format*"])
    assert not (project.path / "ok.md").exists()


def test_merge_writes_every_out_named_or_none_of_them(drifted: Project) -> None:
    with drifted.llm.offline():
        drifted.run("--promptflow-report=shard.json").assert_outcomes(passed=2, failed=1)

    done = run_merge_command(
        "shard.json", "--out", "m.md", "--out", "m.html", "--out", "m.json", cwd=drifted.path
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == "merged 1 report(s) into m.md, m.html, m.json\n"
    assert "**1 case(s) drifted**" in (drifted.path / "m.md").read_text()
    assert "<h1>pytest-promptflow report</h1>" in (drifted.path / "m.html").read_text()
    assert normalized(json.loads((drifted.path / "m.json").read_text())) == normalized(
        json.loads((drifted.path / "shard.json").read_text())
    )

    refused = run_merge_command("shard.json", "--out", "n.md", "--out", "n.txt", cwd=drifted.path)

    assert refused.returncode == 2
    assert "--out=n.txt: the suffix chooses the format" in refused.stderr
    assert not (drifted.path / "n.md").exists()


def test_a_secret_left_in_a_report_is_redacted_as_text_in_html_and_markdown(
    tmp_path: Path,
) -> None:
    from pytest_promptflow.cassette.scrub import REDACTED, Scrubber
    from pytest_promptflow.drift.classify import CaseDrift, StepDrift
    from pytest_promptflow.drift.compare import FieldChange
    from pytest_promptflow.report.render import write_reports
    from pytest_promptflow.report.summary import SessionTally

    secret = "tok-canary-0123456789abcdef"
    scrubber = Scrubber()
    scrubber.learn_value(secret)
    change = FieldChange("text", "changed", "old", f"key {secret}", "facts()", False)
    tally = SessionTally()
    tally.add_case(
        CaseDrift("test_x.py::test_y", "c1", ["ask"], [StepDrift("ask", 0, "model", "", [change])])
    )

    paths = [tmp_path / "report.html", tmp_path / "report.md"]
    write_reports(paths, tally, "pytest --promptflow-accept", scrub=scrubber.text)

    page, markdown = (path.read_text(encoding="utf-8") for path in paths)
    assert secret not in page
    assert secret not in markdown
    # A bare <redacted> would be a tag to the browser, which shows nothing for it.
    assert "&lt;redacted&gt;" in page
    assert REDACTED not in page
    assert REDACTED in markdown
