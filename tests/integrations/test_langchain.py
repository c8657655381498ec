"""LangChain's ChatOpenAI, with_structured_output and streaming, inside a LangGraph graph."""

from __future__ import annotations

from chains import framework, record_replay_and_break
from llm_fakes import Project

framework("langchain_openai", "langchain-openai")
framework("langgraph.graph", "langgraph")

LANGCHAIN = """
from typing import TypedDict

from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph

# The same base URL records and replays; retries would hide a miss.
LLM = ChatOpenAI(
    model="gpt-4o-mini", base_url=BASE_URL + "/v1", api_key=OPENAI_KEY, max_retries=0
)


def structured(prompt: str) -> Topic:
    return LLM.with_structured_output(Topic).invoke(prompt)


def complete(prompt: str) -> str:
    return "".join(chunk.content for chunk in LLM.stream(prompt))


class State(TypedDict, total=False):
    text: str
    topic: Topic
    note: Note


def graph():
    builder = StateGraph(State)
    builder.add_node("find_topic", lambda state: {"topic": topic_of(state["text"])})
    builder.add_node("write_note", lambda state: {"note": describe(state["topic"])})
    builder.add_edge(START, "find_topic")
    builder.add_edge("find_topic", "write_note")
    builder.add_edge("write_note", END)
    return builder.compile()


def chain(text: str) -> Note:
    return graph().invoke({"text": text})["note"]
"""


def test_langchain_in_a_langgraph_graph_records_replays_and_names_the_step(
    project: Project,
) -> None:
    record_replay_and_break(project, LANGCHAIN, xdist=True)
