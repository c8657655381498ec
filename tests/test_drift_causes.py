"""Why a step's output drifted: its prompt, an upstream step, the model, its code, its schema."""

from __future__ import annotations

import re

from drift_chains import (
    LABEL_PROMPT,
    ONE_STEP_NODE,
    record_golden,
    record_then_rerecord,
    reply,
    write_chain,
    write_one_step,
)
from llm_fakes import Project

from pytest_promptflow.cassette.format import GoldenStep, RecordedRun
from pytest_promptflow.drift.classify import judge_case
from pytest_promptflow.prompts import prompt_version
from pytest_promptflow.trace import Run

# -- prompt -----------------------------------------------------------------------------

CLASSIFY_CHAIN = """
CLASSIFY = Prompt.load("prompts/classify.j2")


class Urgency(BaseModel):
    level: Annotated[int, drift.exact()]
    reason: Annotated[str, drift.similar(0.8)]


@step(prompt=CLASSIFY)
def classify(text: str) -> Urgency:
    return Urgency.model_validate_json(ask(CLASSIFY.render(text=text)))


@pytest.mark.promptflow
def test_classify():
    classify("cannot log in")
"""
OLD_PROMPT = "Classify: {{ text }}"
NEW_PROMPT = "Classify this ticket by urgency: {{ text }}"


def test_a_prompt_edit_is_the_cause_and_the_report_shows_the_template_diff(
    project: Project,
) -> None:
    (project.path / "prompts").mkdir()
    prompt = project.path / "prompts" / "classify.j2"
    prompt.write_text(OLD_PROMPT)
    write_chain(project, CLASSIFY_CHAIN)
    project.llm.answers["Classify: cannot log in"] = reply(
        {"level": 2, "reason": "The login page rejects the password."}
    )
    project.llm.answers["Classify this ticket by urgency: cannot log in"] = reply(
        {"level": 3, "reason": "The login page rejects the password!"}
    )
    project.record().assert_outcomes(passed=1)

    prompt.write_text(NEW_PROMPT)
    result = project.record("--promptflow-report=drift.md", mode="new")

    old, new = prompt_version(OLD_PROMPT), prompt_version(NEW_PROMPT)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "drift from the golden run (test_chain.py::test_classify):",
            f"  step classify — prompt: classify changed {old} -> {new}",
            "    level: 2 -> 3  [[]exact; DRIFT[]]",
            '    reason: "The login page rejects the password." -> '
            '"The login page rejects the password!"  [[]similar(0.8), score 0.972; tolerated[]]',
        ]
    )
    result.stdout.re_match_lines([r"^classify +1 +1 +1 +1 +0 +\(1 prompt\)$"])
    report = (project.path / "drift.md").read_text()
    assert (
        "```diff\n"
        "--- classify (golden)\n"
        "+++ classify (now)\n"
        "@@ -1 +1 @@\n"
        f"-{OLD_PROMPT}\n"
        f"+{NEW_PROMPT}\n"
        "```"
    ) in report


def test_a_prompt_the_step_no_longer_uses_is_named_as_the_change() -> None:
    golden = RecordedRun(
        test="test_chain.py::test_draft",
        steps=[
            GoldenStep(
                step="draft",
                prompts={"system": "5f0c4e6a9b21", "draft": "0b7d2e4c1a93"},
                output="Hi",
            )
        ],
        prompt_sources={"5f0c4e6a9b21": "You answer support tickets.", "0b7d2e4c1a93": "Draft"},
    )
    run = Run(test_id="test_chain.py::test_draft")
    call = run.begin_call("draft", None, {}, {"draft": "0b7d2e4c1a93"})
    call.output = "Hello"

    verdict = judge_case(golden, run)

    assert verdict is not None
    (step,) = verdict.steps
    assert step.cause == "prompt"
    assert "system" in step.detail
    assert "5f0c4e6a9b21" in step.detail


# -- propagated -------------------------------------------------------------------------

