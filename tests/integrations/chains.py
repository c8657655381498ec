"""The two-step chain every framework integration records, replays and breaks."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
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
def topic_of(text: str{parameter}) -> Topic:
    return structured(TOPIC.render(text=text){argument})


@step(prompt=DESCRIBE)
def describe(topic: Topic{parameter}) -> Note:
    return Note(text=complete(DESCRIBE.render(topic=topic){argument}))


def chain(text: str) -> Note:
    return describe(topic_of(text{client}){client})

# The framework's client: structured(prompt) -> Topic, complete(prompt) -> str, and
# perhaps its own chain(text) -> Note; with a client parameter, both take the client too.
{framework}


@pytest.mark.promptflow_cases("texts.jsonl")
def test_chain(chain_case, chain_run):
    note = chain(chain_case.input["text"])
    assert note.text == f"A short note on {{chain_case.id}}."
    assert [call.step for call in chain_run.calls] == ["topic_of", "describe"]


@pytest.mark.promptflow_step("describe")
def test_describe_alone(recorded_step):
    assert recorded_step({recorded_client}) == recorded_step.golden_output
"""


@dataclass(frozen=True)
class ClientParameter:
    """A client object the steps take as a parameter (not data: never recorded), given
    by the framework code as ``CLIENT``, e.g. ``ClientParameter("provider", "llm.Provider")``."""

    name: str
    annotation: str


DESCRIBE = "Write one sentence on {{ topic.subject }}."
TEXTS = (
    '{"id": "comets", "text": "A bright tail crossed the sky: comets"}\n'
    '{"id": "moss", "text": "Green and soft on the north side: moss"}\n'
)
STEP_TESTS = ["*test_describe_alone?comets? PASSED*", "*test_describe_alone?moss? PASSED*"]


def write_chain(
    project: Project,
    framework: str,
    describe: str = DESCRIBE,
    client: ClientParameter | None = None,
) -> None:
    (project.path / "fixtures").mkdir(exist_ok=True)
    (project.path / "fixtures" / "texts.jsonl").write_text(TEXTS)
    source = CHAIN.format(
        framework=textwrap.dedent(framework),
        describe=describe,
        gemini_key=GEMINI_KEY,
        parameter=f", {client.name}: {client.annotation}" if client else "",
        argument=f", {client.name}" if client else "",
        client=", CLIENT" if client else "",
        recorded_client=f"{client.name}=CLIENT" if client else "",
    )
    project.write(source)


def record_replay_and_break(
    project: Project,
    framework: str,
    *,
    xdist: bool = False,
    client: ClientParameter | None = None,
) -> dict[str, Any]:
    """Record the chain, replay it offline (under xdist too if asked), then edit a prompt.

    Returns the replay's JSON report, whose ``steps`` hold each step's usage figures."""
    write_chain(project, framework, client=client)

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
        replay = project.run("-v", "--promptflow-report=report.json")
        replay.assert_outcomes(passed=4)
        report: dict[str, Any] = json.loads((project.path / "report.json").read_text())
        replay.stdout.fnmatch_lines(STEP_TESTS)
        if xdist:
            parallel = project.pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
            parallel.assert_outcomes(passed=4)
        assert project.files() == files

        edited_prompt = "Write two sentences on {{ topic.subject }}."
        write_chain(project, framework, describe=edited_prompt, client=client)
        edited = project.run()
    edited.assert_outcomes(failed=4)
    edited.stdout.fnmatch_lines(
        [
            "*no recording for a request of step 'describe' in case comets*",
            "*prompt describe changed: * -> *",
        ]
    )
    assert project.files() == files
    return report


def framework(module: str, distribution: str, extra: str = "frameworks") -> ModuleType:
    """``module`` imported, or this test module skipped (failed in CI) saying what to install."""
    install = {"frameworks": "test", "frameworks-openai2": "test-openai2"}[extra]
    return require(module, distribution, extra=install, module_level=True)


OPENAI_2_ENVIRONMENT = (
    "python3 -m venv --clear .venv-openai2 && "
    '.venv-openai2/bin/python -m pip install -e ".[test-openai2]" && '
    ".venv-openai2/bin/python -m pytest tests/integrations/openai2 "
    "tests/integrations/test_openai_responses.py"
)


def openai_2_only() -> None:
    """This test module skipped unless openai 2 is installed, in CI too: instructor,
    LlamaIndex and Mirascope require openai<3, the main environment's frameworks openai 3,
    so CI runs them in a second environment (``.ci/run``)."""
    import openai

    if openai.__version__.split(".")[0] != "2":
        pytest.skip(
            f"needs openai 2 (openai {openai.__version__} is installed); these frameworks "
            f"run in their own environment: {OPENAI_2_ENVIRONMENT}",
            allow_module_level=True,
        )


def responses_usage_of_chain() -> dict[str, tuple[int, int]]:
    """Each step's input and output tokens in the replay of ``record_replay_and_break``, as
    the stand-in's Responses API reports them (a token per word of the prompt and of the
    answer): per case, the chain calls both steps and the step test ``describe`` again."""
    topic_in = topic_out = describe_in = describe_out = 0
    for line in TEXTS.splitlines():
        case = json.loads(line)
        topic_in += len(f"What is this text about? {case['text']}".split())
        topic_out += len(json.dumps({"subject": case["id"]}).split())
        describe_in += 2 * len(f"Write one sentence on {case['id']}.".split())
        describe_out += 2 * len(f"A short note on {case['id']}.".split())
    return {"topic_of": (topic_in, topic_out), "describe": (describe_in, describe_out)}


def assert_recorded_on_the_responses_api(project: Project) -> None:
    """Both steps called POST /v1/responses: a JSON schema answer, then a stream of events
    that the ``response.completed`` event ends."""
    for line in TEXTS.splitlines():
        case = json.loads(line)["id"]
        topic, note = project.cassette(f"test_chain/test_chain/{case}.json")["interactions"]
        assert [topic["request"]["url"], note["request"]["url"]] == [
            f"{project.llm.url}/v1/responses"  # type: ignore[attr-defined]
        ] * 2
        assert topic["request"]["body"]["text"]["format"]["type"] == "json_schema"
        assert json.loads(topic["response"]["body"]["output"][0]["content"][0]["text"]) == {
            "subject": case
        }
        assert note["request"]["body"]["stream"] is True
        events = [event["event"] for event in note["response"]["events"]]
        assert events[0] == "response.created"
        assert "response.output_text.delta" in events
        assert events[-1] == "response.completed"
