"""The budget gate: how far each metric of a step may grow from its golden figure.

A local OpenAI-compatible API reports the token figures each test scripts for each prompt,
so that a case's golden and current figures are exactly the ones chosen. Every project
records its chain with prompts ``v1``, then records ``v2`` with ``--promptflow-record=new``:
the golden answers stay, the new ones are judged against them.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator, Mapping

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from llm_fakes import LocalAPI, Project, openai_completion
from usage_chains import write_case_files
from werkzeug import Request, Response

from pytest_promptflow.budget import Limit, parse_budget
from pytest_promptflow.errors import PromptflowError

PRICED_MODEL = "gpt-4o-mini-2024-07-18"
UNPRICED_MODEL = "local-model-without-a-price"
PRICES = """
[tool.promptflow.prices]
currency = "USD"
"gpt-4o-mini" = { input = 1.0, output = 2.0 }
"""

CHAIN = """
import pytest

from endpoint import openai_client
from pytest_promptflow import Prompt, step

SUMMARIZE = Prompt.load("prompts/summarize.j2")
CLASSIFY = Prompt.load("prompts/classify.j2")


def ask(prompt: str) -> str:
    reply = openai_client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    return reply.choices[0].message.content


@step(prompt=SUMMARIZE)
def summarize(name: str) -> str:
    return ask(SUMMARIZE.render(name=name))


@step(prompt=CLASSIFY)
def classify(name: str) -> str:
    return ask(CLASSIFY.render(name=name))


@pytest.mark.promptflow_cases("cases.jsonl")
def test_case(chain_case):
    summarize(chain_case.data["name"])
    classify(chain_case.data["name"])
"""

Figures = tuple[int, int]
"""Input and output tokens of one answer."""
UNCHANGED: tuple[Figures, Figures] = ((10, 10), (10, 10))


class ScriptedUsage(LocalAPI):
    """A local chat completions API: the prompt ``VERSION STEP CASE`` gets the same answer
    in every version, reporting the tokens scripted for that version, step and case."""

    def __init__(self) -> None:
        self.figures: dict[tuple[str, str], tuple[Figures, Figures]] = {}
        """(step, case) -> (tokens with prompt v1, tokens with prompt v2)."""
        self.models: dict[str, str] = {}
        """The model that answers a step; PRICED_MODEL by default."""
        super().__init__()

    def _install(self) -> None:
        self.server.expect_request("/v1/chat/completions", method="POST").respond_with_handler(
            self._answer
        )

    def _answer(self, request: Request) -> Response:
        prompt = json.loads(request.data)["messages"][-1]["content"]
        version, step, case = prompt.split()
        golden, now = self.figures.get((step, case), UNCHANGED)
        prompt_tokens, completion_tokens = golden if version == "v1" else now
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        completion = openai_completion(f"chatcmpl-{step}-{case}", f"{step} of {case}", usage)
        completion["model"] = self.models.get(step, PRICED_MODEL)
        return Response(json.dumps(completion), content_type="application/json")


@pytest.fixture
def llm() -> Iterator[ScriptedUsage]:
    """The API this module's projects (the ``project`` fixture) talk to."""
    with ScriptedUsage() as server:
        yield server


def budget_ini(*lines: str) -> str:
    return "[pytest]\npromptflow_budget =\n" + "".join(f"    {line}\n" for line in lines)


def prompts_of(version: str) -> dict[str, str]:
    """Each step's prompt file in ``version``: its text is ``VERSION STEP CASE``."""
    return {f"{step}.j2": f"{version} {step} {{{{ name }}}}" for step in ("summarize", "classify")}


def regrow(
    project: Project,
    llm: ScriptedUsage,
    figures: Mapping[tuple[str, str], tuple[Figures, Figures]],
    ini: str | None = None,
    pyproject: str = PRICES,
) -> tuple[dict[str, str], pytest.LineMatcher]:
    """Record every case with prompts v1, then v2: each case's outcome and the output.

    ``figures`` gives (step, case) its tokens with v1 (golden) and v2 (now); any other
    step of a case answers with the same figures in both versions."""
    llm.figures.update(figures)
    cases = sorted({case for _, case in figures})
    write_case_files(
        project,
        [{"id": case, "name": case} for case in cases],
        prompts_of("v1"),
        pyproject,
        ini,
        cases_file="cases.jsonl",
    )
    project.write(CHAIN)
    project.record("-v").assert_outcomes(passed=len(cases))
    for name, template in prompts_of("v2").items():
        (project.path / "prompts" / name).write_text(template)
    result = project.record("-v", mode="new")
    output = result.stdout.str()
    outcomes = dict(re.findall(r"::test_case\[([\w-]+)\] (PASSED|FAILED)", output))
    assert sorted(outcomes) == cases, output
    return outcomes, result.stdout


