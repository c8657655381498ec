"""litellm: an OpenAI-compatible model through its api_base, JSON and streamed."""

from __future__ import annotations

from chains import framework, record_replay_and_break
from llm_fakes import Project

framework("litellm", "litellm")

LITELLM = """
import os

# Set before litellm is imported (a conftest.py is the place): else it downloads its
# model price map at import, outside any test.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm

OPTIONS = {"model": "openai/gpt-4o-mini", "api_base": BASE_URL + "/v1", "api_key": OPENAI_KEY}


def structured(prompt: str) -> Topic:
    reply = litellm.completion(
        messages=[{"role": "user", "content": prompt}], response_format=Topic, **OPTIONS
    )
    return Topic.model_validate_json(reply.choices[0].message.content)


def complete(prompt: str) -> str:
    stream = litellm.completion(
        messages=[{"role": "user", "content": prompt}], stream=True, **OPTIONS
    )
    return "".join(chunk.choices[0].delta.content or "" for chunk in stream)
"""


def test_litellm_records_replays_and_names_the_step(project: Project) -> None:
    record_replay_and_break(project, LITELLM)
