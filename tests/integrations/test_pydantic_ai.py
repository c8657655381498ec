"""PydanticAI: an Agent with an output type, and a streamed Agent, on an OpenAI model."""

from __future__ import annotations

from chains import framework, record_replay_and_break
from llm_fakes import Project

framework("pydantic_ai", "pydantic-ai-slim[openai]")

PYDANTIC_AI = """
import asyncio

from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

MODEL = OpenAIChatModel(
    "gpt-4o-mini", provider=OpenAIProvider(base_url=BASE_URL + "/v1", api_key=OPENAI_KEY)
)
FIND = Agent(MODEL, output_type=Topic)
WRITE = Agent(MODEL)


def structured(prompt: str) -> Topic:
    return FIND.run_sync(prompt).output


async def streamed(prompt: str) -> str:
    async with WRITE.run_stream(prompt) as result:
        return "".join([delta async for delta in result.stream_text(delta=True)])


def complete(prompt: str) -> str:
    return asyncio.run(streamed(prompt))
"""


def test_pydantic_ai_agents_record_replay_and_name_the_step(project: Project) -> None:
    record_replay_and_break(project, PYDANTIC_AI)
