"""The fake model must be deterministic: recordings made against it never change by themselves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response

from pytest_promptflow import Prompt
from triage import CATEGORIES, PRODUCTS, Problem, Ticket, fake_llm
from triage.chain import CLASSIFY, EXTRACT, MODEL, _messages

CASSETTES = Path(__file__).resolve().parents[1] / "cassettes"

TICKET = Ticket(
    customer_name="Maria Lopez",
    customer_email="maria.lopez@brightpath.io",
    product="Acme Ledger",
    channel="web",
    subject="Charged twice for my March subscription",
    body="I was charged twice for our Acme Ledger subscription this month. Please refund one.",
)


def extract_request(**overrides: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": _messages("extract", EXTRACT.render(ticket=TICKET, products=PRODUCTS)),
        "temperature": 0,
        "response_format": {"type": "json_object"},
        **overrides,
    }


def post(body: dict[str, Any], *, api_key: str | None = "sk-test") -> Response:
    headers = [("Authorization", f"Bearer {api_key}")] if api_key else []
    builder = EnvironBuilder(
        method="POST", path=fake_llm.CHAT_COMPLETIONS_PATH, json=body, headers=headers
    )
    return fake_llm.handle_chat_completion(builder.get_request())


def streamed_events(response: Response) -> list[str]:
    text = response.get_data(as_text=True)
    return [block.removeprefix("data: ") for block in text.split("\n\n") if block]


def test_the_same_request_gets_the_same_bytes() -> None:
    first, second = post(extract_request()), post(extract_request())

    assert first.status_code == 200
    assert first.get_data() == second.get_data()
    assert first.headers["x-request-id"] == second.headers["x-request-id"]


def test_key_order_does_not_change_the_answer() -> None:
    body = extract_request()
    reordered = dict(reversed(list(body.items())))

    assert post(body).get_data() == post(reordered).get_data()


def test_a_streamed_reply_joins_to_the_plain_reply() -> None:
    plain = json.loads(post(extract_request()).get_data())
    streamed = post(extract_request(stream=True, stream_options={"include_usage": True}))

    events = streamed_events(streamed)
    assert streamed.mimetype == "text/event-stream"
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    content = "".join(
        chunk["choices"][0]["delta"].get("content", "") for chunk in chunks if chunk["choices"]
    )
    assert content == plain["choices"][0]["message"]["content"]
    assert len(chunks) > 3, "the reply arrives in several deltas"
    assert chunks[-1]["usage"]["total_tokens"] > 0


@pytest.mark.parametrize(
    ("body", "api_key", "status"),
    [
        pytest.param(extract_request(), None, 401, id="no-api-key"),
        pytest.param({"model": MODEL, "messages": []}, "sk-test", 400, id="no-messages"),
        pytest.param(
            {"model": MODEL, "messages": [{"role": "user", "content": "Hello"}]},
            "sk-test",
            400,
            id="not-a-triage-step",
        ),
    ],
)
def test_requests_it_cannot_answer_get_an_api_error(
    body: dict[str, Any], api_key: str | None, status: int
) -> None:
    response = post(body, api_key=api_key)

    assert response.status_code == status
    assert json.loads(response.get_data())["error"]["type"] == "invalid_request_error"


def recorded_reply(response: dict[str, Any]) -> str:
    """The assistant's text in a recorded response: a completion, or the deltas of a stream."""
    if "events" in response:
        return "".join(
            choice["delta"].get("content") or ""
            for event in response["events"]
            if isinstance(event.get("data"), dict)
            for choice in event["data"]["choices"]
        )
    content: str = response["body"]["choices"][0]["message"]["content"]
    return content


def test_every_recorded_reply_is_what_the_fake_model_answers() -> None:
    # The committed recordings stay what the fake model says: a rule added for an edited
    # prompt must leave its answers to the prompts recorded so far as they were.
    exchanges = [
        (path, interaction)
        for path in sorted(CASSETTES.rglob("*.json"))
        for interaction in json.loads(path.read_text(encoding="utf-8"))["interactions"]
    ]
    if not exchanges:
        pytest.skip(f"no recorded runs under {CASSETTES} yet")

    for path, interaction in exchanges:
        where = f"{path.relative_to(CASSETTES)}, step {interaction['step']}"
        reply = recorded_reply(interaction["response"])
        assert fake_llm.answer(interaction["request"]["body"]) == reply, where


SCALE_LINE = "2 - a minor inconvenience with a workaround\n"
QUESTIONS_GONE_WRONG = (
    f"2 - a minor inconvenience with a workaround, or {fake_llm.QUESTION_GONE_WRONG}\n"
)


def classify_request(prompt: Prompt, symptom: str) -> dict[str, Any]:
    problem = Problem(
        product="Acme Relay",
        summary="Acme Relay: Question about webhook retry.",
        symptoms=[symptom],
        customer_goal="We want to know if we must build a replay on our side.",
        sentiment="calm",
    )
    return {
        "model": MODEL,
        "messages": _messages("classify", prompt.render(problem=problem, categories=CATEGORIES)),
        "temperature": 0,
        "response_format": {"type": "json_object"},
    }


@pytest.mark.parametrize(
    ("symptom", "level_after_the_edit"),
    [
        pytest.param(
            "When our server was in maintenance, some webhooks are never received after.",
            2,
            id="trouble",
        ),
        pytest.param("I looked through the settings but could not find it.", 2, id="read-loosely"),
        pytest.param("Is it possible to change how often Relay retries a webhook?", 1, id="plain"),
    ],
)
def test_a_scale_that_ranks_questions_about_trouble_raises_them_to_level_two(
    symptom: str, level_after_the_edit: int
) -> None:
    # The scale as committed, also while the README's walkthrough has the edit in place.
    committed = CLASSIFY.source.replace(QUESTIONS_GONE_WRONG, SCALE_LINE)
    assert committed.count(SCALE_LINE) == 1
    unedited = Prompt.from_string(committed, name="classify")
    edited = Prompt.from_string(
        committed.replace(SCALE_LINE, QUESTIONS_GONE_WRONG), name="classify"
    )

    before = json.loads(fake_llm.answer(classify_request(unedited, symptom)))
    after = json.loads(fake_llm.answer(classify_request(edited, symptom)))

    assert (before["category"], before["level"]) == ("how-to", 1)
    assert (after["category"], after["level"]) == ("how-to", level_after_the_edit)
    assert after["reason"] == before["reason"]