def overrun(case: str, step: str, change: str, limit: str) -> list[str]:
    """The lines of a case's failure that name one step's overrun (fnmatch patterns)."""
    return [
        f"over budget in case {case} (test_chain.py::test_case[[]{case}[]]):",
        f"  step {step} — prompt",
        f"    {change}  [[]budget {limit}; OVER[]]",
    ]


# -- through the plugin ------------------------------------------------------------------


def test_growth_equal_to_the_limit_passes_and_one_more_fails_percent_and_absolute(
    project: Project, llm: ScriptedUsage
) -> None:
    # From 200 tokens, +20% allows 240 and +20 allows 220: each limit is read as written.
    outcomes, output = regrow(
        project,
        llm,
        {
            ("summarize", "equal"): ((100, 100), (120, 120)),
            ("classify", "equal"): ((100, 100), (110, 110)),
            ("summarize", "percent-over"): ((100, 100), (120, 121)),
            ("classify", "absolute-over"): ((100, 100), (110, 111)),
        },
        budget_ini("summarize: tokens +20%", "classify: tokens +20"),
    )

    assert outcomes == {"equal": "PASSED", "percent-over": "FAILED", "absolute-over": "FAILED"}
    output.no_fnmatch_line("over budget in case equal *")
    output.fnmatch_lines(
        overrun("percent-over", "summarize", "tokens: 200 -> 241 (+20.5%)", "tokens +20%"),
        consecutive=True,
    )
    output.fnmatch_lines(
        overrun("absolute-over", "classify", "tokens: 200 -> 221 (+10.5%)", "tokens +20"),
        consecutive=True,
    )


def test_input_and_output_tokens_are_judged_each_by_its_own_limit(
    project: Project, llm: ScriptedUsage
) -> None:
    # From 200 input tokens +10 allows 210, from 100 output tokens +10% allows 110.
    outcomes, output = regrow(
        project,
        llm,
        {
            ("summarize", "within"): ((200, 100), (210, 110)),
            ("summarize", "more-input"): ((200, 100), (211, 100)),
            ("summarize", "more-output"): ((200, 100), (200, 111)),
        },
        budget_ini("input_tokens +10", "output_tokens +10%"),
    )

    assert outcomes == {"within": "PASSED", "more-input": "FAILED", "more-output": "FAILED"}
    output.fnmatch_lines(
        overrun("more-input", "summarize", "input_tokens: 200 -> 211 (+5.5%)", "input_tokens +10"),
        consecutive=True,
    )
    output.fnmatch_lines(
        overrun(
            "more-output", "summarize", "output_tokens: 100 -> 111 (+11.0%)", "output_tokens +10%"
        ),
        consecutive=True,
    )
    output.no_fnmatch_line("*budget tokens*")  # no limit was set on tokens


def test_cost_is_judged_when_every_call_has_a_price(project: Project, llm: ScriptedUsage) -> None:
    llm.models["classify"] = UNPRICED_MODEL
    outcomes, output = regrow(
        project,
        llm,
        {
            # 100 in at 1.0 and 100 out at 2.0 per million: 0.0003 USD.
            ("summarize", "dearer"): ((100, 100), (100, 120)),
            ("summarize", "a-little-dearer"): ((100, 100), (100, 104)),
            # Twice the tokens, but without a price the cost is not comparable.
            ("classify", "unpriced"): ((100, 100), (200, 200)),
        },
        budget_ini("cost +10%"),
    )

    assert outcomes == {"dearer": "FAILED", "a-little-dearer": "PASSED", "unpriced": "PASSED"}
    output.fnmatch_lines(
        overrun(
            "dearer",
            "summarize",
            "cost: 0.0003 USD -> 0.00034 USD (+13.3%)",
            "cost +10%",
        ),
        consecutive=True,
    )


