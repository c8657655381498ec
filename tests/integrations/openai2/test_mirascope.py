"""Mirascope v2: its OpenAI provider on the Responses API, a formatted call, then a
streamed one, the provider passed to each step as a parameter annotated ``llm.Provider``."""

from __future__ import annotations

from chains import (
    ClientParameter,
    assert_recorded_on_the_responses_api,
    framework,
    openai_2_only,
    record_replay_and_break,
    responses_usage_of_chain,
)
from llm_fakes import Project

openai_2_only()
framework("mirascope.llm", "mirascope", extra="frameworks-openai2")

MIRASCOPE = """
from mirascope import llm

# Its OpenAI provider calls the Responses API (POST /v1/responses) for OpenAI's models.
CLIENT = llm.register_provider(
    "openai", scope="openai/", base_url=BASE_URL + "/v1", api_key=OPENAI_KEY
)
MODEL = "openai/gpt-4o-mini"


def structured(prompt: str, provider: llm.Provider) -> Topic:
    reply = provider.call(
        model_id=MODEL, messages=[llm.messages.user(prompt)], toolkit=llm.Toolkit(None),
        format=Topic,
    )
    return reply.parse()


def complete(prompt: str, provider: llm.Provider) -> str:
    stream = provider.stream(
        model_id=MODEL, messages=[llm.messages.user(prompt)], toolkit=llm.Toolkit(None)
    )
    return "".join(stream.text_stream(sep=""))
"""


def test_mirascope_on_the_responses_api_records_replays_and_names_the_step(
    project: Project,
) -> None:
    # llm.Provider is the string "BaseProvider[Any]", which the chain's module cannot
    # resolve: the parameter is passed through, and the step alone is given it again.
    report = record_replay_and_break(
        project, MIRASCOPE, client=ClientParameter("provider", "llm.Provider")
    )

    assert_recorded_on_the_responses_api(project)
    for step, (inputs, outputs) in responses_usage_of_chain().items():
        now = report["steps"][step]["usage"]["now"]
        assert (now["input_tokens"], now["output_tokens"]) == (inputs, outputs), step