TWO_STEPS = """
class Problem(BaseModel):
    product: Annotated[str, drift.exact()]


class Urgency(BaseModel):
    level: Annotated[int, drift.exact()]


@step
def extract(ticket: str) -> Problem:
    return Problem.model_validate_json(ask(f"Extract: {ticket}"))


@step
def classify(problem: Problem) -> Urgency:
    return Urgency.model_validate_json(ask(f"Classify: {problem.product}"))


@pytest.mark.promptflow
def test_triage():
    classify(extract("the dashboard is down"))
"""


def test_a_changed_upstream_output_propagates_to_the_step_it_feeds(project: Project) -> None:
    write_chain(project, TWO_STEPS)
    answers = project.llm.answers
    answers["Classify: Acme Vault"] = reply({"level": 2})
    answers["Classify: Acme Pulse"] = reply({"level": 5})
    answers["Extract: the dashboard is down"] = reply({"product": "Acme Vault"})
    project.record().assert_outcomes(passed=1)

    answers["Extract: the dashboard is down"] = reply({"product": "Acme Pulse"})
    result = project.record()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "drift from the golden run (test_chain.py::test_triage):",
            "  step extract — model: the model answered the same request differently",
            '    product: "Acme Vault" -> "Acme Pulse"  [[]exact; DRIFT[]]',
            "  step classify — propagated: from extract",
            "    level: 2 -> 5  [[]exact; DRIFT[]]",
        ]
    )
    result.stdout.re_match_lines(
        [r"^classify +1 +1 +0 +1 +0 +\(1 propagated\)$", r"^extract +1 +1 +0 +1 +0 +\(1 model\)$"]
    )


# -- model ------------------------------------------------------------------------------


def test_another_answer_to_the_same_request_is_the_model(project: Project) -> None:
    write_one_step(project, "Annotated[int, drift.exact()]")

    result = record_then_rerecord(project, reply({"value": 1}), reply({"value": 2}))

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "  step label — model: the model answered the same request differently",
            "    value: 1 -> 2  [[]exact; DRIFT[]]",
        ]
    )
    # The same prompt went out twice: only the answer differs.
    assert [r["messages"][0]["content"] for r in project.llm.requests] == [LABEL_PROMPT] * 2


# -- code -------------------------------------------------------------------------------

PARSING = """
class Output(BaseModel):
    level: Annotated[int, drift.exact()]


LABEL = Prompt.from_string("Label {{{{ topic }}}}", name="label")


@step(prompt=LABEL)
def label(topic: str) -> Output:
    data = json.loads(ask(LABEL.render(topic=topic)))
    return Output(level=data["level"]{adjust})


@pytest.mark.promptflow
def test_label():
    label("gravity")
"""


def test_a_new_result_from_the_same_request_and_answer_is_the_code(project: Project) -> None:
    write_chain(project, PARSING.format(adjust=""))
    record_golden(project, reply({"level": 2}))

    write_chain(project, PARSING.format(adjust=" + 1"))
    with project.llm.offline():
        result = project.run()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "  step label — code: same request and answer: the step's own code changed the result",
            "    level: 2 -> 3  [[]exact; DRIFT[]]",
        ]
    )
    result.stdout.re_match_lines([r"^label +1 +1 +0 +1 +0 +\(1 code\)$"])


# -- schema -----------------------------------------------------------------------------


def test_a_changed_output_model_is_the_schema(project: Project) -> None:
    write_one_step(project, "int")
    record_golden(project, reply({"value": 1}))
    (golden,) = project.cassette("test_chain/test_label.json")["steps"]

    write_one_step(project, "int\n    note: str = 'none'")
    with project.llm.offline():
        result = project.run()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"  step label — schema: the output schema changed: {golden['schema']} -> *",
            '    note: added: "none"  [[]facts(); DRIFT[]]',
        ]
    )
    changed = re.search(r"the output schema changed: ([\w:]+) -> ([\w:]+)", result.stdout.str())
    assert changed is not None
    assert changed[1] != changed[2]


# -- new call, missing call ---------------------------------------------------------------

