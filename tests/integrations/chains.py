"""The two-step chain every framework integration records, replays and breaks."""

from __future__ import annotations

import textwrap
from types import ModuleType

from framework_server import GEMINI_KEY
from llm_fakes import Project
from optional_packages import require

CHAIN = """
from __future__ import annotations

import pytest
from pydantic import BaseModel

from endpoint import BASE_URL, OPENAI_KEY
from pytest_promptflow import Prompt, step

GEMINI_KEY = {gemini_key!r}
TOPIC = Prompt.from_string("What is this text about? {{{{ text }}}}", name="topic")
DESCRIBE = Prompt.from_string({describe!r}, name="describe")


class Topic(BaseModel):
    subject: str


class Note(BaseModel):
    text: str


@step(prompt=TOPIC)
def topic_of(text: str) -> Topic:
    return structured(TOPIC.render(text=text))


@step(prompt=DESCRIBE)
def describe(topic: Topic) -> Note:
    return Note(text=complete(DESCRIBE.render(topic=topic)))


def chain(text: str) -> Note:
    return describe(topic_of(text))

# The framework's client: structured(prompt) -> Topic, complete(prompt) -> str, and
# perhaps its own chain(text) -> Note.
{framework}


@pytest.mark.promptflow_cases("texts.jsonl")
def test_chain(chain_case, chain_run):
    note = chain(chain_case.input["text"])
    assert note.text == f"A short note on {{chain_case.id}}."
    assert [call.step for call in chain_run.calls] == ["topic_of", "describe"]


@pytest.mark.promptflow_step("describe")
def test_describe_alone(recorded_step):
    assert recorded_step() == recorded_step.golden_output
"""
DESCRIBE = "Write one sentence on {{ topic.subject }}."
TEXTS = (
    '{"id": "comets", "text": "A bright tail crossed the sky: comets"}\n'
    '{"id": "moss", "text": "Green and soft on the north side: moss"}\n'
)
STEP_TESTS = ["*test_describe_alone?comets? PASSED*", "*test_describe_alone?moss? PASSED*"]


def write_chain(project: Project, framework: str, describe: str = DESCRIBE) -> None:
    (project.path / "fixtures").mkdir(exist_ok=True)
    (project.path / "fixtures" / "texts.jsonl").write_text(TEXTS)
    project.write(
        CHAIN.format(framework=textwrap.dedent(framework), describe=describe, gemini_key=GEMINI_KEY)
    )


def record_replay_and_break(project: Project, framework: str, *, xdist: bool = False) -> None:
    """Record the chain, replay it offline (under xdist too if asked), then edit a prompt."""
    write_chain(project, framework)

    first = project.record(mode="new")
    first.assert_outcomes(passed=2, skipped=1)
    first.stdout.fnmatch_lines(["  pytest test_chain.py::test_describe_alone"])
    for case in ("comets", "moss"):
        steps = project.cassette(f"test_chain/test_chain/{case}.json")["steps"]
        assert [golden["step"] for golden in steps] == ["topic_of", "describe"]
        assert steps[1]["output"] == {"text": f"A short note on {case}."}
        interactions = project.cassette(f"test_chain/test_chain/{case}.json")["interactions"]
        assert [i["step"] for i in interactions] == ["topic_of", "describe"]
    project.assert_no_canary()
    files = project.files()

    with project.llm.offline():  # type: ignore[attr-defined]
        replay = project.run("-v")
        replay.assert_outcomes(passed=4)
        replay.stdout.fnmatch_lines(STEP_TESTS)
        if xdist:
            parallel = project.pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
            parallel.assert_outcomes(passed=4)
        assert project.files() == files

        write_chain(project, framework, describe="Write two sentences on {{ topic.subject }}.")
        edited = project.run()
    edited.assert_outcomes(failed=4)
    edited.stdout.fnmatch_lines(
        [
            "*no recording for a request of step 'describe' in case comets*",
            "*prompt describe changed: * -> *",
        ]
    )
    assert project.files() == files


def framework(module: str, distribution: str) -> ModuleType:
    """``module`` imported, or this test module skipped (failed in CI) saying what to install."""
    return require(module, distribution, extra="frameworks", module_level=True)
