"""Judged fields: a model's verdict, recorded and replayed like any step's calls."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from drift_chains import (
    LABEL_PROMPT,
    ONE_STEP_NODE,
    record_golden,
    record_then_rerecord,
    reply,
    write_one_step,
)
from llm_fakes import ANTHROPIC_KEY, OPENAI_KEY, FakeLLM, Project

from pytest_promptflow import drift
from pytest_promptflow.drift.judging import JudgeSession, parse_verdict

CRITERIA = "the same resolution is offered to the customer"
JUDGED = f"Annotated[str, drift.judged({CRITERIA!r})]"
GOLDEN = "We will send a replacement router this week."
REWORDED = "A new router is on its way to you this week."
CHANGED = "We will refund the router this week."
OFFERS = {GOLDEN: "a replacement", REWORDED: "a replacement", CHANGED: "a refund"}
"""What each value offers the customer, as the judge model understands it."""

# The project's judge, on each SDK, as README's conftest.py sets it.
PROJECT_JUDGES = {
    "openai": """
from endpoint import openai_client
from pytest_promptflow import drift

drift.use_judge(drift.OpenAIJudge(openai_client(), model="gpt-4o-mini"))
""",
    "anthropic": """
from endpoint import anthropic_client
from pytest_promptflow import drift

drift.use_judge(drift.AnthropicJudge(anthropic_client(), model="claude-haiku-4-5"))
""",
}
PROJECT_JUDGE = PROJECT_JUDGES["openai"]

README = Path(__file__).resolve().parents[1] / "README.md"
PLACEHOLDERS = ("{criteria}", "{old}", "{new}")


def documented_judge_prompt() -> str:
    """The judges' prompt as the README shows it, with its placeholders."""
    readme = README.read_text(encoding="utf-8")
    block = re.search(r"Both send this prompt.*?```text\n(.*?)\n```", readme, re.DOTALL)
    assert block is not None, "the README shows the judges' prompt"
    assert all(placeholder in block[1] for placeholder in PLACEHOLDERS)
    return block[1]


def documented_prompt_for(old: Any, new: Any, criteria: str = CRITERIA) -> str:
    """The README's prompt with the values filled in (the values are JSON)."""
    return (
        documented_judge_prompt()
        .replace("{criteria}", criteria)
        .replace("{old}", json.dumps(old))
        .replace("{new}", json.dumps(new))
    )


def verdict(equivalent: bool, reason: str) -> str:
    return json.dumps({"equivalent": equivalent, "reason": reason})


class JudgeModel(dict[str, str]):
    """The fake API's answers (``FakeLLM.answers``), with a judge model behind them.

    A prompt in the shape the README documents is read as a model would read it: the
    criteria, the golden value and the new value are taken out of its text, and the
    verdict is decided from what those values offer, so that a prompt that does not hold
    both values gets a wrong verdict. Any other prompt gets its scripted answer."""

    def __init__(self) -> None:
        super().__init__()
        parts = re.split(
            "(" + "|".join(map(re.escape, PLACEHOLDERS)) + ")", documented_judge_prompt()
        )
        self.pattern = re.compile(
            "".join(
                f"(?P<{part[1:-1]}>.*)" if part in PLACEHOLDERS else re.escape(part)
                for part in parts
            ),
            re.DOTALL,
        )
        self.read: list[tuple[str, Any, Any]] = []
        """(criteria, golden, new) of each judge prompt, as read out of its text."""
        self.in_prose = False
        """Answer in prose instead of the JSON verdict asked for."""

    def judge(self, prompt: str) -> str | None:
        found = self.pattern.fullmatch(prompt)
        if found is None:
            return None
        golden, new = json.loads(found["old"]), json.loads(found["new"])
        self.read.append((found["criteria"], golden, new))
        if self.in_prose:
            return "Yes, they mean the same."
        offered, offers = OFFERS.get(golden, golden), OFFERS.get(new, new)
        if offered == offers:
            return verdict(True, f"both offer {offered}")
        return verdict(False, f"{offers} is not {offered}")

    def get(self, prompt: str, default: Any = None) -> Any:  # type: ignore[override]
        answer = self.judge(prompt)
        return answer if answer is not None else super().get(prompt, default)

    def __missing__(self, prompt: str) -> str:
        answer = self.judge(prompt)
        if answer is None:
            raise KeyError(prompt)
        return answer


def judge_requests(llm: FakeLLM) -> list[dict[str, Any]]:
    return [r for r in llm.requests if "Criteria:" in r["messages"][-1]["content"]]


@pytest.fixture
def judged(project: Project, request: pytest.FixtureRequest) -> Project:
    """A one-step chain whose output is judged by the project's judge (OpenAI's unless
    parametrized), recorded once; the fake API answers the judge as a model would."""
    project.pytester.makeconftest(PROJECT_JUDGES[getattr(request, "param", "openai")])
    write_one_step(project, JUDGED)
    project.llm.answers = JudgeModel()
    record_golden(project, reply({"value": GOLDEN}))
    project.llm.reset()
    return project


def judge_model(where: Project | FakeLLM) -> JudgeModel:
    answers = (where.llm if isinstance(where, Project) else where).answers
    assert isinstance(answers, JudgeModel)
    return answers


