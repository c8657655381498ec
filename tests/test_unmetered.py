"""Unmetered model calls: a response that carried no usage (an OpenAI stream without
``stream_options={"include_usage": True}``) is unknown, never zero, in the terminal
summary, the Markdown, JSON and HTML reports, the budget gate and merged shards."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llm_fakes import Project, run_merge_command
from markdown_it import MarkdownIt
from usage_chains import script_answers, write_case_files

from pytest_promptflow.cassette.format import Interaction, RecordedRequest, RecordedResponse
from pytest_promptflow.report.merge import merge_reports
from pytest_promptflow.usage import Figures, ModelCall, Price, Prices, Tokens, interaction_tokens

# The machine is shared: how long an example takes says nothing.
untimed = settings(deadline=None)

CHAIN = """
from typing import Annotated

import pytest
from pydantic import BaseModel

from endpoint import openai_client
from pytest_promptflow import Prompt, drift, step

ANSWER = Prompt.load("prompts/answer.j2")


class Ticket(BaseModel):
    text: str


def ask(prompt):
    reply = openai_client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    return reply.choices[0].message.content


def streamed(prompt):
    stream = openai_client().chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": prompt}],
        stream=True,{stream_options}
    )
    return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


@step(prompt=ANSWER)
def answer(ticket: Ticket) -> Annotated[str, drift.ignore()]:
    return ask(ANSWER.render(text=ticket.text))


@step
def stream_only(text: str) -> Annotated[str, drift.ignore()]:
    return streamed("Stream: " + text)


@step
def mixed(text: str) -> Annotated[str, drift.ignore()]:
    return ask("Plain: " + text) + streamed("Mixed: " + text)


@pytest.mark.promptflow_cases("tickets.jsonl", model=Ticket)
def test_chain(chain_case):
    text = answer(chain_case.input)
    mixed(text)
    stream_only(text)
