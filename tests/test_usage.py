"""Usage per step: tokens from real SDK responses, cost from declared prices, latency,
the budget gate and accept, byte-stable re-recording, -n 2 and merged shards."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from llm_fakes import Project, run_merge_command
from usage_chains import (
    ANTHROPIC_INPUT,
    INPUT_TOKENS,
    LONG,
    NEW_PROMPT,
    PRICES,
    SHORT,
    TICKETS,
    record_chain,
)

from pytest_promptflow.cassette.format import RecordedResponse, SseEvent
from pytest_promptflow.usage import Tokens, load_prices, read_tokens


def words(text: str) -> int:
    return len(text.split())


@pytest.fixture
def chain(project: Project) -> Project:
    """The chain over three tickets, recorded with the short summaries."""
    return record_chain(project)


def expected_figures(long: bool) -> dict[str, dict[str, int]]:
    """Tokens per step summed over the three cases, as the fake server reported them."""
    template = LONG if long else SHORT
    summaries = [template.format(text=text) for text in TICKETS.values()]
    shouted = [f"reply to {'Shout: ' + s!r}, answer 1" for s in summaries]
    signed = [
        words(f"reply to {'Sign: ' + s!r}, answer 1")
        + words(f"reply to {'Again: ' + s!r}, answer 1")
        for s in shouted
    ]
    return {
        "summarize": {"input": 3 * INPUT_TOKENS, "output": sum(words(s) for s in summaries)},
        "shout": {"input": 3 * INPUT_TOKENS, "output": sum(words(s) for s in shouted)},
        "sign": {"input": 6 * ANTHROPIC_INPUT, "output": sum(signed)},
    }


def report(project: Project, name: str = "report.json") -> dict[str, Any]:
    return json.loads((project.path / name).read_text(encoding="utf-8"))


def test_tokens_of_each_sdk_call_plain_and_streamed_and_their_cost(chain: Project) -> None:
    with chain.llm.offline():
        chain.run("--promptflow-report=report.json").assert_outcomes(passed=3)

    steps = report(chain)["steps"]
    for step, figures in expected_figures(long=False).items():
        now = steps[step]["usage"]["now"]
        assert (now["input_tokens"], now["output_tokens"]) == (figures["input"], figures["output"])
        assert steps[step]["usage"]["golden"] == now
    summarize = steps["summarize"]["usage"]["now"]
    # Declared per million tokens: 0.15 in and 0.60 out for gpt-4o-mini-2024-07-18.
    cost = (summarize["input_tokens"] * 0.15 + summarize["output_tokens"] * 0.60) / 1e6
    assert summarize["cost"] == pytest.approx(cost, abs=1e-12)
    sign = steps["sign"]["usage"]["now"]
    assert sign["model_calls"] == 6
    assert sign["unpriced_calls"] == 0
    assert sign["cost"] == pytest.approx(
        (sign["input_tokens"] * 1.0 + sign["output_tokens"] * 5.0) / 1e6, abs=1e-12
    )
    assert report(chain)["currency"] == "USD"


def test_latency_is_recorded_per_interaction_and_summed_per_step(chain: Project) -> None:
    recorded = chain.cassette("test_chain/test_chain/login.json")
    for interaction in recorded["interactions"]:
        latency = interaction["latency"]
        assert 0 <= latency["first_byte_ms"] <= latency["total_ms"]
    with chain.llm.offline():
        chain.run("--promptflow-report=report.json").assert_outcomes(passed=3)
    now = report(chain)["steps"]["shout"]["usage"]["now"]
    assert now["timed_calls"] == 3
    files = [chain.cassette(f"test_chain/test_chain/{case}.json") for case in TICKETS]
    shout_total = sum(
        i["latency"]["total_ms"] for f in files for i in f["interactions"] if i["step"] == "shout"
    )
    assert now["total_ms"] == shout_total


def test_rerecording_an_unchanged_chain_keeps_every_byte(chain: Project) -> None:
    before = chain.files()
    chain.record().assert_outcomes(passed=3)

    assert chain.files() == before


def test_a_longer_answer_fails_the_budget_gate_until_accepted(chain: Project) -> None:
    (chain.path / "prompts" / "summarize.j2").write_text(NEW_PROMPT)
    result = chain.record("--promptflow-report=report.json", mode="new")

    result.assert_outcomes(failed=3)
    golden, now = expected_figures(long=False), expected_figures(long=True)
    output = result.stdout.str()
    assert "over budget in case login (test_chain.py::test_chain[login]):" in output
    assert "  step summarize — prompt" in output
    old = INPUT_TOKENS + words(SHORT.format(text=TICKETS["login"]))
    new = INPUT_TOKENS + words(LONG.format(text=TICKETS["login"]))
    growth = (new - old) / old * 100
    assert f"    tokens: {old} -> {new} (+{growth:.1f}%)  [budget tokens +20%; OVER]" in output
    assert "pytest 'test_chain.py::test_chain[login]' --promptflow-accept" in output
    # shout's answers grew too, but within its own budget of +400%.
    assert "step shout" not in output
    steps = report(chain)["steps"]
    assert steps["summarize"]["usage"]["golden"]["output_tokens"] == golden["summarize"]["output"]
    assert steps["summarize"]["usage"]["now"]["output_tokens"] == now["summarize"]["output"]
    assert steps["summarize"]["usage"]["over_budget"] == 3
    assert report(chain)["over_budget_cases"] == 3

    with chain.llm.offline():
        chain.run().assert_outcomes(failed=3)  # the gate holds offline
        chain.run("--promptflow-accept").assert_outcomes(passed=3)
        chain.run("--promptflow-report=report.json").assert_outcomes(passed=3)
    accepted = report(chain)["steps"]["summarize"]["usage"]
    assert accepted["golden"] == accepted["now"]
    assert accepted["now"]["output_tokens"] == now["summarize"]["output"]


def strip_golden_figures(chain: Project) -> None:
    """Make the chain's recorded runs what earlier versions wrote: golden values without
    the figures of their answers."""
    for path in chain.cassettes.rglob("*.json"):
        document = json.loads(path.read_text(encoding="utf-8"))
        for golden_step in document["steps"]:
            del golden_step["usage"]
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def test_the_budget_holds_offline_after_a_rerecording_of_every_request(chain: Project) -> None:
    # --promptflow-record=all replaces the golden answers; their figures are kept with
    # the golden values, so the gate still knows what the step cost.
    (chain.path / "prompts" / "summarize.j2").write_text(NEW_PROMPT)
    chain.record().assert_outcomes(failed=3)
    golden_step = chain.cassette("test_chain/test_chain/login.json")["steps"][0]
    assert golden_step["usage"] == [
        {
            "input_tokens": INPUT_TOKENS,
            "latency": golden_step["usage"][0]["latency"],
            "model": "gpt-4o-mini-2024-07-18",
            "output_tokens": words(SHORT.format(text=TICKETS["login"])),
        }
    ]

    with chain.llm.offline():
        result = chain.run("--promptflow-report=report.json")

    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*over budget in case login*", "*tokens: * -> *OVER]"])
    summarize = report(chain)["steps"]["summarize"]["usage"]
    golden, now = expected_figures(long=False), expected_figures(long=True)
    assert summarize["golden"]["output_tokens"] == golden["summarize"]["output"]
    assert summarize["now"]["output_tokens"] == now["summarize"]["output"]
    assert summarize["over_budget"] == 3


def test_golden_values_written_without_figures_take_them_from_their_answers(
    chain: Project,
) -> None:
    strip_golden_figures(chain)
    before = chain.files()

    with chain.llm.offline():
        chain.run("--promptflow-report=report.json").assert_outcomes(passed=3)
        chain.run("--promptflow-accept").assert_outcomes(passed=3)

    steps = report(chain)["steps"]
    for step, figures in expected_figures(long=False).items():
        usage = steps[step]["usage"]
        assert usage["golden"] == usage["now"]
        assert usage["golden"]["output_tokens"] == figures["output"]
    assert chain.files() == before  # accepting what did not change rewrites nothing


def test_the_terminal_summary_is_compact_and_full_on_request(chain: Project) -> None:
    with chain.llm.offline():
        compact = chain.run().stdout.str()
        full = chain.run("--promptflow-usage=full").stdout.str()
    header = compact[compact.index("usage  ") :].splitlines()[0]
    assert header.split() == ["usage", "calls", "tokens", "in/out", "cost", "latency"]
    figures = expected_figures(long=False)["summarize"]
    assert f"{figures['input']}/{figures['output']}" in compact
    assert "first byte" in full
    assert "over budget" in full


def usage_rows(output: str) -> dict[str, dict[str, str]]:
    """The terminal summary's usage table: each step's cells by column."""
    lines = output[output.index("\nusage  ") + 1 :].splitlines()
    header = re.split(r" {2,}", lines[0].strip())
    rows = {}
    for line in lines[1:]:
        if not line.strip() or line.startswith(("=", "*")):  # the table ends at its legend
            break
        cells = re.split(r" {2,}", line.strip())
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


def test_the_summary_shows_the_mean_latency_of_a_call(chain: Project) -> None:
    # Every call of a case takes as long, and the cases 100, 200 and 600 ms: 300 ms a call.
    for case, total_ms in {"login": 100, "export": 200, "outage": 600}.items():
        path = chain.cassettes / f"test_chain/test_chain/{case}.json"
        recorded = json.loads(path.read_text(encoding="utf-8"))
        for interaction in recorded["interactions"]:
            interaction["latency"] = {"first_byte_ms": total_ms // 10, "total_ms": total_ms}
        path.write_text(json.dumps(recorded), encoding="utf-8")

    with chain.llm.offline():
        compact = chain.run().stdout.str()
        full = chain.run("--promptflow-usage=full").stdout.str()

    for step, calls in {"summarize": "3", "shout": "3", "sign": "6"}.items():
        assert usage_rows(compact)[step]["calls"] == calls
        assert usage_rows(compact)[step]["latency"] == "300 ms"
        assert usage_rows(full)[step]["first byte"] == "30 ms"
        assert usage_rows(full)[step]["total"] == "300 ms"


MIXED_PRICES = """
[tool.promptflow.prices]
currency = "USD"
"gpt-4o-mini" = { input = 1000, output = 2000 }
"""
MIXED_CHAIN = """
import pytest

