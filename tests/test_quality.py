"""Quality per step, as users run it: expected values in case files, scores in the
report, the paired verdict between the golden run and now, the quality gate, serially,
under pytest-xdist and through merged shards, and `report compare`."""

from __future__ import annotations

import enum
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pydantic
import pytest
from llm_fakes import Project
from quality_chains import (
    CASES,
    EXPECTED,
    outcomes,
    report,
    row,
    set_version,
    write_project,
)
from scipy import stats as scipy_stats

from pytest_promptflow.cases import load_cases
from pytest_promptflow.errors import PromptflowError
from pytest_promptflow.quality.expected import check_expected


def wilson(correct: int, n: int) -> tuple[float, float]:
    interval = scipy_stats.binomtest(correct, n).proportion_ci(method="wilson")
    return interval.low, interval.high


def mid_p(fixed: int, broken: int) -> float:
    n, k = fixed + broken, min(fixed, broken)
    return min(1.0, 2 * scipy_stats.binom.cdf(k - 1, n, 0.5) + scipy_stats.binom.pmf(k, n, 0.5))


@pytest.fixture
def labelled(project: Project) -> Project:
    """The labelled project recorded under ``v1``; its golden values are v1's answers."""
    write_project(project)
    project.record().assert_outcomes(passed=10)
    return project


def merge(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_promptflow.report", *args],
        cwd=project.path,
        capture_output=True,
        text=True,
    )


# -- expected values in case files ---------------------------------------------------------


def test_expected_is_not_part_of_the_input_and_is_the_case_s_expected(labelled: Project) -> None:
    labelled.write(
        labelled.path.joinpath("test_chain.py").read_text()
        + "\n\n@pytest.mark.promptflow_cases('tickets.jsonl')\n"
        "def test_input(chain_case):\n"
        "    save('seen', [chain_case.input, chain_case.expected])\n"
        "    assert 'expected' not in chain_case.input\n",
    )
    with labelled.llm.offline():
        labelled.run("-k", "test_input and t3").assert_outcomes(passed=1)
    assert labelled.results()["seen"] == [
        {"text": "ticket t3"},
        {"classify": {"category": "billing"}},
    ]


def test_a_case_model_that_declares_expected_receives_it(tmp_path: Path) -> None:
    from pydantic import BaseModel

    class WithExpected(BaseModel):
        text: str
        expected: dict[str, dict[str, str]]

    cases_file = tmp_path / "cases.jsonl"
    cases_file.write_text('{"id": "a", "text": "x", "expected": {"anything": {"f": "v"}}}\n')
    [case] = load_cases(cases_file, WithExpected, lambda name: None)

    assert case.input.expected == {"anything": {"f": "v"}}
    assert case.expected == {}


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        (
            {"clasify": {"category": "bug"}},
            "tickets.jsonl:1: case 't0': expects values of step 'clasify', but no @step is "
            "named so",
        ),
        (
            {"classify": {"categroy": "bug"}},
            "tickets.jsonl:1: case 't0': step 'classify' has no output field 'categroy'; "
            "its fields are category, summary",
        ),
        (
            {"classify": {"category": "refund"}},
            "tickets.jsonl:1: case 't0': the expected classify.category = \"refund\" is not a "
            "valid Literal",
        ),
        ({"classify": ["bug"]}, "the expected value of step 'classify' must be an object"),
    ],
)
def test_a_bad_expected_value_is_a_collection_error_naming_file_and_line(
    project: Project, expected: object, message: str
) -> None:
    write_project(project)
    (project.path / "fixtures" / "tickets.jsonl").write_text(
        json.dumps({"id": "t0", "text": "ticket t0", "expected": expected}) + "\n"
    )

    result = project.run()

    assert result.ret != 0
    result.stdout.fnmatch_lines([f"*{message}*"])


