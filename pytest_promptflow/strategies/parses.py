"""``assert_parses_or_rejects``: a step given any reply returns a valid output or rejects it.

The step runs for real; its model requests get the reply in the OpenAI or Anthropic
wire format, streamed when asked for.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import threading
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any

from pytest_promptflow.errors import StepContractError
from pytest_promptflow.strategies.network import (
    NetworkBlock,
    NetworkBlockedError,
    blocked_in,
    intercepted,
)
from pytest_promptflow.strategies.replies import Reply
from pytest_promptflow.strategies.values import AnyStep
from pytest_promptflow.trace import Run, recording_run

OPENAI_PATH = "/chat/completions"
ANTHROPIC_PATH = "/messages"
CREATED = 1_700_000_000
PIECE = 8
"""Characters per streamed delta: small, so that a parser sees the reply in many parts."""


class _ModelReplies(NetworkBlock):
    """Answers every model request with one reply text, and refuses anything else."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.answered = 0

    def can_play(self, request: Any) -> bool:
        path = request.path.rstrip("/")
        if request.method.upper() == "POST" and path.endswith((OPENAI_PATH, ANTHROPIC_PATH)):
            return True
        raise self.block(
            request,
            "; only OpenAI chat completions and Anthropic messages requests are answered",
        )

    def play(self, request: Any) -> dict[str, Any]:
        self.answered += 1
        try:
            body = json.loads(request.body or b"{}")
        except (TypeError, ValueError):
            body = {}
        if not isinstance(body, dict):
            body = {}
        if request.path.rstrip("/").endswith(OPENAI_PATH):
            return _openai_response(self.text, body)
        return _anthropic_response(self.text, body)


def _pieces(text: str) -> list[str]:
    return [text[start : start + PIECE] for start in range(0, len(text), PIECE)]


def _vcr_json(body: Any) -> dict[str, Any]:
    return {
        "status": {"code": 200, "message": "OK"},
        "headers": {"content-type": ["application/json"]},
        "body": {"string": json.dumps(body).encode("utf-8")},
    }


def _vcr_events(events: Iterable[tuple[str | None, Any]]) -> dict[str, Any]:
    blocks = [
        (f"event: {name}\n" if name else "")
        + f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"
        for name, data in events
    ]
    return {
        "status": {"code": 200, "message": "OK"},
        "headers": {"content-type": ["text/event-stream; charset=utf-8"]},
        "body": {"string": "".join(blocks).encode("utf-8")},
    }


def _openai_response(text: str, request: Mapping[str, Any]) -> dict[str, Any]:
    model = request.get("model") or "gpt-4o-mini"
    count = request.get("n") or 1
    tokens = max(1, len(text.split()))
    usage = {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": 10 + tokens}
    base = {"id": "chatcmpl-promptflow", "created": CREATED, "model": model}
    if not request.get("stream"):
        message = {"role": "assistant", "content": text, "refusal": None}
        choices = [
            {"index": i, "message": message, "logprobs": None, "finish_reason": "stop"}
            for i in range(count)
        ]
        return _vcr_json({**base, "object": "chat.completion", "choices": choices, "usage": usage})

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choices = [
            {"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}
            for i in range(count)
        ]
        return {**base, "object": "chat.completion.chunk", "choices": choices}

    events: list[tuple[str | None, Any]] = [
        (None, chunk({"role": "assistant", "content": "", "refusal": None}))
    ]
    events += [(None, chunk({"content": piece})) for piece in _pieces(text)]
    events.append((None, chunk({}, "stop")))
    options = request.get("stream_options") or {}
    if isinstance(options, dict) and options.get("include_usage"):
        events.append(
            (None, {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        )
    events.append((None, "[DONE]"))
    return _vcr_events(events)


def _anthropic_response(text: str, request: Mapping[str, Any]) -> dict[str, Any]:
    usage = {"input_tokens": 10, "output_tokens": max(1, len(text.split()))}
    message = {
        "id": "msg_promptflow",
        "type": "message",
        "role": "assistant",
        "model": request.get("model") or "claude-haiku-4-5",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }
    if not request.get("stream"):
        return _vcr_json(message)
    started = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {**usage, "output_tokens": 1},
    }
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"message": started}),
        ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        ("ping", {}),
    ]
    events += [
        ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
        for piece in _pieces(text)
    ]
    events += [
        ("content_block_stop", {"index": 0}),
        (
            "message_delta",
            {
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        ),
        ("message_stop", {}),
    ]
    return _vcr_events((name, {"type": name, **data}) for name, data in events)


def _finish(result: object) -> object:
    """The result of a step call, awaited when the step is async."""
    if not inspect.isawaitable(result):
        return result
    awaitable: Awaitable[object] = result

    async def wait() -> object:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wait())
    # Called from async code: the step runs on its own loop, in a thread of its own.
    context = contextvars.copy_context()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = context.run(asyncio.run, wait())
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=target, name="promptflow-async-step")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


def _shown(text: str, limit: int = 400) -> str:
    shown = repr(text[:limit])
    return shown + (f" ... ({len(text) - limit} more characters)" if len(text) > limit else "")


def assert_parses_or_rejects(step: AnyStep, reply: Reply | str, /, **arguments: Any) -> object:
    """Run the real ``step`` with ``arguments``, every model request answered with ``reply``.

    OpenAI chat completions and Anthropic messages requests get the reply in their
    wire format (streamed when the request asks for it); any other request fails with
    ``NetworkBlockedError``. The property holds when the step returns a valid output
    or raises ``StepContractError``; any other exception, such as a parser's
    ``KeyError``, fails it with an ``AssertionError``. Returns the step's output, or
    None when the step rejected the reply.
    """
    text, shape = (reply.text, reply.shape) if isinstance(reply, Reply) else (reply, "given")
    replies_ = _ModelReplies(text)
    what = f"the {shape} reply {_shown(text)}"
    with (
        intercepted(replies_),
        recording_run(Run(test_id=f"assert_parses_or_rejects:{step.name}")),
    ):
        output: object = None
        try:
            output = _finish(step(**arguments))
        except StepContractError as error:
            if error.boundary == "input":
                raise AssertionError(
                    f"the arguments given to step {step.name!r} break its input contract, so "
                    f"no reply was tried; pass valid inputs, e.g. from inputs(step):\n{error}"
                ) from error
        except Exception as error:
            blocked = blocked_in(error)
            if blocked is not None:
                raise NetworkBlockedError(str(blocked)) from error
            raise AssertionError(
                f"step {step.name!r} raised {type(error).__name__}: {error} on {what}; "
                "given any reply, a step must return a valid output or raise "
                "StepContractError (let pydantic parse the reply, e.g. with "
                "model_validate_json, or turn the parser's error into a ValidationError)"
            ) from error
    if replies_.blocked:
        raise NetworkBlockedError(replies_.blocked[0])
    if not replies_.answered:
        raise AssertionError(
            f"step {step.name!r} made no model request that could be answered, so "
            f"{what} was never parsed; its client must send OpenAI chat completions or "
            "Anthropic messages requests through httpx, requests or aiohttp"
        )
    return output
