"""The Google Gen AI SDK (Gemini): a response schema, and a streamed answer."""

from __future__ import annotations

from chains import framework, record_replay_and_break
from llm_fakes import Project

framework("google.genai", "google-genai")

GOOGLE_GENAI = """
from google import genai
from google.genai import types

CLIENT = genai.Client(
    api_key=GEMINI_KEY,
    # The same base URL records and replays; no retries, so a miss fails at once.
    http_options=types.HttpOptions(
        base_url=BASE_URL, retry_options=types.HttpRetryOptions(attempts=1)
    ),
)


def structured(prompt: str) -> Topic:
    reply = CLIENT.models.generate_content(
        model="gemini-2.5-flash",
        contents=prompt,
        config=types.GenerateContentConfig(
            response_mime_type="application/json", response_schema=Topic
        ),
    )
    return reply.parsed


def complete(prompt: str) -> str:
    stream = CLIENT.models.generate_content_stream(model="gemini-2.5-flash", contents=prompt)
    return "".join(chunk.text or "" for chunk in stream)
"""


def test_google_genai_records_replays_and_names_the_step(project: Project) -> None:
    record_replay_and_break(project, GOOGLE_GENAI)
