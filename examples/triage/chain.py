"""The support-triage chain: four LLM steps from a raw ticket to a drafted reply.

    ticket -> extract -> Problem -> classify -> Classification
                      -> resolve -> Resolution -> draft -> Reply

Each step is an ordinary function that talks to the OpenAI chat completions API.
``@step`` checks what crosses its boundary: the inputs and the return value are
validated against their annotations and the property checks in ``checks`` run
on every call.
"""

from __future__ import annotations

from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from pytest_promptflow import Prompt, step
from triage import checks
from triage.models import (
    CATEGORIES,
    PRODUCTS,
    Classification,
    Problem,
    Reply,
    Resolution,
    Ticket,
    TriageResult,
)

MODEL = "gpt-4o-mini"

# The system prompt is shared by every step and names the step's task; it is
# listed in each step's prompts so that editing it is seen as a new version of
# every step.
SYSTEM = Prompt.load("prompts/system.j2")
EXTRACT = Prompt.load("prompts/extract.j2")
CLASSIFY = Prompt.load("prompts/classify.j2")
RESOLVE = Prompt.load("prompts/resolve.j2")
DRAFT = Prompt.load("prompts/draft.j2")


def _messages(task: str, user_prompt: str) -> list[ChatCompletionMessageParam]:
    return [
        {"role": "system", "content": SYSTEM.render(task=task)},
        {"role": "user", "content": user_prompt},
    ]


def _complete_json(client: OpenAI, task: str, user_prompt: str) -> str:
    """Ask for one JSON object and return its text."""
    completion = client.chat.completions.create(
        model=MODEL,
        messages=_messages(task, user_prompt),
        temperature=0,
        response_format={"type": "json_object"},
    )
    content = completion.choices[0].message.content
    if content is None:
        # A refusal or a tool call: there is no JSON to validate.
        raise ValueError(f"the model returned no text for the {task!r} step")
    return content


@step(
    prompt=[SYSTEM, EXTRACT],
    checks=[checks.problem_names_a_product_from_the_ticket, checks.symptoms_are_distinct],
)
def extract(ticket: Ticket, client: OpenAI) -> Problem:
    prompt = EXTRACT.render(ticket=ticket, products=PRODUCTS)
    return Problem.model_validate_json(_complete_json(client, "extract", prompt))


@step(
    prompt=[SYSTEM, CLASSIFY],
    checks=[checks.reason_refers_to_the_problem, checks.outages_are_urgent],
)
def classify(problem: Problem, client: OpenAI) -> Classification:
    prompt = CLASSIFY.render(problem=problem, categories=CATEGORIES)
    return Classification.model_validate_json(_complete_json(client, "classify", prompt))


@step(
    prompt=[SYSTEM, RESOLVE],
    checks=[checks.top_urgency_is_escalated, checks.steps_are_distinct],
)
def resolve(problem: Problem, classification: Classification, client: OpenAI) -> Resolution:
    prompt = RESOLVE.render(problem=problem, classification=classification)
    return Resolution.model_validate_json(_complete_json(client, "resolve", prompt))


@step(
    prompt=[SYSTEM, DRAFT],
    checks=[
        checks.reply_greets_the_customer_by_name,
        checks.reply_names_the_product,
        checks.escalated_reply_says_so,
        checks.reply_cites_the_kb_article,
        checks.reply_has_no_placeholders,
    ],
)
def draft(ticket: Ticket, problem: Problem, resolution: Resolution, client: OpenAI) -> Reply:
    # The reply is streamed, as a support UI would show it while it is written;
    # the JSON is only complete, and only validated, once the stream ends.
    prompt = DRAFT.render(ticket=ticket, problem=problem, resolution=resolution)
    parts: list[str] = []
    with client.chat.completions.create(
        model=MODEL,
        messages=_messages("draft", prompt),
        temperature=0,
        response_format={"type": "json_object"},
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        for chunk in stream:
            # The last chunk carries only the token usage and has no choices.
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
    return Reply.model_validate_json("".join(parts))


def triage(ticket: Ticket, client: OpenAI) -> TriageResult:
    """Run the whole chain for one ticket."""
    problem = extract(ticket, client)
    classification = classify(problem, client)
    resolution = resolve(problem, classification, client)
    reply = draft(ticket, problem, resolution, client)
    return TriageResult(
        problem=problem,
        classification=classification,
        resolution=resolution,
        reply=reply,
    )
