"""Property tests of the triage chain's deterministic code: prompt rendering and parsing.

They make no model call: generated inputs render the prompts, and generated replies,
in every shape a model really sends, are answered in-process to the real steps.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from openai import OpenAI

from pytest_promptflow import Step, strategies
from triage import CATEGORIES, PRODUCTS, classify, draft, extract, resolve

# Nothing listens here, and nothing is sent: the properties answer every request.
OFFLINE_CLIENT = OpenAI(base_url="http://127.0.0.1:9/v1", api_key="unused", max_retries=0)
QUICK = settings(max_examples=25, deadline=None, database=None)

# Fields a step's prompts leave out on purpose: the reply is written to the customer, so
# the draft does not repeat their email, plan or channel; resolving does not depend on
# the customer's mood.
LEFT_OUT: dict[str, set[str]] = {
    "extract": set(),
    "classify": set(),
    "resolve": {"problem.sentiment"},
    "draft": {"ticket.customer_email", "ticket.channel", "ticket.plan", "ticket.product"},
}
CONSTANTS: dict[str, dict[str, Any]] = {
    "extract": {"products": PRODUCTS},
    "classify": {"categories": CATEGORIES},
    "resolve": {},
    "draft": {},
}
STEPS = [extract, classify, resolve, draft]


@pytest.mark.parametrize("step", STEPS, ids=lambda step: step.name)
def test_every_prompt_renders_and_reads_every_input_field(step: Step[..., Any]) -> None:
    @QUICK
    @given(inputs=strategies.inputs(step))
    def renders(inputs: dict[str, Any]) -> None:
        strategies.assert_prompt_renders(
            step,
            inputs,
            task=step.name,
            unused_ok=LEFT_OUT[step.name],
            **CONSTANTS[step.name],
        )

    renders()


@pytest.mark.parametrize("step", STEPS, ids=lambda step: step.name)
def test_every_step_parses_any_reply_or_breaks_its_contract(step: Step[..., Any]) -> None:
    @QUICK
    @given(inputs=strategies.inputs(step), reply=strategies.replies(step))
    def parses_or_rejects(inputs: dict[str, Any], reply: strategies.Reply) -> None:
        strategies.assert_parses_or_rejects(step, reply, **inputs, client=OFFLINE_CLIENT)

    parses_or_rejects()
