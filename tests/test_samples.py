"""Several samples per case: recorded and replayed each on its own, pass rates, drift
calibrated to the golden spread, and a one-sample case exactly as before."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest
from drift_chains import HEADER
from llm_fakes import Project

CHAIN = """
from endpoint import RESULTS

RATE = Prompt.from_string("Rate {{{{ text }}}}", name="rate")


class Rating(BaseModel):
    level: Annotated[int, drift.exact()]
    label: Literal["low", "high"] = "low"


@step(prompt=RATE)
def rate(text: str) -> Rating:
    return Rating.model_validate_json(ask(RATE.render(text=text)))


@pytest.mark.promptflow{marker}
def test_rate(chain_run):
    rating = rate("ticket")
    save(f"answers-{{len(list((RESULTS).glob('answers-*'))) if RESULTS.exists() else 0}}",
         rating.level)
    {then}
"""
PROMPT = "Rate ticket"
NODE = "test_chain.py::test_rate"
FILE = "test_chain/test_rate.json"


def write(project: Project, marker: str = "", then: str = "", ini: str = "") -> None:
    source = HEADER.replace("import Annotated, Any", "import Annotated, Any, Literal")
    project.write(source + textwrap.dedent(CHAIN.format(marker=marker, then=then)))
    if ini:
        project.pytester.makeini("[pytest]\n" + textwrap.dedent(ini))


def levels(*values: int) -> list[str]:
    return [json.dumps({"level": value}) for value in values]


def answered(project: Project) -> list[int]:
    results = project.results()
    return [results[f"answers-{i}"] for i in range(len(results))]


def record(project: Project, *values: int, samples: int = 5, mode: str = "all") -> Any:
    project.llm.reset()
    project.llm.sequences[PROMPT] = levels(*values)
    return project.record(f"--promptflow-samples={samples}", mode=mode)


def report(project: Project, name: str = "report.json") -> dict[str, Any]:
    return json.loads((project.path / name).read_text(encoding="utf-8"))


# -- recording and replaying samples ---------------------------------------------------------


def test_each_sample_is_recorded_live_and_replays_its_own_answers_offline(
    project: Project,
) -> None:
    write(project)

    record(project, 3, 3, 4, 3, 4).assert_outcomes(passed=1)

    assert len(project.llm.requests) == 5  # byte-identical requests, one live call each
    recorded = project.cassette(FILE)
    assert [i["sample"] for i in recorded["interactions"]] == [0, 1, 2, 3, 4]
    assert [s["sample"] for s in recorded["steps"]] == [0, 1, 2, 3, 4]
    assert [s["output"]["level"] for s in recorded["steps"]] == [3, 3, 4, 3, 4]
    assert answered(project) == [3, 3, 4, 3, 4]
    with project.llm.offline():
        project.run("--promptflow-samples=5").assert_outcomes(passed=1)
        assert answered(project) == [3, 3, 4, 3, 4]
        project.run("--promptflow-samples=2").assert_outcomes(passed=1)  # the first two
        assert answered(project) == [3, 3]


def test_rerecording_an_unchanged_deterministic_model_changes_no_byte(project: Project) -> None:
    write(project)
    record(project, 3, 3, 4, 3, 4).assert_outcomes(passed=1)
    before = project.files()

    record(project, 3, 3, 4, 3, 4).assert_outcomes(passed=1)

    assert project.files() == before


def test_a_one_sample_file_is_written_exactly_as_without_samples(project: Project) -> None:
    write(project)
    record(project, 3, samples=1).assert_outcomes(passed=1)
    one = project.files()

    text = (project.cassettes / FILE).read_text(encoding="utf-8")
    assert '"sample"' not in text
    record(project, 3, samples=1).assert_outcomes(passed=1)
    assert project.files() == one


def test_samples_come_from_the_command_line_then_the_marker_then_ini(project: Project) -> None:
    write(project, marker="(samples=3)", ini="promptflow_samples = 2\n")
    project.llm.sequences[PROMPT] = levels(1)

    project.record().assert_outcomes(passed=1)
    assert len(project.llm.requests) == 3  # the marker over ini
    project.llm.reset()
    project.record("--promptflow-samples=4").assert_outcomes(passed=1)
    assert len(project.llm.requests) == 4  # the command line over the marker


def test_replaying_more_samples_than_recorded_is_a_miss_naming_them(project: Project) -> None:
    write(project)
    record(project, 3, 3, 4, samples=3).assert_outcomes(passed=1)

    with project.llm.offline():
        result = project.run("--promptflow-samples=5")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*sample 3 of 5 is not recorded: the recorded run holds 3; record the samples it "
            f"lacks with: pytest {NODE} --promptflow-record=new --promptflow-samples=5",
        ]
    )


def test_recording_new_tops_a_case_up_and_keeps_the_samples_recorded(project: Project) -> None:
    write(project)
    record(project, 3, 3, 4, samples=3).assert_outcomes(passed=1)
    first = project.cassette(FILE)

    project.llm.reset()
    project.llm.sequences[PROMPT] = levels(4, 3)  # the two new samples answer 4 and 3
    project.record("--promptflow-samples=5", mode="new").assert_outcomes(passed=1)

    assert len(project.llm.requests) == 2
    topped = project.cassette(FILE)
    assert topped["interactions"][:3] == first["interactions"]
    assert [i["sample"] for i in topped["interactions"]] == [0, 1, 2, 3, 4]
    # New samples become golden when accepted, like any recording.
    assert topped["steps"] == first["steps"]
    with project.llm.offline():
        project.run("--promptflow-samples=5", "--promptflow-accept").assert_outcomes(passed=1)
    assert len(project.cassette(FILE)["steps"]) == 5


# -- pass rates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "passes"), [("0.8", True), ("1.0", False)])
def test_a_property_that_holds_in_four_of_five_samples(
    project: Project, rate: str, passes: bool
) -> None:
    ini = f"promptflow_min_pass_rate = {rate}\n"
    write(project, then="assert rating.level < 4, 'too high'", ini=ini)

    result = record(project, 1, 2, 9, 3, 2)

    result.assert_outcomes(passed=1 if passes else 0, failed=0 if passes else 1)
    result.stdout.fnmatch_lines([f"  {NODE}: {'passed' if passes else 'failed'}, flaky 4/5*"])
    if not passes:
        result.stdout.fnmatch_lines(
            [
                "4 of 5 samples passed (80%), below the minimum pass rate 100% (flaky 4/5):",
                "  sample 2: AssertionError: too high*",
            ]
        )


def test_min_pass_rate_on_the_marker_and_the_labels_in_the_json_report(project: Project) -> None:
    write(project, marker="(samples=5, min_pass_rate=0.6)", then="assert rating.level < 4")

    project.llm.sequences[PROMPT] = levels(1, 9, 9, 2, 3)
    project.record("--promptflow-report=report.json").assert_outcomes(passed=1)

    assert report(project)["samples"] == [
        {"test": NODE, "case": None, "n": 5, "passed": 3, "label": "flaky 3/5",
         "min_pass_rate": 0.6}
    ]  # fmt: skip


def test_a_report_without_samples_has_no_samples_key(project: Project) -> None:
    write(project)
    project.llm.answers[PROMPT] = levels(3)[0]
    project.record("--promptflow-report=report.json").assert_outcomes(passed=1)

    assert "samples" not in report(project)


# -- drift against the golden spread --------------------------------------------------------------


def test_the_same_spread_in_another_order_is_no_drift(project: Project) -> None:
    write(project)
    record(project, 3, 3, 3, 4, 4).assert_outcomes(passed=1)

    result = record(project, 4, 3, 4, 3, 4)

    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*drift from the golden*")


def test_a_sample_outside_the_spread_is_drift_naming_the_field_and_both_spreads(
    project: Project,
) -> None:
    write(project)
    record(project, 3, 3, 3, 4, 4).assert_outcomes(passed=1)

    result = record(project, 3, 3, 3, 3, 5)

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "  step rate — model: the model answered the same request differently",
            '    level: "3 x3, 4 x2" -> "3 x4, 5 x1"  [[]exact, 1 of 5 samples outside the '
            "golden spread (sample 4); shift not confirmed: share of 3 3/5 -> 4/5, p=1; "
            "noisy; DRIFT[]]",
        ]
    )
    with project.llm.offline():  # kept, so the gate holds offline
        project.run("--promptflow-samples=5").assert_outcomes(failed=1)


def test_a_shift_seen_on_ten_samples_is_drift_and_on_five_is_only_reported(
    project: Project,
) -> None:
    write(project)
    record(project, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, samples=10).assert_outcomes(passed=1)

    ten = record(project, *[4] * 10, samples=10)

    ten.assert_outcomes(failed=1)
    ten.stdout.fnmatch_lines(["*shift confirmed: share of 3 6/10 -> 0/10, p=0.0108*DRIFT*"])

    project.cassettes.joinpath(FILE).unlink()
    record(project, 3, 3, 3, 4, 4).assert_outcomes(passed=1)
    five = record(project, *[4] * 5, samples=5, mode="all")
    five.assert_outcomes(passed=1)  # every new value is within the spread
    with project.llm.offline():
        shown = project.run("--promptflow-samples=5", "--promptflow-report=five.json")
    shown.assert_outcomes(passed=1)
    [case] = report(project, "five.json")["cases"]
    [change] = case["steps"][0]["changes"]
    assert change["tolerated"] is True
    assert "shift not confirmed: share of 3 3/5 -> 0/5, p=0.167" in change["score"]
    assert "noisy" in change["score"]


def test_xdist_gives_the_same_report(project: Project) -> None:
    write(project)
    project.write(
        (project.path / "test_chain.py").read_text()
        + "\n\n@pytest.mark.promptflow\ndef test_other():\n    rate('ticket two')\n",
    )
    project.llm.sequences["Rate ticket two"] = levels(2, 3)
    record(project, 3, 3, 4).assert_outcomes(passed=2)
    record(project, 3, 5, 4).assert_outcomes(failed=1, passed=1)

    with project.llm.offline():
        project.run("--promptflow-samples=5", "--promptflow-report=serial.json")
        project.run("--promptflow-samples=5", "-p", "xdist", "-n", "2",
                    "--promptflow-report=xdist.json")  # fmt: skip

    assert report(project, "xdist.json") == report(project, "serial.json")


CASES_CHAIN = """
from endpoint import RESULTS

