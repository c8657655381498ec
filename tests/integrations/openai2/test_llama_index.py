"""LlamaIndex's OpenAI LLM: a structured LLM, then stream_complete, without tiktoken."""

from __future__ import annotations

import pytest
from chains import framework, openai_2_only, record_replay_and_break
from llm_fakes import Project

openai_2_only()
framework("llama_index.core", "llama-index-core", extra="frameworks-openai2")
framework("llama_index.llms.openai", "llama-index-llms-openai", extra="frameworks-openai2")

LLAMA_INDEX = """
from llama_index.llms.openai import OpenAI

# The same base URL records and replays; retries would hide a miss.
LLM = OpenAI(
    model="gpt-4o-mini", api_base=BASE_URL + "/v1", api_key=OPENAI_KEY, max_retries=0
)


def structured(prompt: str) -> Topic:
    return LLM.as_structured_llm(Topic).complete(prompt).raw


def complete(prompt: str) -> str:
    return "".join(reply.delta or "" for reply in LLM.stream_complete(prompt))
"""


def test_llama_index_records_replays_and_names_the_step(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An empty tiktoken cache: a tokenizer used anywhere would fetch its BPE file into it
    # (or fail, offline). Structured answers and streaming on a chat model count nothing.
    cache = project.path / "tiktoken-cache"
    cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))

    record_replay_and_break(project, LLAMA_INDEX)

    assert list(cache.iterdir()) == []
