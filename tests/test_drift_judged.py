"""Judged fields: a model's verdict, recorded and replayed like any step's calls."""

from __future__ import annotations

import json
from typing import Any

import pytest
from drift_chains import LABEL_PROMPT, ONE_STEP_NODE, reply, write_chain, write_one_step
from llm_fakes import FakeLLM, Project

from pytest_promptflow import drift
from pytest_promptflow.drift.judging import JudgeSession, judge_prompt, parse_verdict

CRITERIA = "the same resolution is offered to the customer"
JUDGED = f"Annotated[str, drift.judged({CRITERIA!r})]"
GOLDEN = "We will send a replacement router this week."
REWORDED = "A new router is on its way to you this week."
CHANGED = "We will refund the router this week."

PROJECT_JUDGE = """
from endpoint import openai_client
from pytest_promptflow import drift

drift.use_judge(drift.OpenAIJudge(openai_client(), model="gpt-4o-mini"))
"""


def verdict(equivalent: bool, reason: str) -> str:
    return json.dumps({"equivalent": equivalent, "reason": reason})


def judge_asks(llm: FakeLLM, old: str, new: str) -> str:
    return judge_prompt(old, new, CRITERIA)


def judge_requests(llm: FakeLLM) -> list[dict[str, Any]]:
    return [r for r in llm.requests if "Criteria:" in r["messages"][-1]["content"]]


@pytest.fixture
def judged(project: Project) -> Project:
    """A one-step chain whose output is judged by the project's judge, recorded once."""
    project.pytester.makeconftest(PROJECT_JUDGE)
    write_one_step(project, JUDGED)
    project.llm.answers[LABEL_PROMPT] = reply({"value": GOLDEN})
    project.record().assert_outcomes(passed=1)
    project.llm.reset()
    return project


def test_a_judged_change_is_recorded_tagged_and_replayed_offline(judged: Project) -> None:
    llm = judged.llm
    llm.answers[LABEL_PROMPT] = reply({"value": REWORDED})
    llm.answers[judge_asks(llm, GOLDEN, REWORDED)] = verdict(True, "both send a new router")

    judged.record().assert_outcomes(passed=1)

    (asked,) = judge_requests(llm)
    assert asked["model"] == "gpt-4o-mini"
    interactions = judged.cassette("test_chain/test_label.json")["interactions"]
    assert [(i["step"], i.get("judge")) for i in interactions] == [
        ("label", None),
        ("label", "value"),
    ]
    judged.assert_no_canary()

    llm.reset()
    with llm.offline():
        replayed = judged.run()
    replayed.assert_outcomes(passed=1)
    replayed.stdout.re_match_lines([r"^label +1 +1 +1 +0 +0$"])
    assert llm.requests == []


def test_a_judge_that_finds_another_meaning_fails_the_gate_with_its_reason(
    judged: Project,
) -> None:
    llm = judged.llm
    llm.answers[LABEL_PROMPT] = reply({"value": CHANGED})
    llm.answers[judge_asks(llm, GOLDEN, CHANGED)] = verdict(False, "a refund is not a replacement")

    result = judged.record()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"drift from the golden run ({ONE_STEP_NODE}):",
            "  step label — model: the model answered the same request differently",
            f'    value: "{GOLDEN}" -> "{CHANGED}"  '
            f"[[]judged('{CRITERIA}'), judge: a refund is not a replacement; DRIFT[]]",
        ]
    )


def test_a_missing_judge_recording_is_a_miss_with_the_command_never_a_live_call(
    judged: Project,
) -> None:
    llm = judged.llm
    llm.answers[LABEL_PROMPT] = reply({"value": REWORDED})
    llm.answers[judge_asks(llm, GOLDEN, REWORDED)] = verdict(True, "both send a new router")
    judged.record().assert_outcomes(passed=1)
    # The criteria change, so the recorded verdict no longer answers the judge's request.
    write_one_step(judged, JUDGED.replace("to the customer", "to the user"))
    llm.reset()

    result = judged.run()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "no recording for a request of the judge of step 'label', field value",
            "*",
            "To record it, run:",
            f"  pytest {ONE_STEP_NODE} --promptflow-record=new",
        ],
        consecutive=False,
    )
    assert judge_requests(llm) == [], "replay never asks the model"