CALLS = """
@step
def double(n: int) -> int:
    return n * 2


@step
def halve(n: int) -> int:
    return n // 2


@pytest.mark.promptflow
def test_calls():
    {calls}
"""


def write_calls(project: Project, *calls: str) -> None:
    write_chain(project, CALLS.format(calls="\n    ".join(calls)))


def test_a_call_the_golden_run_did_not_make_is_a_new_call(project: Project) -> None:
    write_calls(project, "double(1)")
    project.record().assert_outcomes(passed=1)

    write_calls(project, "double(1)", "double(2)", "halve(4)")
    result = project.run()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "drift from the golden run (test_chain.py::test_calls):",
            "  step double (call 2) — new call: no golden value for this call",
            "  step halve — new call: no golden value for this call",
        ]
    )
    result.stdout.re_match_lines(
        [r"^double +2 +1 +0 +1 +0 +\(1 new call\)$", r"^halve +1 +0 +0 +1 +0 +\(1 new call\)$"]
    )


def test_a_call_the_golden_run_made_and_this_one_did_not_is_a_missing_call(
    project: Project,
) -> None:
    write_calls(project, "double(1)", "halve(4)", "double(2)")
    project.record().assert_outcomes(passed=1)

    write_calls(project, "double(1)")
    result = project.run()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "  step halve — missing call: the golden run called it; this did not",
            "  step double (call 2) — missing call: the golden run called it; this did not",
        ]
    )


def test_calls_are_matched_by_step_and_occurrence(project: Project) -> None:
    write_calls(project, "double(1)", "halve(4)", "double(2)")
    project.record().assert_outcomes(passed=1)

    write_calls(project, "double(1)", "double(3)", "halve(4)")
    result = project.run()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "  step double (call 2) — propagated: from the test's inputs",
            "    (output): 4 -> 6  [[]exact; DRIFT[]]",
        ]
    )
    result.stdout.no_fnmatch_line("*step halve*")


# -- the gate and the test's own verdict -------------------------------------------------------


def test_a_test_that_fails_on_its_own_shows_its_drift_in_a_section(project: Project) -> None:
    write_calls(project, "double(1)")
    project.record().assert_outcomes(passed=1)

    write_calls(project, "double(2)", "assert False, 'the reply was wrong'")
    result = project.run()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: the reply was wrong*",
            "*promptflow drift*",
            "drift from the golden run (test_chain.py::test_calls):",
            "    (output): 2 -> 4  [[]exact; DRIFT[]]",
        ]
    )


def test_the_gate_passes_when_nothing_changed(project: Project) -> None:
    write_one_step(project, "Annotated[int, drift.exact()]")
    record_golden(project, reply({"value": 1}))

    with project.llm.offline():
        result = project.run()

    result.assert_outcomes(passed=1)
    result.stdout.re_match_lines([r"^label +1 +1 +0 +0 +0$"])
    result.stdout.no_fnmatch_line("*drift from the golden run*")
    assert ONE_STEP_NODE not in result.stdout.str()


def test_a_prompt_change_that_also_changed_the_inputs_says_both() -> None:
    golden = RecordedRun(
        test="t",
        steps=[
            GoldenStep(step="extract", prompts={"extract": "a1"}, inputs={"t": "x"}, output="A"),
            GoldenStep(step="classify", prompts={"classify": "c1"}, inputs={"p": "A"}, output=1),
        ],
    )
    run = Run(case_id="T-1", test_id="t")
    run.begin_call("extract", None, {"t": "x"}, {"extract": "a2"}).output = "B"
    run.begin_call("classify", None, {"p": "B"}, {"classify": "c2"}).output = 2

    verdict = judge_case(golden, run)

    assert verdict is not None
    extract, classify = verdict.steps
    assert (extract.cause, extract.also) == ("prompt", [])
    assert (classify.cause, classify.also) == ("prompt", ["propagated"])
    assert classify.detail == "classify changed c1 -> c2; its inputs changed too (from extract)"
    assert classify.to_json()["also"] == ["propagated"]