"""
WITH_USAGE = '\n        stream_options={"include_usage": True},'
TICKETS = {"login": "cannot log in", "export": "export is slow"}
SHORT_PROMPT = "Answer: {{ text }}"
LONG_PROMPT = "Answer at length: {{ text }}"
PRICES = """
[tool.promptflow.prices]
currency = "USD"
"gpt-4o-mini" = { input = 0.15, output = 0.60 }
"""
LONG_ANSWER = "{text} answered at great length with every single detail we know about it"
HINT = 'stream_options={"include_usage": True}'


@pytest.fixture
def chain(project: Project) -> Project:
    """Recorded once: every stream without usage; the answers short."""
    write_case_files(
        project,
        [{"id": case, "text": text} for case, text in TICKETS.items()],
        {"answer.j2": SHORT_PROMPT},
        PRICES,
        "[pytest]\npromptflow_budget = tokens +20%\n",
    )
    script_answers(project, TICKETS, SHORT_PROMPT, "{text} answered")
    script_answers(project, TICKETS, LONG_PROMPT, LONG_ANSWER)
    project.write(CHAIN.replace("{stream_options}", ""))
    project.record().assert_outcomes(passed=2)
    return project


def report(project: Project, name: str) -> dict[str, Any]:
    return json.loads((project.path / name).read_text(encoding="utf-8"))


def section(result: pytest.RunResult) -> str:
    text = result.stdout.str()
    return text[text.index("= promptflow =") :]


def test_a_stream_without_usage_is_unknown_in_every_report(chain: Project) -> None:
    with chain.llm.offline():
        result = chain.run(
            "--promptflow-report=report.json",
            "--promptflow-report=report.md",
            "--promptflow-report=report.html",
        )
    result.assert_outcomes(passed=2)

    steps = report(chain, "report.json")["steps"]
    stream_only = steps["stream_only"]["usage"]
    for side in ("golden", "now"):
        figures = stream_only[side]
        assert (figures["input_tokens"], figures["output_tokens"], figures["tokens"]) == (
            None,
            None,
            None,
        )
        assert (figures["model_calls"], figures["unmetered_calls"]) == (2, 2)
        assert figures["unpriced_calls"] == 2  # unknown tokens: unknown cost
    mixed = steps["mixed"]["usage"]["now"]
    assert (mixed["model_calls"], mixed["unmetered_calls"], mixed["unpriced_calls"]) == (4, 2, 2)
    assert mixed["input_tokens"] == 2 * 21  # the plain calls' figures, as reported
    assert mixed["cost"] > 0
    answer = steps["answer"]["usage"]["now"]
    assert (answer["unmetered_calls"], answer["unpriced_calls"]) == (0, 0)
    assert answer["tokens"] == answer["input_tokens"] + answer["output_tokens"] > 0

    summary = section(result)
    rows = {line.split()[0]: line for line in summary.splitlines() if line.split()}
    assert rows["stream_only"].split()[1:4] == ["2", "—", "—"]
    assert re.search(r"\b42/\d+\*  +0\.\d+ USD\*", rows["mixed"]), rows["mixed"]
    assert "*" not in rows["answer"]
    assert summary.count(HINT) == 1
    assert "usage unknown for mixed, stream_only: model calls reported no token usage" in summary
    assert "* a sum over part of the calls" in summary

    markdown = (chain.path / "report.md").read_text(encoding="utf-8")
    cells = {
        row[0]: row
        for row in (
            [cell.strip() for cell in line.strip("|").split("|")]
            for line in markdown.splitlines()
            if line.startswith("| `")
        )
        if len(row) == 8
    }
    assert cells["`stream_only`"][2:5] == ["—", "—", "—"]
    assert cells["`mixed`"][2] == "42\\*"
    assert markdown.count(HINT) == 1
    assert "Usage unknown for `mixed`, `stream_only`" in markdown
    rendered = MarkdownIt("commonmark").enable("table").render(markdown)
    assert "<em>" not in rendered  # the legend's * is shown, not taken as emphasis

    html = (chain.path / "report.html").read_text(encoding="utf-8")
    stream_row = re.search(r'<tr data-step="stream_only">(.*?)</tr>', html, flags=re.S)
    assert stream_row is not None
    assert re.search(r'class="num tokens-in">— → —<', stream_row.group(1))
    assert re.search(r'class="num tokens-out">— → —<', stream_row.group(1))


def test_unmetered_steps_are_left_unjudged_by_the_budget(chain: Project) -> None:
    (chain.path / "prompts" / "answer.j2").write_text(LONG_PROMPT)
    result = chain.record("--promptflow-report=report.json", mode="new")

    # Only the metered step is judged: its answers grew beyond tokens +20%.
    result.assert_outcomes(failed=2)
    output = result.stdout.str()
    assert "  step answer — prompt" in output
    assert "step mixed" not in output
    assert "step stream_only" not in output
    document = report(chain, "report.json")
    assert document["steps"]["answer"]["usage"]["over_budget"] == 2
    for step in ("mixed", "stream_only"):
        assert document["steps"][step]["usage"]["over_budget"] == 0
    for case in document["usage_cases"]:
        budgets = {step["step"]: step["over_budget"] for step in case["steps"]}
        assert budgets["mixed"] == budgets["stream_only"] == []
        assert budgets["answer"] != []


def test_a_golden_side_without_usage_leaves_the_step_unjudged(chain: Project) -> None:
    """Asking for usage now changes the request: recorded again, the figures are known
    now but not in the golden run, so even a large growth is not judged."""
    chain.write(CHAIN.replace("{stream_options}", WITH_USAGE))
    chain.llm.extra_reply = " and much more text than any budget allows for it"
    result = chain.record("--promptflow-report=report.json", "--promptflow-usage=full", mode="new")

    result.assert_outcomes(passed=2)
    usage = report(chain, "report.json")["steps"]["stream_only"]["usage"]
    assert usage["golden"]["tokens"] is None
    assert usage["now"]["unmetered_calls"] == 0
    assert usage["now"]["output_tokens"] > 0
    assert usage["over_budget"] == 0
    lines = section(result).splitlines()
    usage_row = [line for line in lines if line.startswith("stream_only")][-1]
    assert usage_row.split()[2:5] == ["—", "->", "42"]
    # The golden run still lacks the figures: the summary says how to get them.
    assert HINT in section(result)


def test_xdist_and_merged_shards_give_the_serial_figures(chain: Project) -> None:
    with chain.llm.offline():
        chain.run("--promptflow-report=serial.json").assert_outcomes(passed=2)
        chain.run("-n", "2", "--promptflow-report=xdist.json").assert_outcomes(passed=2)
        chain.run("-k", "login", "--promptflow-report=one.json").assert_outcomes(passed=1)
        chain.run("-k", "export", "--promptflow-report=two.json").assert_outcomes(passed=1)
    serial = report(chain, "serial.json")
    assert report(chain, "xdist.json") == serial
    merged = merge_reports([chain.path / "one.json", chain.path / "two.json"]).tally.to_json()
    assert merged["steps"] == serial["steps"]
    assert merged["steps"]["stream_only"]["usage"]["now"]["tokens"] is None


def test_a_report_written_before_unmetered_calls_still_merges(chain: Project) -> None:
    with chain.llm.offline():
        chain.run("--promptflow-report=new.json").assert_outcomes(passed=2)

    def without_unmetered(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: without_unmetered(v) for k, v in value.items() if k != "unmetered_calls"}
        if isinstance(value, list):
            return [without_unmetered(item) for item in value]
        return value

    old = without_unmetered(report(chain, "new.json"))
    (chain.path / "old.json").write_text(json.dumps(old))
    done = run_merge_command("old.json", "new.json", "--out", "merged.json", cwd=chain.path)

    assert done.returncode == 0, done.stderr
    now = report(chain, "merged.json")["steps"]["mixed"]["usage"]["now"]
    # The old report's unmetered calls are unknown to it: only the new one's count.
    assert (now["model_calls"], now["unmetered_calls"]) == (8, 2)
    assert now["input_tokens"] == 4 * 21


# -- units -------------------------------------------------------------------------------


def interaction(status: int, body: Any) -> Interaction:
    return Interaction(
        step="s",
        request=RecordedRequest(
            method="POST", url="http://127.0.0.1/v1/chat/completions", body={"model": "m"}
        ),
        response=RecordedResponse(status=status, body=body),
    )


def test_a_failed_request_used_no_tokens_and_a_success_without_usage_is_unknown() -> None:
    error = {"error": {"message": "Rate limit reached", "type": "rate_limit"}}
    assert interaction_tokens(interaction(429, error)) == Tokens("m", 0, 0)
    assert interaction_tokens(interaction(200, {"choices": []})) is None


PRICED = Prices({"m": Price(0.15, 0.60)})
calls = st.builds(
    ModelCall,
    step=st.just("s"),
    judge=st.none(),
    tokens=st.none()
    | st.builds(Tokens, st.just("m"), st.integers(0, 10**6), st.integers(0, 10**6)),
    latency=st.none() | st.tuples(st.integers(0, 10**4), st.integers(0, 10**4)),
)


@untimed
@given(st.lists(calls, max_size=12), st.randoms())
def test_figures_sum_the_same_in_any_order_and_through_json(
    model_calls: list[ModelCall], random: Any
) -> None:
    """Serial, xdist workers and merged shards add the same calls in other groupings."""
    serial = Figures()
    for call in model_calls:
        serial.add_call(call, PRICED)
    shuffled = list(model_calls)
    random.shuffle(shuffled)
    cut = random.randint(0, len(shuffled))
    merged = Figures()
    for shard in (shuffled[:cut], shuffled[cut:]):
        figures = Figures()
        for call in shard:
            figures.add_call(call, PRICED)
        merged.add(Figures.from_json(json.loads(json.dumps(figures.to_json()))))
    assert merged == serial
    assert serial.unmetered_calls == sum(call.tokens is None for call in model_calls)
    document = serial.to_json()
    unknown = bool(model_calls) and all(call.tokens is None for call in model_calls)
    assert (document["tokens"] is None) == unknown


def test_figures_of_a_report_without_unmetered_calls_read_as_all_metered() -> None:
    old = {"model_calls": 2, "input_tokens": 5, "output_tokens": 7, "tokens": 12, "cost": 0.0,
           "unpriced_calls": 2, "timed_calls": 0, "first_byte_ms": 0, "total_ms": 0}  # fmt: skip
    assert Figures.from_json(old) == Figures(2, 5, 7, 0, 2, 0, 0, 0, 0)