RATE = Prompt.from_string("Rate {{ text }}", name="rate")


class Rating(BaseModel):
    level: Annotated[int, drift.exact()]


@step(prompt=RATE)
def rate(text: str) -> Rating:
    return Rating.model_validate_json(ask(RATE.render(text=text)))


@pytest.mark.promptflow_cases("tickets.jsonl", samples=5)
def test_rate(chain_case):
    rate(chain_case.input["text"])
"""


def test_quality_counts_an_item_by_the_majority_of_its_samples(project: Project) -> None:
    (project.path / "fixtures").mkdir()
    (project.path / "fixtures" / "tickets.jsonl").write_text(
        '{"id": "most", "text": "most", "expected": {"rate": {"level": 3}}}\n'
        '{"id": "few", "text": "few", "expected": {"rate": {"level": 3}}}\n'
    )
    project.write(HEADER + textwrap.dedent(CASES_CHAIN))
    project.llm.sequences["Rate most"] = levels(3, 3, 4, 3, 4)  # 3 of 5 right
    project.llm.sequences["Rate few"] = levels(4, 3, 4, 3)  # 5 samples: 2 of 5 right
    project.record("--promptflow-report=live.json").assert_outcomes(passed=2)

    with project.llm.offline():
        project.run("--promptflow-report=replayed.json").assert_outcomes(passed=2)

    [row] = report(project, "replayed.json")["quality"]
    assert row["outcomes"]["most"] == {"golden": True, "now": True, "share": 0.6,
                                       "golden_share": 0.6}  # fmt: skip
    assert row["outcomes"]["few"]["now"] is False  # 2 of 5 right: not more than half
    assert row["outcomes"]["few"]["share"] == 0.4
    assert (row["now"]["correct"], row["now"]["scored"]) == (1, 2)
    usage = report(project, "replayed.json")["steps"]["rate"]["usage"]
    # Usage is the mean per sample: one call of 21 tokens in and 2 out.
    assert (usage["now"]["model_calls"], usage["now"]["input_tokens"]) == (2, 42)
    assert usage["now"]["output_tokens"] == 4
    assert usage["golden"] == usage["now"]
