"""A local stand-in for the model APIs the frameworks call: OpenAI-compatible chat
completions (text, JSON schema answers, tool calls, streamed or not) and Gemini's
generateContent. Answers are a pure function of the request, so re-recording is stable.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from llm_fakes import CREATED, OPENAI_KEY, _LocalServer, _sse
from werkzeug import Request, Response

GEMINI_KEY = "AIzaSy-canary-0123456789abcdefABCDEF"
OPENAI_PATH = "/v1/chat/completions"
GEMINI_PATH = re.compile(r"^/v1(?:beta)?/models/[^/:]+:(generateContent|streamGenerateContent)$")


def _text_of(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def subject_of(prompt: str) -> str:
    """The last word of the prompt: what the fake model says the text is about."""
    words = re.findall(r"[A-Za-z]+", prompt)
    return words[-1].lower() if words else "nothing"


def fill(schema: dict[str, Any], prompt: str, defs: dict[str, Any] | None = None) -> Any:
    """A value valid for a (simple) JSON schema, derived from the prompt."""
    defs = {**(defs or {}), **schema.get("$defs", {}), **schema.get("definitions", {})}
    if "$ref" in schema:
        return fill(defs[schema["$ref"].rsplit("/", 1)[-1]], prompt, defs)
    for combined in ("anyOf", "oneOf", "allOf"):
        if combined in schema:
            return fill(schema[combined][0], prompt, defs)
    if "enum" in schema:
        return schema["enum"][0]
    kind = str(schema.get("type", "object")).lower()
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: fill(sub, prompt, defs) for name, sub in properties.items()}
    if kind == "array":
        return [fill(schema.get("items", {}), prompt, defs)]
    if kind == "integer":
        return len(subject_of(prompt)) % 5 + 1
    if kind == "number":
        return 0.5
    if kind == "boolean":
        return True
    return subject_of(prompt)


def _digest(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]


class FrameworkServer:
    """The stand-in model server, on 127.0.0.1; ``offline()`` stops it for a block."""

    def __init__(self) -> None:
        self.server = _LocalServer()
        self.requests: list[dict[str, Any]] = []
        self._install()
        self.server.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    @contextmanager
    def offline(self) -> Iterator[None]:
        self.server.clear()
        self.server.stop()
        try:
            yield
        finally:
            self.server = _LocalServer(self.server.port)
            self._install()
            self.server.start()

    def close(self) -> None:
        if self.server.is_running():
            self.server.clear()
            self.server.stop()

    def _install(self) -> None:
        self.server.expect_request(OPENAI_PATH, method="POST").respond_with_handler(self._openai)
        self.server.expect_request(GEMINI_PATH, method="POST").respond_with_handler(self._gemini)

    # -- OpenAI-compatible chat completions ------------------------------------------------

    def _openai(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {OPENAI_KEY}":
            return Response('{"error": {"message": "Incorrect API key"}}', status=401)
        body = json.loads(request.data)
        self.requests.append(body)
        prompt = _text_of([m for m in body["messages"] if m.get("role") == "user"][-1]["content"])
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        tools = body.get("tools") or []
        response_format = body.get("response_format") or {}
        if tools:
            function = tools[0]["function"]
            arguments = json.dumps(fill(function.get("parameters", {}), prompt))
            message["tool_calls"] = [
                {
                    "id": f"call_{_digest(body)}",
                    "type": "function",
                    "function": {"name": function["name"], "arguments": arguments},
                }
            ]
            finish = "tool_calls"
        elif response_format.get("type") == "json_schema":
            message["content"] = json.dumps(fill(response_format["json_schema"]["schema"], prompt))
            finish = "stop"
        else:
            message["content"] = f"A short note on {subject_of(prompt)}."
            finish = "stop"
        reply_id = f"chatcmpl-{_digest(body)}"
        usage = {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28}
        if body.get("stream"):
            return self._openai_stream(reply_id, body, message, finish, usage)
        completion = {
            "id": reply_id,
            "object": "chat.completion",
            "created": CREATED,
            "model": body.get("model", "gpt-4o-mini"),
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": usage,
        }
        return Response(json.dumps(completion), content_type="application/json")

    def _openai_stream(
        self,
        reply_id: str,
        body: dict[str, Any],
        message: dict[str, Any],
        finish: str,
        usage: dict[str, int],
    ) -> Response:
        base = {"id": reply_id, "object": "chat.completion.chunk", "created": CREATED}
        base["model"] = body.get("model", "gpt-4o-mini")

        def chunk(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}

        events = [chunk({"role": "assistant", "content": ""})]
        if message.get("tool_calls"):
            call = message["tool_calls"][0]
            events.append(chunk({"tool_calls": [{"index": 0, **call}]}))
        else:
            first, *rest = str(message["content"]).split(" ")
            events += [chunk({"content": word}) for word in [first, *(" " + w for w in rest)]]
        events.append(chunk({}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**base, "choices": [], "usage": usage})
        payload = _sse([*((None, event) for event in events), (None, "[DONE]")])
        return Response(payload, content_type="text/event-stream")

    # -- Gemini generateContent ------------------------------------------------------------

    def _gemini(self, request: Request) -> Response:
        if request.headers.get("x-goog-api-key") != GEMINI_KEY:
            return Response('{"error": {"code": 403, "message": "bad key"}}', status=403)
        body = json.loads(request.data)
        self.requests.append(body)
        prompt = _text_of(body["contents"][-1]["parts"])
        config = body.get("generationConfig") or {}
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        if schema is not None:
            text = json.dumps(fill(schema, prompt))
        else:
            text = f"A short note on {subject_of(prompt)}."
        usage = {"promptTokenCount": 20, "candidatesTokenCount": 8, "totalTokenCount": 28}

        def reply(part: str, finish: str | None) -> dict[str, Any]:
            candidate: dict[str, Any] = {"content": {"parts": [{"text": part}], "role": "model"}}
            candidate["index"] = 0
            if finish:
                candidate["finishReason"] = finish
            return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini"}

        if request.path.endswith(":streamGenerateContent"):
            half = len(text) // 2
            events = [(None, reply(text[:half], None)), (None, reply(text[half:], "STOP"))]
            return Response(_sse(events), content_type="text/event-stream")
        return Response(json.dumps(reply(text, "STOP")), content_type="application/json")
