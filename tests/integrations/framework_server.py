"""A local stand-in for the model APIs the frameworks call: OpenAI-compatible chat
completions (text, JSON schema answers, tool calls, streamed or not), the OpenAI
Responses API (text and JSON schema answers, streamed or not) and Gemini's
generateContent. Answers are a pure function of the request, so re-recording is stable.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from llm_fakes import CREATED, OPENAI_KEY, LocalAPI, _sse
from werkzeug import Request, Response

GEMINI_KEY = "AIzaSy-canary-0123456789abcdefABCDEF"
OPENAI_PATH = "/v1/chat/completions"
RESPONSES_PATH = "/v1/responses"
GEMINI_PATH = re.compile(r"^/v1(?:beta)?/models/[^/:]+:(generateContent|streamGenerateContent)$")


def _text_of(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def subject_of(prompt: str) -> str:
    """The last word of the prompt: what the fake model says the text is about."""
    words = re.findall(r"[A-Za-z]+", prompt)
    return words[-1].lower() if words else "nothing"


def note_on(prompt: str) -> str:
    """The fake model's text answer: a note on the prompt's subject."""
    return f"A short note on {subject_of(prompt)}."


def fill(
    schema: dict[str, Any],
    prompt: str,
    defs: dict[str, Any] | None = None,
    name: str | None = None,
) -> Any:
    """A value valid for a (simple) JSON schema, derived from the prompt: strings are the
    prompt's subject, except a property named ``text``, which holds the text answer."""
    defs = {**(defs or {}), **schema.get("$defs", {}), **schema.get("definitions", {})}
    if "$ref" in schema:
        return fill(defs[schema["$ref"].rsplit("/", 1)[-1]], prompt, defs, name)
    for combined in ("anyOf", "oneOf", "allOf"):
        if combined in schema:
            return fill(schema[combined][0], prompt, defs, name)
    if "enum" in schema:
        return schema["enum"][0]
    kind = str(schema.get("type", "object")).lower()
    if kind == "object":
        properties = schema.get("properties", {})
        return {key: fill(sub, prompt, defs, key) for key, sub in properties.items()}
    if kind == "array":
        return [fill(schema.get("items", {}), prompt, defs)]
    if kind == "integer":
        return len(subject_of(prompt)) % 5 + 1
    if kind == "number":
        return 0.5
    if kind == "boolean":
        return True
    return note_on(prompt) if name == "text" else subject_of(prompt)


def responses_prompt(given: Any) -> str:
    """The text of a Responses request's last user input (a string, or a list of items)."""
    if not isinstance(given, list):
        return str(given or "")
    users = [item for item in given if isinstance(item, dict) and item.get("role") == "user"]
    return _text_of(users[-1].get("content")) if users else ""


def responses_usage(prompt: str, text: str) -> dict[str, Any]:
    """The usage of a Responses answer: a token per word of the prompt and of the answer,
    so that each step's figures differ and can be checked."""
    inputs, outputs = len(prompt.split()), len(text.split())
    return {
        "input_tokens": inputs,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": outputs,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": inputs + outputs,
    }


def responses_events(completed: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of a streamed Responses answer, numbered, in the order the API sends
    them: its text a word a delta; only the last event, ``response.completed``, has usage."""
    message = completed["output"][0]
    part = message["content"][0]
    started = {**completed, "status": "in_progress", "completed_at": None}
    started |= {"output": [], "usage": None}
    where = {"item_id": message["id"], "output_index": 0, "content_index": 0}
    first, *rest = part["text"].split(" ")
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**message, "status": "in_progress", "content": []},
        },
        {"type": "response.content_part.added", **where, "part": {**part, "text": ""}},
        *(
            {"type": "response.output_text.delta", **where, "delta": word, "logprobs": []}
            for word in [first, *(" " + word for word in rest)]
        ),
        {"type": "response.output_text.done", **where, "text": part["text"], "logprobs": []},
        {"type": "response.content_part.done", **where, "part": part},
        {"type": "response.output_item.done", "output_index": 0, "item": message},
        {"type": "response.completed", "response": completed},
    ]
    return [{**event, "sequence_number": number} for number, event in enumerate(events)]


def _digest(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]


class FrameworkServer(LocalAPI):
    """The stand-in model server, on 127.0.0.1; ``offline()`` stops it for a block."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        super().__init__()

    def _install(self) -> None:
        self.server.expect_request(OPENAI_PATH, method="POST").respond_with_handler(self._openai)
        self.server.expect_request(RESPONSES_PATH, method="POST").respond_with_handler(
            self._responses
        )
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
            message["content"] = note_on(prompt)
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
            # As the API streams a call: its name first, then its arguments in pieces.
            call = message["tool_calls"][0]
            arguments = call["function"]["arguments"]
            named = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
            events.append(chunk({"tool_calls": [{"index": 0, **named}]}))
            events += [
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                for piece in (arguments[i : i + 8] for i in range(0, len(arguments), 8))
            ]
        else:
            first, *rest = str(message["content"]).split(" ")
            events += [chunk({"content": word}) for word in [first, *(" " + w for w in rest)]]
        events.append(chunk({}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**base, "choices": [], "usage": usage})
        payload = _sse([*((None, event) for event in events), (None, "[DONE]")])
        return Response(payload, content_type="text/event-stream")

    # -- OpenAI Responses ------------------------------------------------------------------

    def _responses(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {OPENAI_KEY}":
            return Response('{"error": {"message": "Incorrect API key"}}', status=401)
        body = json.loads(request.data)
        self.requests.append(body)
        prompt = responses_prompt(body.get("input"))
        text_format = (body.get("text") or {}).get("format") or {"type": "text"}
        if text_format.get("type") == "json_schema":
            text = json.dumps(fill(text_format["schema"], prompt))
        else:
            text = note_on(prompt)
        digest = _digest(body)
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        message = {"id": f"msg_{digest}", "type": "message", "role": "assistant"}
        message |= {"status": "completed", "content": [part]}
        completed = {
            "id": f"resp_{digest}",
            "object": "response",
            "created_at": CREATED,
            "completed_at": CREATED + 1,
            "status": "completed",
            "model": body.get("model", "gpt-4o-mini"),
            "output": [message],
            "usage": responses_usage(prompt, text),
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "metadata": {},
            "parallel_tool_calls": True,
            "temperature": 1.0,
            "top_p": 1.0,
            "tool_choice": "auto",
            "tools": [],
            "text": {"format": text_format},
        }
        if not body.get("stream"):
            return Response(json.dumps(completed), content_type="application/json")
        payload = _sse([(event["type"], event) for event in responses_events(completed)])
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
        text = json.dumps(fill(schema, prompt)) if schema is not None else note_on(prompt)
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