def test_the_validator_of_a_field_s_type_is_built_once_for_every_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Mood(enum.Enum):  # a type of this test alone: no validator of it is built yet
        CALM = "calm"
        ANGRY = "angry"

    class Answer(pydantic.BaseModel):
        mood: Mood
        level: int

    built: list[Any] = []
    build = pydantic.TypeAdapter

    def counting(annotation: Any, **options: Any) -> pydantic.TypeAdapter[Any]:
        built.append(annotation)
        return build(annotation, **options)

    monkeypatch.setattr(pydantic, "TypeAdapter", counting)
    for number in range(20):
        expected = {"answer": {"mood": "calm", "level": number}}
        check_expected(expected, f"case {number}", lambda name: (Answer,))

    assert built.count(Mood) == 1
    with pytest.raises(PromptflowError, match=r"case 20: the expected answer.mood = .* Mood"):
        check_expected({"answer": {"mood": "sad"}}, "case 20", lambda name: (Answer,))


# -- scores and figures --------------------------------------------------------------------


def test_the_report_has_every_figure_of_the_paired_comparison(labelled: Project) -> None:
    set_version(labelled, "v2")
    labelled.record("--promptflow-report=q.json", mode="new").assert_outcomes(passed=9, failed=1)

    category = row(report(labelled, "q.json"))
    golden, now = outcomes("v1"), outcomes("v2")
    assert category["test"] == "test_chain.py::test_classify"
    assert (category["step"], category["kind"]) == ("classify", "field")
    for side, truth in (("golden", golden), ("now", now)):
        correct = sum(truth.values())
        low, high = wilson(correct, 10)
        assert category[side]["correct"] == correct
        assert category[side]["scored"] == 10
        assert category[side]["rate"] == correct / 10
        assert round(category[side]["low"], 3) == round(low, 3)
        assert round(category[side]["high"], 3) == round(high, 3)
    assert category["fixed"] == ["t7", "t8"]
    assert category["broken"] == ["t0"]
    assert round(category["p_value"], 3) == round(mid_p(2, 1), 3) == 0.625
    assert category["verdict"] == "inconclusive"
    assert category["labels"] == ["billing", "bug", "outage"]
    answered = {c: json.loads(labelled.llm.answers[f"Classify v2: ticket {c}"]) for c in CASES}
    confusion = [[0] * 3 for _ in range(3)]
    labels = category["labels"]
    for case, expected in zip(CASES, EXPECTED, strict=True):
        confusion[labels.index(expected)][labels.index(answered[case]["category"])] += 1
    assert category["confusion"] == confusion
    f1 = []
    for i in range(3):
        support, predicted = sum(confusion[i]), sum(r[i] for r in confusion)
        f1.append(2 * confusion[i][i] / (support + predicted) if support + predicted else 0.0)
    assert category["macro_f1"] == pytest.approx(sum(f1) / 3)
    assert category["outcomes"]["t0"] == {
        "golden": True,
        "now": False,
        "expected": "billing",
        "answered": "bug",
        "golden_answered": "billing",
    }
    metric = row(report(labelled, "q.json"), "mentions_the_category")
    assert (metric["kind"], metric["now"]["correct"], metric["mean"]["now"]["value"]) == (
        "metric",
        10,
        1.0,
    )


def test_a_change_judged_by_its_expected_value_fixed_tolerated_broken_drift(
    labelled: Project,
) -> None:
    set_version(labelled, "v2")

    result = labelled.record(mode="new")

    result.assert_outcomes(passed=9, failed=1)
    result.stdout.fnmatch_lines(
        [
            "drift from the golden run in case t0 (test_chain.py::test_classify[[]t0[]]):",
            '*category: "billing" -> "bug"  [[]exact; expected: broken; DRIFT[]]',
        ]
    )
    output = result.stdout.str()
    assert "case t7 (" not in output  # fixed: tolerated
    assert "case t9 (" not in output  # still wrong, and changed: tolerated
    result.stdout.fnmatch_lines(
        [
            "quality: items right against their cases' expected values*",
            "test_classify classify.category *7/10 70.0% [[]39.7-89.2[]] -> 8/10 80.0% "
            "[[]49.0-94.3[]]  fixed t7 t8  broken t0  better? p=0.625 inconclusive",
        ]
    )


def test_no_golden_values_is_a_new_row(project: Project) -> None:
    write_project(project)

    project.record("--promptflow-report=q.json").assert_outcomes(passed=10)

    category = row(report(project, "q.json"))
    assert category["golden"] is None
    assert (category["verdict"], category["p_value"], category["fixed"]) == ("new", None, [])


# -- the quality gate ---------------------------------------------------------------------