def test_a_zero_golden_figure_is_judged_by_an_absolute_limit_only(
    project: Project, llm: ScriptedUsage
) -> None:
    outcomes, output = regrow(
        project,
        llm,
        {
            ("summarize", "from-no-input"): ((0, 10), (40, 10)),
            ("summarize", "from-no-output"): ((10, 0), (10, 5)),
            ("summarize", "from-no-output-over"): ((10, 0), (10, 6)),
        },
        budget_ini("input_tokens +50%", "output_tokens +5"),
    )

    # +50% of nothing is no growth at all; it is not held against the case.
    assert outcomes == {
        "from-no-input": "PASSED",
        "from-no-output": "PASSED",
        "from-no-output-over": "FAILED",
    }
    output.fnmatch_lines(
        overrun(
            "from-no-output-over",
            "summarize",
            "output_tokens: 0 -> 6",
            "output_tokens +5",
        ),
        consecutive=True,
    )


def test_the_budget_as_a_list_in_pyproject_toml(project: Project, llm: ScriptedUsage) -> None:
    pyproject = PRICES + textwrap.dedent(
        """
        [tool.pytest.ini_options]
        promptflow_budget = ["tokens +20%", "classify: output_tokens +50"]
        """
    )
    outcomes, output = regrow(
        project,
        llm,
        {
            ("summarize", "more-tokens"): ((100, 100), (100, 141)),
            ("classify", "more-output"): ((1000, 100), (1000, 151)),
            ("classify", "as-much-output-as-allowed"): ((1000, 100), (1000, 150)),
        },
        pyproject=pyproject,
    )

    assert outcomes == {
        "more-tokens": "FAILED",
        "more-output": "FAILED",
        "as-much-output-as-allowed": "PASSED",
    }
    output.fnmatch_lines(
        overrun("more-tokens", "summarize", "tokens: 200 -> 241 (+20.5%)", "tokens +20%"),
        consecutive=True,
    )
    output.fnmatch_lines(
        overrun(
            "more-output",
            "classify",
            "output_tokens: 100 -> 151 (+51.0%)",
            "output_tokens +50",
        ),
        consecutive=True,
    )


# -- the limits alone --------------------------------------------------------------------


@given(golden=st.integers(0, 10**9), amount=st.integers(0, 10**6))
def test_an_absolute_limit_allows_exactly_its_amount(golden: int, amount: int) -> None:
    limit = Limit("tokens", amount, relative=False)

    assert limit.allows(golden, golden + amount)
    assert not limit.allows(golden, golden + amount + 1)


@given(hundreds=st.integers(1, 10**6), percent=st.integers(0, 1000))
@example(hundreds=171, percent=13)  # 17,100 * 1.13 is 19,322.999999999996 in floats
def test_a_relative_limit_allows_exactly_its_share(hundreds: int, percent: int) -> None:
    golden = 100 * hundreds
    limit = Limit("output_tokens", percent, relative=True)

    assert limit.allows(golden, golden + hundreds * percent)
    assert not limit.allows(golden, golden + hundreds * percent + 1)


def test_budget_lines_read_each_metric_and_the_kind_of_limit() -> None:
    policy = parse_budget(
        ["tokens +20%, cost +0.5", "classify: output_tokens +50", "", "input_tokens +10"]
    )

    assert [str(limit) for limit in policy.limits_for("summarize")] == [
        "tokens +20%",
        "input_tokens +10",
        "cost +0.5",
    ]
    assert policy.limits_for("classify") == [
        Limit("tokens", 20, relative=True),
        Limit("input_tokens", 10, relative=False),
        Limit("output_tokens", 50, relative=False),
        Limit("cost", 0.5, relative=False),
    ]


@pytest.mark.parametrize("line", ["tokens 20%", "latency +10%", "tokens +", "classify:"])
def test_a_budget_line_that_cannot_be_read_is_refused_naming_it(line: str) -> None:
    with pytest.raises(PromptflowError, match=r"promptflow_budget: .*" + re.escape(repr(line))):
        parse_budget([line])
