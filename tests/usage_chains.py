"""The chain the usage, budget and HTML report tests record: OpenAI plain and streamed,
Anthropic plain and streamed, three tickets, prices declared in pyproject.toml."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable, Mapping

from llm_fakes import Project

CHAIN = """
from typing import Annotated

import pytest
from pydantic import BaseModel

from endpoint import anthropic_client, openai_client
from pytest_promptflow import Prompt, drift, step

SUMMARIZE = Prompt.load("prompts/summarize.j2")


class Ticket(BaseModel):
    text: str


class Summary(BaseModel):
    text: Annotated[str, {summary_rule}]


@step(prompt=SUMMARIZE)
def summarize(ticket: Ticket) -> Summary:
    reply = openai_client().chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": SUMMARIZE.render(text=ticket.text)}],
    )
    return Summary(text=reply.choices[0].message.content)


@step
def shout(summary: Summary) -> Annotated[str, drift.ignore()]:
    stream = openai_client().chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Shout: " + summary.text}],
        stream=True,
        stream_options={"include_usage": True},
    )
    return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


@step
def sign(text: str) -> Annotated[str, drift.ignore()]:
    client = anthropic_client()
    model = {"model": "claude-haiku-4-5", "max_tokens": 50}
    message = client.messages.create(
        **model, messages=[{"role": "user", "content": "Sign: " + text}]
    )
    with client.messages.stream(
        **model, messages=[{"role": "user", "content": "Again: " + text}]
    ) as stream:
        again = stream.get_final_text()
    return message.content[0].text + again


@pytest.mark.promptflow_cases("tickets.jsonl", model=Ticket)
def test_chain(chain_case):
    sign(shout(summarize(chain_case.input)))
"""
TICKETS = {"login": "cannot log in", "export": "export is slow", "outage": "vault is down"}
OLD_PROMPT = "Summarize: {{ text }}"
NEW_PROMPT = "Summarize at length: {{ text }}"
SHORT = "{text} summarized"
LONG = "{text} summarized at great length with every detail the customer gave us today"
PRICES = """
[tool.promptflow.prices]
currency = "USD"
"gpt-4o-mini" = { input = 0.15, output = 0.60 }
"claude-haiku-4-5" = { input = 1.0, output = 5.0 }
"""
INPUT_TOKENS = 21  # what the fake OpenAI API reports per request; Anthropic's says 17
ANTHROPIC_INPUT = 17


def write_case_files(
    project: Project,
    cases: Iterable[Mapping[str, str]],
    prompts: Mapping[str, str],
    pyproject: str,
    ini: str | None = None,
    cases_file: str = "tickets.jsonl",
) -> None:
    """What a chain over cases reads besides its code: ``fixtures/<cases_file>`` (a JSON
    case a line), each of ``prompts`` as ``prompts/<name>``, ``pyproject.toml`` and, when
    given, the ini file."""
    (project.path / "fixtures").mkdir()
    (project.path / "fixtures" / cases_file).write_text(
        "".join(json.dumps(case) + "\n" for case in cases)
    )
    (project.path / "prompts").mkdir()
    for name, template in prompts.items():
        (project.path / "prompts" / name).write_text(template)
    (project.path / "pyproject.toml").write_text(textwrap.dedent(pyproject))
    if ini is not None:
        project.pytester.makeini(ini)


def script_answers(
    project: Project, tickets: Mapping[str, str], template: str, answer: str
) -> None:
    """The fake model's reply to ``template`` rendered with each ticket's text: ``answer``
    with that text in place of ``{text}``."""
    for text in tickets.values():
        project.llm.answers[template.replace("{{ text }}", text)] = answer.format(text=text)


def record_chain(project: Project, summary_rule: str = "drift.ignore()") -> Project:
    """The chain over three tickets, recorded with the short summaries."""
    write_case_files(
        project,
        [{"id": case, "text": text} for case, text in TICKETS.items()],
        {"summarize.j2": OLD_PROMPT},
        PRICES,
        "[pytest]\npromptflow_budget =\n    tokens +20%\n    shout: tokens +400%\n",
    )
    script_answers(project, TICKETS, OLD_PROMPT, SHORT)
    script_answers(project, TICKETS, NEW_PROMPT, LONG)
    project.write(CHAIN.replace("{summary_rule}", summary_rule))
    project.record().assert_outcomes(passed=3)
    project.llm.reset()
    return project
