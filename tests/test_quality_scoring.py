"""Scoring a step's output against expected values: each field by its drift rule, the
step's own metrics, and what a change does to an expected field."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Annotated, Any, Literal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel

from pytest_promptflow import drift
from pytest_promptflow.cassette.format import GoldenStep, RecordedRun
from pytest_promptflow.drift.compare import FieldChange, compare_output
from pytest_promptflow.drift.judging import JudgeSession
from pytest_promptflow.errors import PromptflowError
from pytest_promptflow.quality import scoring
from pytest_promptflow.quality.case import (
    BROKEN,
    FIXED,
    STILL_CORRECT,
    STILL_WRONG,
    CaseQuality,
    top_field,
)
from pytest_promptflow.quality.scoring import Score, Scorer
from pytest_promptflow.trace import Run, StepCall


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


class Loose(BaseModel):
    value: Annotated[Any, drift.exact()] = None
    items: Annotated[list[Any], drift.unordered()] = []


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-2, 2)
    | st.sampled_from([0.0, 1.0, -1.5])
    | st.sampled_from(["", "a", "1"])
)
JSON_VALUES = st.lists(JSON_SCALARS, max_size=3) | st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("ab"), inner),
    max_leaves=6,
)


def _as_numbers(value: Any) -> Any:
    """``value`` with every flag written as the number Python holds it equal to."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, list):
        return [_as_numbers(item) for item in value]
    if isinstance(value, dict):
        return {key: _as_numbers(item) for key, item in value.items()}
    return value


ANSWERS = {
    "the same": lambda expected, other: expected,
    "flags as numbers": lambda expected, other: _as_numbers(expected),
    "inside a list": lambda expected, other: [expected],
    "another value": lambda expected, other: other,
}


@pytest.mark.parametrize("answer", ANSWERS.values(), ids=ANSWERS.keys())
@given(expected=JSON_VALUES, other=JSON_VALUES)
@example(expected=[True, "a"], other=None)
def test_an_answer_is_right_exactly_when_its_rule_finds_no_untolerated_change(
    answer: Callable[[Any, Any], Any], expected: Any, other: Any
) -> None:
    answered = answer(expected, other)
    scorer = Scorer("loose", Loose)
    judges = JudgeSession()

    for name in ("value", "items"):
        if name == "items" and not (isinstance(expected, list) and isinstance(answered, list)):
            continue
        [score] = scorer.score({name: answered}, {name: expected}, judges)
        changes = compare_output({name: expected}, {name: answered}, scorer.policy, judges)

        assert score.correct is not any(not change.tolerated for change in changes)


def test_an_answer_equal_to_its_expected_value_is_settled_without_its_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compared: list[Any] = []

    def counting(golden: Any, current: Any, *args: Any, **kwargs: Any) -> Any:
        compared.append(golden)
        return compare_output(golden, current, *args, **kwargs)

    monkeypatch.setattr(scoring, "compare_output", counting)
    equal = {"label": "bug", "level": 3, "flag": False, "tags": ["a", "b"], "reason": "ok"}

    found = scores(BASE | equal, equal)

    assert all(score.correct for score in found.values())
    assert (found["label"].expected, found["label"].answered) == ("bug", "bug")
    assert compared == []
    # A flag where a number is expected, or items in another order, go through the rule.
    scores(BASE | {"level": True, "tags": ["b", "a"]}, {"level": 1, "tags": ["a", "b"]})
    assert compared == [{"level": 1}, {"tags": ["a", "b"]}]


def test_every_case_of_a_session_shares_the_scorer_of_a_step() -> None:
    def other(output: Any, expected: Any) -> bool:
        return True

    shared = Scorer.of("answer", Answer)

    assert Scorer.of("answer", Answer) is shared
    assert Scorer.of("answer", Answer, [other]) is not shared
    assert Scorer.of("other", Answer) is not shared
    run = Run("c1", output_types={"answer": Answer})
    quality = [CaseQuality({"answer": {"level": 3}}, run, None, JudgeSession()) for _ in "ab"]
    assert quality[0]._scorer("answer") is quality[1]._scorer("answer") is shared


def test_an_output_type_that_cannot_be_hashed_gets_a_scorer_of_its_own() -> None:
    unhashable = Annotated[Answer, {"not": "hashable"}]

    scorer = Scorer.of("answer", unhashable)

    assert scorer is not Scorer.of("answer", unhashable)
    assert [s.correct for s in scorer.score(BASE, {"level": 3}, JudgeSession())] == [True]


def _case_quality(now: dict[str, Any], golden: dict[str, Any], metric: Any) -> CaseQuality:
    run = Run("c1", output_types={"answer": Answer}, metrics={"answer": (metric,)})
    run.calls.append(StepCall(0, "answer", None, {}, {}, output=now))
    recorded = RecordedRun(test="t", case="c1", steps=[GoldenStep(step="answer", output=golden)])
    return CaseQuality({"answer": {"label": "billing"}}, run, recorded, JudgeSession())


@pytest.mark.parametrize(
    ("golden", "measured"),
    [
        (BASE, 1),
        (BASE | {"label": "bug"}, 2),
        (BASE | {"level": 3.0}, 1),  # the same JSON number
        (BASE | {"flag": 1}, 2),  # a number where the answer now has a flag
    ],
)
def test_a_golden_call_answered_as_now_is_scored_once(
    golden: dict[str, Any], measured: int
) -> None:
    outputs: list[Any] = []

    def spy(output: Answer, expected: Any) -> bool:
        outputs.append(output)
        return output.label == "billing"

    quality = _case_quality(BASE, golden, spy)

    items = {item.name: item for item in quality.items("t", "c1")}

    assert len(outputs) == measured
    assert items["label"].golden is (golden["label"] == "billing")
    assert items["spy"].golden is (golden["label"] == "billing")
    assert items["label"].now is items["spy"].now is True


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