def test_no_worse_passes_an_improvement_and_fails_a_regression(labelled: Project) -> None:
    ini = "promptflow_quality =\n    classify.category no worse\n"
    write_project(labelled, "v1", ini)
    set_version(labelled, "v3")

    regression = labelled.record("--promptflow-report=q.json", mode="new")

    # The requirement is the policy: the broken items do not fail their own tests.
    regression.assert_outcomes(passed=10)
    assert regression.ret == pytest.ExitCode.TESTS_FAILED
    regression.stdout.fnmatch_lines(
        [
            "*promptflow quality gate*",
            "classify.category no worse: FAILED",
            "  test_chain.py::test_classify classify.category: worse, p=0.0156; broken t0 t1 "
            "t2 t3 t4 t5",
        ]
    )
    assert report(labelled, "q.json")["quality_gate"][0]["passed"] is False

    with labelled.llm.offline():
        labelled.run("--promptflow-accept").assert_outcomes(passed=10)  # v3 is golden now
    set_version(labelled, "v1")
    labelled.record(mode="new").assert_outcomes(passed=10)  # an improvement on v3
    with labelled.llm.offline():
        improvement = labelled.run()
    assert improvement.ret == pytest.ExitCode.OK
    improvement.stdout.fnmatch_lines(
        [
            "*classify.category *1/10 *-> 7/10*fixed t0 t1 t2 t3 t4 t5*better p=0.0156",
            "classify.category no worse: passed",
        ]
    )


def test_no_broken_fails_a_single_broken_case_and_its_test(labelled: Project) -> None:
    write_project(labelled, "v1", "promptflow_quality =\n    classify.* no broken\n")
    set_version(labelled, "v2")

    result = labelled.record(mode="new")

    result.assert_outcomes(passed=9, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "classify.* no broken: FAILED",
            "  test_chain.py::test_classify classify.category: broken t0",
        ]
    )


def test_a_rate_requirement_fails_the_session_when_every_test_passed(labelled: Project) -> None:
    write_project(labelled, "v1", "promptflow_quality =\n    classify.category >= 75%\n")
    with labelled.llm.offline():
        result = labelled.run()

    result.assert_outcomes(passed=10)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "classify.category >= 75%: FAILED",
            "  test_chain.py::test_classify classify.category: 7/10 = 70.0% < 75%",
        ]
    )


def test_a_requirement_with_nothing_scored_is_not_evaluated(labelled: Project) -> None:
    write_project(labelled, "v1", "promptflow_quality =\n    classify.category >= 99%\n")
    labelled.write(
        labelled.path.joinpath("test_chain.py").read_text() + "\n\ndef test_other():\n    pass\n",
    )
    with labelled.llm.offline():
        result = labelled.run("-k", "test_other")

    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["classify.category >= 99%: not evaluated"])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("clasify.category >= 90%", "names step 'clasify', which no @step declares"),
        ("classify.categroy no worse", "names 'categroy', which is neither an output field"),
        ("classify.category better", "promptflow_quality: cannot read"),
    ],
)
def test_a_requirement_naming_no_step_or_field_is_a_usage_error(
    labelled: Project, line: str, message: str
) -> None:
    write_project(labelled, "v1", f"promptflow_quality =\n    {line}\n")

    result = labelled.run()

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str() + result.stdout.str()


def test_the_gate_is_the_same_under_xdist_and_through_merged_shards(labelled: Project) -> None:
    write_project(labelled, "v1", "promptflow_quality =\n    classify.category no worse\n")
    set_version(labelled, "v3")
    labelled.record("--promptflow-report=serial.json", mode="new")
    with labelled.llm.offline():
        parallel = labelled.run("-p", "xdist", "-n", "2", "--promptflow-report=xdist.json")
        one = labelled.run("-k", "t0 or t1 or t2 or t3 or t4", "--promptflow-report=one.json")
        two = labelled.run("-k", "not (t0 or t1 or t2 or t3 or t4)", "--promptflow-report=two.json")

    assert parallel.ret == pytest.ExitCode.TESTS_FAILED
    assert row(report(labelled, "xdist.json")) == row(report(labelled, "serial.json"))
    assert one.ret == pytest.ExitCode.TESTS_FAILED  # 5 broken of 5 on its own
    assert two.ret == pytest.ExitCode.OK  # 1 broken of 5: not significant on its own
    merged = merge(labelled, "merge", "one.json", "two.json", "--out", "m.json", "--out", "m.md")

    assert merged.returncode == 1, merged.stderr
    assert "classify.category no worse" in merged.stderr
    assert (labelled.path / "m.md").exists()
    assert row(report(labelled, "m.json")) == row(report(labelled, "serial.json"))


