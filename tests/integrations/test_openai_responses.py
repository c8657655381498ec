"""The OpenAI SDK's Responses API: a JSON schema answer, then a streamed answer.

It runs in both environments (openai 3 here, openai 2 in ``.ci/run``'s second one)."""

from __future__ import annotations

from chains import (
    assert_recorded_on_the_responses_api,
    record_replay_and_break,
    responses_usage_of_chain,
)
from llm_fakes import Project

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
