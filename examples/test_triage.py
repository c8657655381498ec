"""Tests of the example support-triage chain, run once per ticket in fixtures/tickets.jsonl."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, NamedTuple, cast

import pytest
from openai import OpenAI

from pytest_promptflow import Run, StepContractError, recording_run
from pytest_promptflow.cases import Case
from pytest_promptflow.isolation import RecordedStepCall
from triage import (
    PRODUCTS,
    Category,
    Classification,
    Problem,
    Ticket,
    classify,
    draft,
    extract,
    resolve,
    triage,
)

over_tickets = pytest.mark.promptflow_cases("tickets.jsonl", model=Ticket)


class Label(NamedTuple):
    """How a support lead triaged a fixture ticket by hand."""

    product: str
    category: Category
    escalated: bool


LABELS: dict[str, Label] = {
    "T-1001": Label("Acme Ledger", "billing", escalated=False),
    "T-1002": Label("Acme Pulse", "outage", escalated=True),
    "T-1003": Label("Acme Vault", "account", escalated=False),
    "T-1004": Label("Acme Ledger", "how-to", escalated=False),
    "T-1005": Label("Acme Pulse", "bug", escalated=False),
    "T-1006": Label("Acme Canvas", "billing", escalated=False),
    "T-1007": Label("Acme Vault", "how-to", escalated=False),
    "T-1008": Label("Acme Relay", "bug", escalated=False),
    "T-1009": Label("Acme Vault", "account", escalated=True),
    "T-1010": Label("Acme Ledger", "bug", escalated=True),
    "T-1011": Label("Acme Canvas", "how-to", escalated=False),
    "T-1012": Label("Acme Relay", "how-to", escalated=False),
    "T-1013": Label("Acme Pulse", "account", escalated=False),
    "T-1014": Label("Acme Relay", "outage", escalated=True),
}


def label_of(case: Case) -> Label:
    if case.id not in LABELS:
        pytest.fail(f"ticket {case.id} ({case.location}) has no label in LABELS; add one")
    return LABELS[case.id]


# --- the whole chain -------------------------------------------------------


@over_tickets
def test_whole_chain(chain_case: Case, chain_run: Run, llm_client: OpenAI) -> None:
    ticket: Ticket = chain_case.input
    label = label_of(chain_case)

    result = triage(ticket, llm_client)

    assert [call.step for call in chain_run.calls] == ["extract", "classify", "resolve", "draft"]
    assert result.problem.product == label.product
    assert result.classification.category == label.category
    assert 1 <= result.classification.level <= 5
    assert result.resolution.needs_escalation == label.escalated
    assert result.reply.subject.startswith("Re: ")
    assert result.problem.product in result.reply.body
    # What one step returned is exactly what the next one received.
    extract_call, classify_call, resolve_call, _ = chain_run.calls
    assert classify_call.inputs["problem"] == extract_call.output
    assert resolve_call.inputs["classification"] == classify_call.output


# --- one step at a time ----------------------------------------------------


@over_tickets
def test_extract_step(chain_case: Case, llm_client: OpenAI) -> None:
    ticket: Ticket = chain_case.input

    problem = extract(ticket, llm_client)

    assert problem.product == label_of(chain_case).product
    if ticket.product is not None:
        assert problem.product == ticket.product, "the product picked in the form wins"
    assert problem.product in PRODUCTS


@over_tickets
def test_classify_after_extract(chain_case: Case, llm_client: OpenAI) -> None:
    problem = extract(chain_case.input, llm_client)

    classification = classify(problem, llm_client)

    assert classification.category == label_of(chain_case).category
    if classification.category == "how-to":
        assert classification.level <= 2, "a question never outranks broken software"


@over_tickets
def test_draft_follows_the_resolution(chain_case: Case, llm_client: OpenAI) -> None:
    ticket: Ticket = chain_case.input
    problem = extract(ticket, llm_client)
    resolution = resolve(problem, classify(problem, llm_client), llm_client)

    reply = draft(ticket, problem, resolution, llm_client)

    for action in resolution.steps:
        assert action in reply.body
    assert reply.body.rstrip().endswith("Acme Support")
    if resolution.needs_escalation:
        assert reply.tone == "apologetic"


# --- contracts -------------------------------------------------------------

OUTAGE = Problem(
    product="Acme Pulse",
    summary="Acme Pulse: the dashboard is down for the whole team.",
    symptoms=["Every page returns 503 Service Unavailable since 08:40 UTC"],
    customer_goal="Get the dashboard back for the morning review",
    sentiment="frustrated",
)


class ScriptedCompletions:
    """Answers every chat completion with one fixed reply, like a model gone off-script."""

    def __init__(self, reply: dict[str, Any]) -> None:
        self.reply = json.dumps(reply)
        self.requests: list[dict[str, Any]] = []

    def create(self, **request: Any) -> SimpleNamespace:
        self.requests.append(request)
        message = SimpleNamespace(role="assistant", content=self.reply)
        return SimpleNamespace(choices=[SimpleNamespace(index=0, message=message)])


def scripted_client(completions: ScriptedCompletions) -> OpenAI:
    # Only `client.chat.completions.create` is used by the non-streaming steps.
    return cast(OpenAI, SimpleNamespace(chat=SimpleNamespace(completions=completions)))


def test_a_generic_reason_breaks_the_classify_contract() -> None:
    completions = ScriptedCompletions(
        {"level": 2, "category": "bug", "reason": "Looks like a routine issue to me."}
    )

    with pytest.raises(StepContractError) as caught:
        classify(OUTAGE, scripted_client(completions))

    assert caught.value.step == "classify"
    assert caught.value.boundary == "check reason_refers_to_the_problem"


def test_an_unescalated_level_five_breaks_the_resolve_contract() -> None:
    classification = Classification(
        level=5, category="outage", reason="Acme Pulse returns 503 for the whole team."
    )
    completions = ScriptedCompletions(
        {"steps": ["Ask the customer to clear the browser cache"], "needs_escalation": False}
    )

    with pytest.raises(StepContractError) as caught:
        resolve(OUTAGE, classification, scripted_client(completions))

    assert caught.value.boundary == "check top_urgency_is_escalated"


def test_invalid_input_is_rejected_before_the_model_is_called() -> None:
    completions = ScriptedCompletions({})
    problem_without_symptoms = {**OUTAGE.model_dump(), "symptoms": []}

    with pytest.raises(StepContractError) as caught:
        classify(problem_without_symptoms, scripted_client(completions))  # type: ignore[arg-type]

    assert caught.value.boundary == "input"
    assert any(problem.startswith("problem.symptoms") for problem in caught.value.problems)
    assert completions.requests == []


def test_a_reply_out_of_shape_breaks_the_output_contract() -> None:
    completions = ScriptedCompletions({"level": 7, "category": "urgent", "reason": "Acme Pulse"})

    # The step parses the reply itself; the validation error it raises is reported as
    # a broken output contract, and the run records which step call broke it. A run can
    # be recorded without pytest, which keeps this test free of any cassette.
    with recording_run(Run()) as run, pytest.raises(StepContractError) as caught:
        classify(OUTAGE, scripted_client(completions))

    assert caught.value.boundary == "output"
    assert {problem.split(":")[0] for problem in caught.value.problems} == {
        "output.level",
        "output.category",
        "output.reason",
    }
    (call,) = run.calls
    assert call.step == "classify"
    assert call.contract_broken
    assert call.error is not None
    assert "output.level" in call.error


# --- one step alone, from its recorded calls --------------------------------


@pytest.mark.promptflow_step("extract")
def test_extract_alone(recorded_step: RecordedStepCall, llm_client: OpenAI) -> None:
    problem = recorded_step(client=llm_client)

    assert problem.product in PRODUCTS
    assert problem.product == recorded_step.golden_output.product


@pytest.mark.promptflow_step("classify")
def test_classify_alone(recorded_step: RecordedStepCall, llm_client: OpenAI) -> None:
    # The step runs on the inputs it received in a recorded run of the chain, and
    # replays only its own model call; the gate compares it with its golden output.
    classification = recorded_step(client=llm_client)

    assert classification.category == recorded_step.golden_output.category
    assert recorded_step.inputs["problem"].product in classification.reason


@pytest.mark.promptflow_step("resolve")
def test_resolve_alone(recorded_step: RecordedStepCall, llm_client: OpenAI) -> None:
    resolution = recorded_step(client=llm_client)

    problem = recorded_step.inputs["problem"]
    assert any(problem.product in line for line in resolution.steps)
    assert resolution.needs_escalation == recorded_step.golden_output.needs_escalation


@pytest.mark.promptflow_step("draft")
def test_draft_alone(recorded_step: RecordedStepCall, llm_client: OpenAI) -> None:
    reply = draft_alone = recorded_step(client=llm_client)

    assert reply.body.startswith(f"Hi {recorded_step.inputs['ticket'].customer_name.split()[0]}")
    assert draft_alone.tone == recorded_step.golden_output.tone