BOTH_JUDGES = pytest.mark.parametrize("judged", ["openai", "anthropic"], indirect=True)


@BOTH_JUDGES
def test_a_judged_change_is_recorded_tagged_and_replayed_offline(judged: Project) -> None:
    llm = judged.llm
    llm.answers[LABEL_PROMPT] = reply({"value": REWORDED})

    judged.record().assert_outcomes(passed=1)

    # The judge was sent the README's prompt, golden and new value in their places.
    (asked,) = judge_requests(llm)
    prompt = documented_prompt_for(GOLDEN, REWORDED)
    assert asked["messages"] == [{"role": "user", "content": prompt}]
    assert asked["temperature"] == 0
    if "max_tokens" in asked:  # Anthropic's Messages API
        assert asked["model"] == "claude-haiku-4-5"
    else:
        assert asked["model"] == "gpt-4o-mini"
        assert asked["response_format"] == {"type": "json_object"}
    assert judge_model(judged).read == [(CRITERIA, GOLDEN, REWORDED)]
    interactions = judged.cassette("test_chain/test_label.json")["interactions"]
    assert [(i["step"], i.get("judge")) for i in interactions] == [
        ("label", None),
        ("label", "value"),
    ]
    judged.assert_no_canary()

    llm.reset()
    with llm.offline():
        replayed = judged.run("--promptflow-report=report.json")
    replayed.assert_outcomes(passed=1)
    replayed.stdout.re_match_lines([r"^label +1 +1 +1 +0 +0$"])
    assert llm.requests == []
    # The recorded verdict, parsed again: the change tolerated, with the judge's reason.
    report = json.loads((judged.path / "report.json").read_text(encoding="utf-8"))
    (change,) = report["cases"][0]["steps"][0]["changes"]
    assert (change["path"], change["tolerated"], change["score"]) == (
        "value",
        True,
        "both offer a replacement",
    )


@BOTH_JUDGES
def test_a_judge_that_finds_another_meaning_fails_the_gate_with_its_reason(
    judged: Project,
) -> None:
    llm = judged.llm
    llm.answers[LABEL_PROMPT] = reply({"value": CHANGED})

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


@BOTH_JUDGES
def test_a_malformed_verdict_is_an_error_naming_the_step_and_field_never_a_pass(
    judged: Project,
) -> None:
    llm = judged.llm
    llm.answers[LABEL_PROMPT] = reply({"value": REWORDED})
    judge_model(judged).in_prose = True

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


def test_the_same_question_is_asked_once_per_recorded_run(project: Project) -> None:
    project.pytester.makeconftest(PROJECT_JUDGE)
    write_one_step(project, JUDGED, calls=2)
    llm = project.llm
    llm.answers = JudgeModel()
    record_golden(project, reply({"value": GOLDEN}))
    llm.reset()
    llm.answers[LABEL_PROMPT] = reply({"value": REWORDED})

    project.record().assert_outcomes(passed=1)

    assert len(judge_requests(llm)) == 1, "two calls with the same change: one question"


def test_a_judged_field_without_any_judge_says_how_to_set_one(project: Project) -> None:
    write_one_step(project, JUDGED)

    result = record_then_rerecord(project, reply({"value": GOLDEN}), reply({"value": REWORDED}))

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*no judge is set; call pytest_promptflow.drift.use_judge(...) in conftest.py*"]
    )


# -- without pytest: the session, the parser and a judge of one's own --------------------------


def ready_made_judge(provider: str, llm: FakeLLM) -> drift.OpenAIJudge | drift.AnthropicJudge:
    if provider == "anthropic":
        client = anthropic.Anthropic(base_url=llm.url, api_key=ANTHROPIC_KEY, max_retries=0)
        return drift.AnthropicJudge(client)
    return drift.OpenAIJudge(
        openai.OpenAI(base_url=llm.url + "/v1", api_key=OPENAI_KEY, max_retries=0)
    )


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_ready_made_judge_sends_the_documented_prompt_and_reads_the_verdict(
    llm: FakeLLM, provider: str
) -> None:
    llm.answers = JudgeModel()
    judge = ready_made_judge(provider, llm)

    assert judge(GOLDEN, CHANGED, CRITERIA) == drift.Verdict(False, "a refund is not a replacement")

    (asked,) = llm.requests
    expected = {
        "messages": [{"role": "user", "content": documented_prompt_for(GOLDEN, CHANGED)}],
        "temperature": 0,
    }
    if provider == "anthropic":
        expected |= {"model": "claude-haiku-4-5", "max_tokens": 300}
    else:
        expected |= {"model": "gpt-4o-mini", "response_format": {"type": "json_object"}}
    assert asked == expected


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_ready_made_judge_answered_in_prose_is_a_judge_error(llm: FakeLLM, provider: str) -> None:
    llm.answers = JudgeModel()
    judge_model(llm).in_prose = True
    rule = drift.judged(CRITERIA, judge=ready_made_judge(provider, llm))

    with pytest.raises(
        drift.JudgeError,
        match=r"^the judge of step 'draft', field body, in case T-1 failed: malformed verdict: "
        "the reply is not a JSON object: 'Yes, they mean the same.'$",
    ):
        JudgeSession("T-1").judge(rule, "draft", "body", GOLDEN, REWORDED)


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
