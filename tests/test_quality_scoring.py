"""Scoring a step's output against expected values: each field by its drift rule, the
step's own metrics, and what a change does to an expected field."""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel

from pytest_promptflow import drift
from pytest_promptflow.drift.compare import FieldChange
from pytest_promptflow.drift.judging import JudgeSession
from pytest_promptflow.errors import PromptflowError
from pytest_promptflow.quality.case import BROKEN, FIXED, STILL_CORRECT, STILL_WRONG, top_field
from pytest_promptflow.quality.scoring import Score, Scorer


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


def same_meaning(old: Any, new: Any, criteria: str) -> drift.Verdict:
    return drift.Verdict(str(old).lower() == str(new).lower(), f"compared {old!r} and {new!r}")


class Answer(BaseModel):
    label: Literal["billing", "bug"]
    level: Annotated[int, drift.exact()]
    flag: bool = False
    color: Color = Color.RED
    reason: str = ""
    tags: Annotated[list[str], drift.unordered()] = []
    confidence: Annotated[float, drift.tolerance(0.1)] = 0.0
    verdict: Annotated[str, drift.judged("the same verdict", judge=same_meaning)] = ""
    summary: Annotated[str, drift.similar(0.8)] = ""
    trace: Annotated[str, drift.ignore()] = ""


def scores(output: dict[str, Any], expected: dict[str, Any], **kwargs: Any) -> dict[str, Score]:
    scorer = Scorer("answer", Answer, **kwargs)
    return {score.name: score for score in scorer.score(output, expected, JudgeSession())}


BASE = {
    "label": "billing",
    "level": 3,
    "flag": True,
    "color": "red",
    "reason": "Refund of 49.99 USD within 5 days.",
    "tags": ["a", "b"],
    "confidence": 0.5,
    "verdict": "Approved",
    "summary": "The customer was charged twice",
    "trace": "abc",
}


@pytest.mark.parametrize(
    ("name", "expected", "correct"),
    [
        ("label", "billing", True),
        ("label", "bug", False),
        ("level", 3, True),
        ("level", 4, False),
        ("flag", True, True),
        ("flag", False, False),
        ("color", "red", True),
        ("color", "blue", False),
        ("reason", "Within 5 days, a refund of $49.99.", True),
        ("reason", "Refund of 4.99 USD within 5 days.", False),
        ("reason", "No refund of 49.99 USD within 5 days.", False),
        ("tags", ["b", "a"], True),
        ("tags", ["a", "c"], False),
        ("confidence", 0.55, True),
        ("confidence", 0.7, False),
        ("verdict", "APPROVED", True),
        ("verdict", "Denied", False),
        ("summary", "The customer was charged twice.", True),
        ("summary", "Shipping was late", False),
    ],
)
def test_each_field_is_scored_by_its_drift_rule(name: str, expected: Any, correct: bool) -> None:
    assert scores(BASE, {name: expected})[name].correct is correct


def test_an_ignored_field_is_not_scored_and_a_missing_one_is_wrong() -> None:
    found = scores({k: v for k, v in BASE.items() if k != "reason"}, {"trace": "x", "reason": "y"})

    assert "trace" not in found
    assert found["reason"].correct is False


def test_fields_with_finitely_many_values_carry_the_expected_and_answered_labels() -> None:
    found = scores(BASE, {"label": "bug", "flag": True, "color": "blue", "level": 3})

    assert (found["label"].labelled, found["label"].expected, found["label"].answered) == (
        True,
        "bug",
        "billing",
    )
    assert found["flag"].labelled
    assert found["color"].labelled
    assert (found["color"].expected, found["color"].answered) == ("blue", "red")
    assert not found["level"].labelled  # an int, even under exact(), is not a label here


def test_a_wrong_answer_says_what_its_rule_measured() -> None:
    found = scores(BASE, {"reason": "Refund of 4.99 USD within 5 days.", "verdict": "Denied"})

    assert found["reason"].detail is not None
    assert "4.99" in found["reason"].detail
    assert found["verdict"].detail == "compared 'Denied' and 'Approved'"


def test_a_judged_field_asks_the_judge_with_the_expected_value_as_the_reference() -> None:
    asked: list[tuple[Any, Any]] = []

    def judge(old: Any, new: Any, criteria: str) -> drift.Verdict:
        asked.append((old, new))
        return drift.Verdict(True, "same")

    class Judged(BaseModel):
        verdict: Annotated[str, drift.judged("same", judge=judge)]

    Scorer("s", Judged).score({"verdict": "now"}, {"verdict": "expected"}, JudgeSession())

    assert asked == [("expected", "now")]


def metric_bool(output: Answer, expected: dict[str, Any]) -> bool:
    return output.level >= expected.get("level", 0)


def metric_float(output: Answer, expected: dict[str, Any]) -> float:
    return 0.25 if output.label == "billing" else 0.75


def test_metrics_get_the_typed_output_and_the_expected_fields() -> None:
    seen: list[tuple[Any, Any]] = []

    def spy(output: Any, expected: Any) -> float:
        seen.append((output, expected))
        return 0.5

    found = scores(BASE, {"level": 2}, metrics=[metric_bool, metric_float, spy])

    assert (found["metric_bool"].kind, found["metric_bool"].value) == ("metric", 1.0)
    assert found["metric_bool"].correct
    assert (found["metric_float"].value, found["metric_float"].correct) == (0.25, False)
    assert found["spy"].correct  # 0.5 counts as correct
    [(output, expected)] = seen
    assert isinstance(output, Answer)
    assert output.level == 3
    assert expected == {"level": 2}


@pytest.mark.parametrize("returned", [1.5, -0.1, "yes", None])
def test_a_metric_returning_something_else_names_the_step_and_metric(returned: Any) -> None:
    def odd(output: Any, expected: Any) -> Any:
        return returned

    with pytest.raises(PromptflowError, match=r"metric odd of step 'answer' returned"):
        scores(BASE, {"level": 3}, metrics=[odd])


def test_a_metric_that_raises_names_the_step_and_metric() -> None:
    def broken(output: Any, expected: Any) -> bool:
        raise KeyError("missing")

    with pytest.raises(PromptflowError, match=r"metric broken of step 'answer' raised KeyError"):
        scores(BASE, {"level": 3}, metrics=[broken])


def test_a_call_that_raised_is_wrong_on_every_field_and_metric() -> None:
    failed = Scorer("answer", Answer, metrics=[metric_bool]).failed({"level": 3, "trace": "x"})

    assert [(s.name, s.correct) for s in failed] == [("level", False), ("metric_bool", False)]


@pytest.mark.parametrize(
    ("path", "field"),
    [("category", "category"), ("problem.symptoms[0]", "problem"), ("tags[2]", "tags")],
)
def test_a_change_belongs_to_its_top_field(path: str, field: str) -> None:
    assert top_field(path) == field


def test_the_words_of_a_judged_change_are_the_documented_ones() -> None:
    assert (STILL_CORRECT, FIXED, STILL_WRONG, BROKEN) == (
        "still correct",
        "fixed",
        "still wrong",
        "broken",
    )
    change = FieldChange("label", "changed", "a", "b", "exact", False)
    assert change.to_json()["expected"] is None