def test_compare_pairs_two_runs_and_fails_when_head_is_worse(labelled: Project) -> None:
    with labelled.llm.offline():
        labelled.run("--promptflow-report=base.json").assert_outcomes(passed=10)
    set_version(labelled, "v3")
    labelled.record(mode="new")
    with labelled.llm.offline():
        labelled.run("--promptflow-report=head.json")

    worse = merge(labelled, "compare", "base.json", "head.json")
    same = merge(labelled, "compare", "base.json", "base.json")

    assert worse.returncode == 1
    assert "test_classify classify.category" in worse.stdout
    assert "broken t0 t1 t2 t3 t4 t5  worse p=0.0156" in worse.stdout
    assert same.returncode == 0
    assert "unchanged" in same.stdout


def test_an_expected_step_no_test_called_is_listed_once(labelled: Project) -> None:
    lines = (labelled.path / "fixtures" / "tickets.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["expected"]["summarize"] = {"text": "x"}
    lines[0] = json.dumps(first)
    (labelled.path / "fixtures" / "tickets.jsonl").write_text("\n".join(lines) + "\n")
    labelled.write(
        labelled.path.joinpath("test_chain.py").read_text()
        + "\n\nclass Summary(BaseModel):\n    text: str\n\n\n"
        "@step\ndef summarize(text: str) -> Summary:\n    return Summary(text=text)\n"
    )

    with labelled.llm.offline():
        result = labelled.run()

    result.assert_outcomes(passed=10)
    result.stdout.fnmatch_lines(
        ["expected values not scored: no test of this session called summarize"]
    )
    assert result.stdout.str().count("no test of this session called") == 1


JUDGED = """
from typing import Literal

CLASSIFY = Prompt.load("prompts/classify.j2")


class Verdict(BaseModel):
    verdict: Annotated[str, drift.judged("the same decision")]


@step(prompt=CLASSIFY)
def decide(text: str) -> Verdict:
    return Verdict.model_validate_json(ask(CLASSIFY.render(text=text)))


class Ticket(BaseModel):
    text: str


@pytest.mark.promptflow_cases("tickets.jsonl", model=Ticket)
def test_decide(chain_case):
    decide(chain_case.input.text)
"""


def test_a_judged_expected_field_is_scored_by_recorded_judge_calls_replayed_offline(
    project: Project,
) -> None:
    from drift_chains import write_chain

    from pytest_promptflow.drift.judging import judge_prompt

    (project.path / "prompts").mkdir()
    (project.path / "prompts" / "classify.j2").write_text("Decide: {{ text }}")
    (project.path / "fixtures").mkdir()
    cases = {"a": ("refund approved", "Approved."), "b": ("refund denied", "Approved.")}
    (project.path / "fixtures" / "tickets.jsonl").write_text(
        "".join(
            json.dumps({"id": case, "text": text, "expected": {"decide": {"verdict": want}}}) + "\n"
            for case, (text, want) in cases.items()
        )
    )
    project.pytester.makeconftest(
        "from endpoint import openai_client\nfrom pytest_promptflow import drift\n"
        "drift.use_judge(drift.OpenAIJudge(openai_client()))\n"
    )
    answers = {"a": "The refund is approved.", "b": "The refund is denied."}
    for case, (text, want) in cases.items():
        project.llm.answers[f"Decide: {text}"] = json.dumps({"verdict": answers[case]})
        same = case == "a"
        project.llm.answers[judge_prompt(want, answers[case], "the same decision")] = json.dumps(
            {"equivalent": same, "reason": "same" if same else "another decision"}
        )
    write_chain(project, JUDGED)

    project.record("--promptflow-report=live.json").assert_outcomes(passed=2)
    judge_calls = [
        i
        for case in cases
        for i in project.cassette(f"test_chain/test_decide/{case}.json")["interactions"]
        if i.get("judge") == "verdict"
    ]
    with project.llm.offline():
        project.run("--promptflow-report=replayed.json").assert_outcomes(passed=2)

    assert len(judge_calls) >= 2  # the expected value of each case, asked of the judge
    live, replayed = (
        row(report(project, "live.json"), "verdict"),
        row(report(project, "replayed.json"), "verdict"),
    )
    assert live["now"]["correct"] == 1
    assert live["outcomes"]["a"]["now"] is True
    assert live["outcomes"]["b"]["now"] is False
    assert replayed["outcomes"] == {
        case: {"golden": outcome["now"], "now": outcome["now"]}
        for case, outcome in live["outcomes"].items()
    }


def test_a_step_alone_is_scored_against_the_expected_values_of_the_case_it_replays(
    labelled: Project,
) -> None:
    labelled.write(
        labelled.path.joinpath("test_chain.py").read_text()
        + "\n\n@pytest.mark.promptflow_step('classify')\n"
        "def test_alone(recorded_step):\n"
        "    recorded_step()\n",
    )
    with labelled.llm.offline():
        labelled.run("-k", "test_alone").assert_outcomes(passed=10)
    set_version(labelled, "v2")

    result = labelled.record("-k", "test_alone", "--promptflow-report=q.json", mode="new")

    # t7 and t8 are fixed (tolerated), t0 is broken (drift), as in the chain's own test.
    result.assert_outcomes(passed=9, failed=1)
    result.stdout.fnmatch_lines(["*test_alone[[]t0[]]*", "*expected: broken; DRIFT*"])
    alone = [r for r in report(labelled, "q.json")["quality"] if r["test"].endswith("test_alone")]
    [category] = [r for r in alone if r["field"] == "category"]
    assert (category["fixed"], category["broken"]) == (["t7", "t8"], ["t0"])


def test_no_broken_beside_a_rate_on_the_same_field_still_fails_the_broken_case(
    labelled: Project,
) -> None:
    ini = "promptflow_quality =\n    classify.category no broken\n    classify.category >= 50%\n"
    write_project(labelled, "v1", ini)
    set_version(labelled, "v2")

    result = labelled.record(mode="new")

    result.assert_outcomes(passed=9, failed=1)
    result.stdout.fnmatch_lines(["classify.category no broken: FAILED"])


def test_a_case_a_step_test_runs_twice_is_broken_when_either_of_its_items_is(
    project: Project,
) -> None:
    # test_classify calls classify twice per case, the second time always answered
    # right; the step test runs each call alone (t0, then t0-2).
    write_project(project)
    chain = project.path.joinpath("test_chain.py").read_text()
    first = "    classify(chain_case.input.text)"
    assert chain.count(first) == 1
    project.write(
        chain.replace(first, f"{first}\n    classify(chain_case.input.text + ' again')")
        + "\n\n@pytest.mark.promptflow_step('classify')\n"
        "def test_alone(recorded_step):\n"
        "    recorded_step()\n",
    )
    for case, label in zip(CASES, EXPECTED, strict=True):
        for version in ("v1", "v2"):
            project.llm.answers[f"Classify {version}: ticket {case} again"] = json.dumps(
                {"category": label, "summary": f"{label}: ticket {case}"}
            )
    project.record().assert_outcomes(passed=10, skipped=1)
    set_version(project, "v2")

    result = project.record(
        "-k",
        "test_alone",
        "-o",
        "promptflow_quality=classify.category no broken",
        "--promptflow-report=q.json",
        mode="new",
    )

    result.assert_outcomes(passed=19, failed=1)
    result.stdout.fnmatch_lines(["*test_alone[[]t0[]]*", "*expected: broken; DRIFT*"])
    alone = row(report(project, "q.json"))
    assert alone["test"] == "test_chain.py::test_alone"
    assert alone["now"]["scored"] == 10
    # One item per case: t0 broken by its first call, t7 and t8 fixed by theirs (their
    # second calls are right in both runs).
    assert (alone["fixed"], alone["broken"]) == (["t7", "t8"], ["t0"])
    result.stdout.fnmatch_lines(
        ["classify.category no broken: FAILED", "  test_chain.py::test_alone *: broken t0"]
    )
