"""instructor on the OpenAI SDK: a response model, then a partial stream of one."""

from __future__ import annotations

from chains import framework, openai_2_only, record_replay_and_break
from llm_fakes import Project

openai_2_only()
framework("instructor", "instructor", extra="frameworks-openai2")

INSTRUCTOR = """
import instructor
from openai import OpenAI

# No retries: neither the SDK's nor instructor's own re-asking (max_retries on create).
CLIENT = instructor.from_openai(
    OpenAI(base_url=BASE_URL + "/v1", api_key=OPENAI_KEY, max_retries=0)
)


def ask(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def structured(prompt: str) -> Topic:
    return CLIENT.chat.completions.create(
        model="gpt-4o-mini", response_model=Topic, messages=ask(prompt), max_retries=0
    )


def complete(prompt: str) -> str:
    partials = CLIENT.chat.completions.create_partial(
        model="gpt-4o-mini", response_model=Note, messages=ask(prompt), max_retries=0
    )
    *_, last = partials
    return last.text
"""


def test_instructor_records_replays_and_names_the_step(project: Project) -> None:
    record_replay_and_break(project, INSTRUCTOR)