from endpoint import anthropic_client, openai_client
from pytest_promptflow import step


def ask_openai(text: str) -> str:
    reply = openai_client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
    )
    return reply.choices[0].message.content


def ask_anthropic(text: str) -> str:
    reply = anthropic_client().messages.create(
        model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": text}]
    )
    return reply.content[0].text


@step
def priced(text: str) -> str:
    return ask_openai(text)


@step
def partly_priced(text: str) -> str:
    return ask_openai(text) + ask_anthropic(text)


@step
def unpriced(text: str) -> str:
    return ask_anthropic(text)


@pytest.mark.promptflow
def test_chain():
    priced("Hi")
    partly_priced("Hi")
    unpriced("Hi")
"""


def test_the_summary_marks_a_cost_without_every_price_and_a_step_without_any(
    project: Project,
) -> None:
    (project.path / "pyproject.toml").write_text(MIXED_PRICES)
    project.write(MIXED_CHAIN)
    project.record().assert_outcomes(passed=1)

    with project.llm.offline():
        compact = project.run().stdout.str()
        full = project.run("--promptflow-usage=full").stdout.str()

    # OpenAI's answer "reply to 'Hi', answer 1": 21 tokens in at 1000, 5 out at 2000.
    for table in (usage_rows(compact), usage_rows(full)):
        assert table["priced"]["cost"] == "0.031 USD"
        assert table["partly_priced"]["cost"] == "0.031 USD*"
        assert table["unpriced"]["cost"] == "no price"


def test_budget_lines_that_cannot_be_read_are_a_usage_error(project: Project) -> None:
    project.pytester.makeini("[pytest]\npromptflow_budget = tokens 20%\n")
    project.write("import pathlib\n\ndef test_nothing():\n    pathlib.Path('ran').touch()\n")
    result = project.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "promptflow_budget: cannot read 'tokens 20%'" in result.stderr.str()
    assert not (project.path / "ran").exists(), "no test runs"


def test_a_price_without_input_and_output_is_refused_naming_the_file(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.promptflow.prices]\n"gpt-4o" = { input = 2.5 }\n')
    with pytest.raises(Exception, match=r'pyproject.toml: \[tool.promptflow.prices\] "gpt-4o"'):
        load_prices(pyproject)


def test_prices_match_a_dated_model_by_its_declared_prefix(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(PRICES)
    prices = load_prices(pyproject)
    assert prices.price_of("gpt-4o-mini-2024-07-18") == prices.price_of("gpt-4o-mini")
    assert prices.price_of("gpt-4o") is None
    assert prices.cost_nanos(Tokens("gpt-4o-mini-2024-07-18", 1000, 100)) == 210_000


# -- shapes the local fake does not serve: OpenAI Responses and Google Gen AI ------------


def response(
    body: Any = None, events: list[tuple[str | None, Any]] | None = None
) -> RecordedResponse:
    return RecordedResponse(
        status=200,
        body=body,
        events=[SseEvent(event=name, data=data) for name, data in events] if events else None,
    )


def test_openai_responses_usage_plain_and_streamed() -> None:
    usage = {"input_tokens": 36, "output_tokens": 87, "total_tokens": 123,
             "input_tokens_details": {"cached_tokens": 0}}  # fmt: skip
    body = {"object": "response", "model": "gpt-4.1-2025-04-14", "usage": usage, "output": []}
    assert read_tokens(response(body)) == Tokens("gpt-4.1-2025-04-14", 36, 87)
    events = [
        ("response.created", {"type": "response.created", "response": {**body, "usage": None}}),
        ("response.output_text.delta", {"type": "response.output_text.delta", "delta": "Hi"}),
        ("response.completed", {"type": "response.completed", "response": body}),
    ]
    assert read_tokens(response(events=events)) == Tokens("gpt-4.1-2025-04-14", 36, 87)


def test_google_gen_ai_usage_metadata_plain_and_streamed() -> None:
    def chunk(text: str, output: int) -> dict[str, Any]:
        return {
            "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}}],
            "modelVersion": "gemini-2.0-flash",
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": output,
                              "thoughtsTokenCount": 4, "totalTokenCount": 13 + output},
        }  # fmt: skip

    assert read_tokens(response(chunk("Hello there", 2))) == Tokens("gemini-2.0-flash", 9, 6)
    streamed = [(None, chunk("Hello", 1)), (None, chunk(" there", 2))]
    assert read_tokens(response(events=streamed)) == Tokens("gemini-2.0-flash", 9, 6)


def test_anthropic_cached_input_counts_as_input() -> None:
    body = {"type": "message", "model": "claude-sonnet-4-5",
            "usage": {"input_tokens": 10, "cache_read_input_tokens": 200,
                      "cache_creation_input_tokens": 5, "output_tokens": 7}}  # fmt: skip
    assert read_tokens(response(body)) == Tokens("claude-sonnet-4-5", 215, 7)


def test_a_response_without_usage_reads_as_none() -> None:
    assert read_tokens(response({"choices": []})) is None
    stream_without_usage = [
        (None, {"object": "chat.completion.chunk", "choices": []}),
        (None, None),
    ]
    assert read_tokens(response(events=stream_without_usage)) is None


# -- xdist and CI shards -----------------------------------------------------------------


def test_figures_under_xdist_and_from_merged_shards_equal_a_serial_run(chain: Project) -> None:
    (chain.path / "prompts" / "summarize.j2").write_text(NEW_PROMPT)
    chain.record(mode="new").assert_outcomes(failed=3)
    with chain.llm.offline():
        chain.run("--promptflow-report=serial.json").assert_outcomes(failed=3)
        chain.run("-n", "2", "--promptflow-report=xdist.json").assert_outcomes(failed=3)
        chain.run("-k", "login", "--promptflow-report=shard-1.json").assert_outcomes(failed=1)
        chain.run("-k", "not login", "--promptflow-report=shard-2.json").assert_outcomes(failed=2)
    assert report(chain, "xdist.json") == report(chain, "serial.json")

    done = run_merge_command("shard-1.json", "shard-2.json", "--out", "merged.json", cwd=chain.path)
    assert done.returncode == 0, done.stderr
    assert report(chain, "merged.json") == report(chain, "serial.json")
    for suffix in ("md", "html"):
        assert (
            run_merge_command(
                "shard-1.json", "shard-2.json", "--out", f"merged.{suffix}", cwd=chain.path
            ).returncode
            == 0
        )
    markdown = (chain.path / "merged.md").read_text()
    assert "3 case(s) over budget" in markdown
    assert "`summarize` over budget (prompt)" in markdown


def test_merging_reports_of_different_schema_versions_is_refused(chain: Project) -> None:
    with chain.llm.offline():
        chain.run("--promptflow-report=new.json").assert_outcomes(passed=3)
    old = report(chain, "new.json") | {"schema": 1}
    (chain.path / "old.json").write_text(json.dumps(old))

    refused = run_merge_command("new.json", "old.json", "--out", "merged.html", cwd=chain.path)

    assert refused.returncode == 2
    assert "cannot join reports of different schema versions" in refused.stderr
    assert "old.json has schema 1" in refused.stderr
    assert "new.json has schema 3" in refused.stderr
    assert not (chain.path / "merged.html").exists()
    assert refused.stdout == ""


def test_golden_figures_of_answers_recorded_over_are_unknown_not_zero(chain: Project) -> None:
    # Golden values written before they kept their answers' figures read them from the
    # answers; once those are re-recorded over, the golden figures are unknown.
    strip_golden_figures(chain)
    chain.llm.extra_reply = " ok"  # every answer one word longer, within every budget
    chain.record().assert_outcomes(passed=3)  # replaces the golden answers, keeps the golden

    with chain.llm.offline():
        chain.run("--promptflow-report=report.json").assert_outcomes(passed=3)
    for step in ("summarize", "shout", "sign"):
        usage = report(chain)["steps"][step]["usage"]
        assert usage["golden_cases"] == 0
        assert usage["over_budget"] == 0
    assert report(chain)["usage_cases"] == []