def test_a_malformed_verdict_is_an_error_naming_the_step_and_field_never_a_pass(
    judged: Project,
) -> None:
    llm = judged.llm
    llm.answers[LABEL_PROMPT] = reply({"value": REWORDED})
    llm.answers[judge_asks(llm, GOLDEN, REWORDED)] = "Yes, they mean the same."

    result = judged.record()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"{ONE_STEP_NODE}: the judge of step 'label', field value failed: "
            "malformed verdict: the reply is not a JSON object*"
        ]
    )


def test_equal_values_never_call_the_judge(judged: Project) -> None:
    judged.record().assert_outcomes(passed=1)

    assert judge_requests(judged.llm) == []
    interactions = judged.cassette("test_chain/test_label.json")["interactions"]
    assert all("judge" not in interaction for interaction in interactions)


TWICE = """
class Output(BaseModel):
    value: Annotated[str, drift.judged("the same resolution is offered to the customer")]


LABEL = Prompt.from_string("Label {{ topic }}", name="label")


@step(prompt=LABEL)
def label(topic: str) -> Output:
    return Output.model_validate_json(ask(LABEL.render(topic=topic)))


@pytest.mark.promptflow
def test_label():
    label("gravity")
    label("gravity")
"""


def test_the_same_question_is_asked_once_per_recorded_run(project: Project) -> None:
    project.pytester.makeconftest(PROJECT_JUDGE)
    write_chain(project, TWICE)
    llm = project.llm
    llm.answers[LABEL_PROMPT] = reply({"value": GOLDEN})
    project.record().assert_outcomes(passed=1)
    llm.reset()
    llm.answers[LABEL_PROMPT] = reply({"value": REWORDED})
    llm.answers[judge_asks(llm, GOLDEN, REWORDED)] = verdict(True, "both send a new router")

    project.record().assert_outcomes(passed=1)

    assert len(judge_requests(llm)) == 1, "two calls with the same change: one question"


def test_a_judged_field_without_any_judge_says_how_to_set_one(project: Project) -> None:
    write_one_step(project, JUDGED)
    project.llm.answers[LABEL_PROMPT] = reply({"value": GOLDEN})
    project.record().assert_outcomes(passed=1)
    project.llm.answers[LABEL_PROMPT] = reply({"value": REWORDED})

    result = project.record()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*no judge is set; call pytest_promptflow.drift.use_judge(...) in conftest.py*"]
    )


# -- without pytest: the session, the parser and a judge of one's own --------------------------


def test_a_judge_of_ones_own_decides_and_is_asked_once_per_question() -> None:
    asked: list[tuple[Any, Any, str]] = []

    def same_first_word(old: Any, new: Any, criteria: str) -> drift.Verdict:
        asked.append((old, new, criteria))
        return drift.Verdict(old.split()[0] == new.split()[0], "compared the first words")

    rule = drift.judged("same opening", judge=same_first_word)
    session = JudgeSession("T-1")

    first = session.judge(rule, "draft", "body", "Hello there", "Hello again")
    again = session.judge(rule, "draft", "body", "Hello there", "Hello again")
    other = session.judge(rule, "draft", "body", "Hello there", "Goodbye")

    assert (first.tolerated, first.score) == (True, "compared the first words")
    assert again == first
    assert other.tolerated is False
    assert len(asked) == 2


def test_a_judge_that_returns_something_else_than_a_verdict_is_an_error() -> None:
    rule = drift.judged("same", judge=lambda old, new, criteria: True)

    with pytest.raises(drift.JudgeError, match=r"step 'draft', field body.*returned True"):
        JudgeSession().judge(rule, "draft", "body", "a", "b")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yes",
        '{"equivalent": "yes", "reason": "same"}',
        '{"equivalent": true}',
        '{"equivalent": true, "reason": ""}',
        '{"equivalent": true, "reason": "same", "confidence": 0.9}',
        '```json\n{"equivalent": true, "reason": "same"}\n```',
    ],
)
def test_the_verdict_parser_is_strict(text: str) -> None:
    with pytest.raises(ValueError, match=r"reply|equivalent|reason"):
        parse_verdict(text)


def test_the_verdict_parser_reads_a_well_formed_verdict() -> None:
    assert parse_verdict(' {"reason": "same plan", "equivalent": false}\n') == drift.Verdict(
        False, "same plan"
    )
