"""Generated chains whose steps parse the fake model's scripted JSON replies.

The drift gate's tests script what the fake model answers (``FakeLLM.answers``), record
a golden run, then change the answer, the prompt or the step's code and look at the
verdict as a user sees it.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest
from llm_fakes import Project

HEADER = """
import json
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from endpoint import openai_client, save
from pytest_promptflow import Prompt, drift, step


def ask(prompt: str) -> str:
    reply = openai_client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    return reply.choices[0].message.content
"""

# The fake model's answers, scripted per prompt, are parsed into the model `Output`.
ONE_STEP = """
class Output(BaseModel):
    {fields}


LABEL = Prompt.from_string("Label {{{{ topic }}}}", name="label")


@step(prompt=LABEL)
def label(topic: str) -> Output:
    return Output.model_validate_json(ask(LABEL.render(topic=topic)))


@pytest.mark.promptflow
def test_label():
{calls}"""
TOPIC = "gravity"


def label_prompt(topic: str) -> str:
    """The prompt the step ``label`` sends for ``topic``."""
    return f"Label {topic}"


LABEL_PROMPT = label_prompt(TOPIC)
ONE_STEP_NODE = "test_chain.py::test_label"


def reply(value: Any) -> str:
    """The text of a model reply that holds ``value`` as JSON."""
    return json.dumps(value)


def write_chain(project: Project, body: str, name: str = "test_chain") -> None:
    project.write(textwrap.dedent(HEADER) + textwrap.dedent(body), name=name)


def one_step(fields: str, topic: str = TOPIC, calls: int = 1) -> str:
    """The body of a chain whose test calls the step ``label`` on ``topic``, ``calls``
    times; the step's output is ``Output`` with ``fields`` (its class body)."""
    call = f"    label({json.dumps(topic)})\n"
    return ONE_STEP.format(fields=fields, calls=call * calls)


def write_one_step(project: Project, annotation: str, topic: str = TOPIC, calls: int = 1) -> None:
    """A step ``label`` whose output is ``Output(value: <annotation>)``."""
    write_chain(project, one_step(f"value: {annotation}", topic, calls))


def record_golden(project: Project, golden: str, *args: str, topic: str = TOPIC) -> None:
    """Record ``golden`` as the model's reply to the step ``label`` on ``topic``."""
    project.llm.answers[label_prompt(topic)] = golden
    project.record(*args).assert_outcomes(passed=1)


def record_then_rerecord(
    project: Project, golden: str, current: str, *args: str, topic: str = TOPIC
) -> pytest.RunResult:
    """Record ``golden`` as the model's reply to the step ``label`` on ``topic``, then
    re-record ``current``."""
    record_golden(project, golden, *args, topic=topic)
    project.llm.answers[label_prompt(topic)] = current
    return project.record(*args)
