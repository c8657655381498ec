"""The OpenAI SDK's Responses API: a JSON schema answer, then a streamed answer.

It runs in both environments (openai 3 here, openai 2 in ``.ci/run``'s second one)."""

from __future__ import annotations

import json
from typing import Any

import httpx
from chains import (
    assert_recorded_on_the_responses_api,
    record_replay_and_break,
    responses_usage_of_chain,
)
from framework_server import FrameworkServer
from llm_fakes import OPENAI_KEY, Project

RESPONSES = """
from openai import OpenAI

# The same base URL records and replays; retries would hide a miss.
CLIENT = OpenAI(base_url=BASE_URL + "/v1", api_key=OPENAI_KEY, max_retries=0)
TOPIC_FORMAT = {
    "type": "json_schema",
    "name": "Topic",
    "schema": {**Topic.model_json_schema(), "additionalProperties": False},
    "strict": True,
}


def structured(prompt: str) -> Topic:
    reply = CLIENT.responses.create(
        model="gpt-4o-mini", input=prompt, text={"format": TOPIC_FORMAT}
    )
    return Topic.model_validate_json(reply.output_text)


def complete(prompt: str) -> str:
    stream = CLIENT.responses.create(model="gpt-4o-mini", input=prompt, stream=True)
    return "".join(e.delta for e in stream if e.type == "response.output_text.delta")
"""


def test_openai_responses_record_replay_and_name_the_step(project: Project) -> None:
    report = record_replay_and_break(project, RESPONSES)

    assert_recorded_on_the_responses_api(project)
    for step, (inputs, outputs) in responses_usage_of_chain().items():
        now = report["steps"][step]["usage"]["now"]
        assert (now["input_tokens"], now["output_tokens"]) == (inputs, outputs), step


def test_the_stand_in_answers_the_responses_api_as_a_function_of_the_request(
    llm: FrameworkServer,
) -> None:
    question = [{"role": "user", "content": [{"type": "input_text", "text": "Write on comets"}]}]
    body: dict[str, Any] = {"model": "gpt-4o-mini", "input": question, "stream": True}

    def answer(body: dict[str, Any]) -> bytes:
        headers = {"Authorization": f"Bearer {OPENAI_KEY}"}
        reply = httpx.post(f"{llm.url}/v1/responses", json=body, headers=headers)
        assert reply.status_code == 200
        return reply.content

    streamed = answer(body)
    assert answer(body) == streamed
    events = [
        json.loads(line.removeprefix("data: "))
        for line in streamed.decode().splitlines()
        if line.startswith("data: ")
    ]
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    deltas = [event["delta"] for event in events if event["type"] == "response.output_text.delta"]
    (done,) = [event for event in events if event["type"] == "response.output_text.done"]
    assert "".join(deltas) == done["text"] == "A short note on comets."
    assert [event["response"]["usage"] for event in events if "response" in event] == [
        None,
        None,
        {
            "input_tokens": 3,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 5,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 8,
        },
    ]
    plain, completed = json.loads(answer({**body, "stream": False})), events[-1]["response"]
    assert plain["output"][0]["content"] == completed["output"][0]["content"]
    assert plain["usage"] == completed["usage"]
