"""A local fake of the OpenAI and Anthropic APIs, generated projects that use it, and the
report merge command run in them."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

# Canary credentials: sent to the local fake model on every call, and never allowed
# to reach a file. Each contains its bare token, which is searched for on its own too.
OPENAI_KEY = "sk-canary-0123456789abcdefABCDEF"
ANTHROPIC_KEY = "sk-ant-canary-0123456789abcdefGHIJKL"
CANARY_TOKENS = (
    OPENAI_KEY,
    ANTHROPIC_KEY,
    "0123456789abcdefABCDEF",
    "0123456789abcdefGHIJKL",
)

OPENAI_PATH = "/v1/chat/completions"
FILES_PATH = "/v1/files"
ANTHROPIC_PATH = "/v1/messages"
OPENAI_MODEL = "gpt-4o-mini-2024-07-18"
ANTHROPIC_MODEL = "claude-haiku-4-5-20251001"
CREATED = 1_718_000_000


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    content = [m for m in messages if m.get("role") == "user"][-1]["content"]
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content)
    return str(content)


def _sse(events: list[tuple[str | None, Any]]) -> bytes:
    """A text/event-stream body; ``data`` that is not a string is sent as JSON."""
    blocks = [
        (f"event: {name}\n" if name else "")
        + f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"
        for name, data in events
    ]
    return "".join(blocks).encode("utf-8")


def _words(text: str) -> list[str]:
    """``text`` in streamed deltas, a word each; joined, they give ``text`` back."""
    first, *rest = text.split(" ")
    return [first, *(" " + word for word in rest)]


def openai_completion(reply_id: str, text: str, usage: dict[str, int]) -> dict[str, Any]:
    message = {"role": "assistant", "content": text, "refusal": None}
    return {
        "id": reply_id,
        "object": "chat.completion",
        "created": CREATED,
        "model": OPENAI_MODEL,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": usage,
        "system_fingerprint": "fp_canary",
    }


def openai_stream(reply_id: str, text: str, usage: dict[str, int] | None) -> bytes:
    """chat.completion.chunk events, a usage chunk when asked for, then [DONE]."""
    chunk = {"id": reply_id, "object": "chat.completion.chunk", "created": CREATED}
    chunk |= {"model": OPENAI_MODEL, "system_fingerprint": "fp_canary"}

    def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    events = [choice({"role": "assistant", "content": "", "refusal": None})]
    events += [choice({"content": word}) for word in _words(text)]
    events.append(choice({}, "stop"))
    if usage is not None:
        events.append({**chunk, "choices": [], "usage": usage})
    return _sse([*((None, event) for event in events), (None, "[DONE]")])


def anthropic_message(reply_id: str, text: str) -> dict[str, Any]:
    return {
        "id": reply_id,
        "type": "message",
        "role": "assistant",
        "model": ANTHROPIC_MODEL,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 17, "output_tokens": len(text.split())},
    }


def anthropic_stream(reply_id: str, text: str) -> bytes:
    """The named events of a streamed message, message_start to message_stop."""
    message = anthropic_message(reply_id, text)
    started = {**message, "content": [], "stop_reason": None}
    block = {"type": "text", "text": ""}
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "message_start",
            {"message": started | {"usage": {"input_tokens": 17, "output_tokens": 1}}},
        ),
        ("content_block_start", {"index": 0, "content_block": block}),
        ("ping", {}),
    ]
    events += [
        ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": word}})
        for word in _words(text)
    ]
    events += [
        ("content_block_stop", {"index": 0}),
        ("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": message["usage"]}),
        ("message_stop", {}),
    ]
    return _sse([(name, {"type": name, **data}) for name, data in events])


class _LocalServer(HTTPServer):
    """pytest-httpserver's server, polling for shutdown often so that stopping is quick."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(host="127.0.0.1", port=port)

    def thread_target(self) -> None:
        assert self.server is not None
        self.server.serve_forever(poll_interval=0.02)


def _unauthorized() -> Response:
    return Response('{"error": {"message": "Incorrect API key provided"}}', status=401)


LocalAPIType = TypeVar("LocalAPIType", bound="LocalAPI")


class LocalAPI:
    """A stand-in API on 127.0.0.1, listening from when it is made until ``close()`` (or
    the end of its ``with`` block). A subclass sets its state, then calls this
    ``__init__``, and registers its handlers in ``_install``."""

    def __init__(self) -> None:
        self.server = _LocalServer()
        self._install()
        self.server.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    @contextmanager
    def offline(self) -> Iterator[None]:
        """Stop the server for the block, so that anything not replayed fails to connect."""
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

    def __enter__(self: LocalAPIType) -> LocalAPIType:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _install(self) -> None:
        raise NotImplementedError


class FakeLLM(LocalAPI):
    """A local server that answers like the OpenAI and Anthropic APIs, JSON or streamed.

    The answer to a request is a pure function of its body and of how many identical
    requests came before it since the last ``reset()``: "answer 1", "answer 2"...
    unless ``answers`` scripts the reply to its last user message. Requests without the
    canary credential get a 401, as from the real APIs.
    """

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.requests: list[dict[str, Any]] = []
        self.compress = False
        self.extra_reply = ""
        self.answers: dict[str, str] = {}
        """Scripted reply texts, by the exact text of the request's last user message."""
        self.sequences: dict[str, list[str]] = {}
        """Scripted replies that change from one identical request to the next (as a model
        sampled several times does): the n-th gets the n-th, round and round."""
        super().__init__()

    def reset(self) -> None:
        self.seen.clear()
        self.requests.clear()

    def _install(self) -> None:
        for path, handler in [
            (OPENAI_PATH, self._openai),
            (ANTHROPIC_PATH, self._anthropic),
            (FILES_PATH, self._upload),
        ]:
            self.server.expect_request(path, method="POST").respond_with_handler(handler)

    def _answer(self, request: Request) -> tuple[dict[str, Any], str, str]:
        body = json.loads(request.data)
        self.requests.append(body)
        canonical = json.dumps(body, sort_keys=True)
        self.seen[canonical] += 1
        digest = hashlib.sha256(f"{canonical}{self.seen[canonical]}".encode()).hexdigest()[:12]
        prompt = _last_user_text(body["messages"])
        sequence = self.sequences.get(prompt)
        if sequence:
            text = sequence[(self.seen[canonical] - 1) % len(sequence)]
        else:
            text = self.answers.get(prompt, f"reply to {prompt!r}, answer {self.seen[canonical]}")
        return body, text + self.extra_reply, digest

    def _respond(self, payload: bytes, content_type: str, headers: dict[str, str]) -> Response:
        response = Response(payload, status=200, content_type=content_type, headers=headers)
        if self.compress:
            response.set_data(gzip.compress(payload))
            response.headers["Content-Encoding"] = "gzip"
        return response

    def _openai(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {OPENAI_KEY}":
            return _unauthorized()
        body, text, digest = self._answer(request)
        headers = {
            "x-request-id": f"req_{digest}",
            "openai-organization": "org-canaryorganization",
            "openai-processing-ms": "412",
            "set-cookie": "__cf_bm=canarycookievalue0123456789; path=/; HttpOnly",
        }
        reply_id = f"chatcmpl-{digest}"
        usage = {"prompt_tokens": 21, "completion_tokens": len(text.split()), "total_tokens": 40}
        if not body.get("stream"):
            completion = openai_completion(reply_id, text, usage)
            return self._respond(json.dumps(completion).encode(), "application/json", headers)
        with_usage = body.get("stream_options", {}).get("include_usage")
        stream = openai_stream(reply_id, text, usage if with_usage else None)
        return self._respond(stream, "text/event-stream", headers)

    def _anthropic(self, request: Request) -> Response:
        credentials = {request.headers.get("x-api-key"), request.headers.get("Authorization")}
        if not credentials & {ANTHROPIC_KEY, f"Bearer {ANTHROPIC_KEY}"}:
            return _unauthorized()
        body, text, digest = self._answer(request)
        headers = {"request-id": f"req_{digest}", "anthropic-organization-id": "canary-org"}
        if not body.get("stream"):
            message = anthropic_message(f"msg_{digest}", text)
            return self._respond(json.dumps(message).encode(), "application/json", headers)
        return self._respond(anthropic_stream(f"msg_{digest}", text), "text/event-stream", headers)

    def _upload(self, request: Request) -> Response:
        """Files API: a multipart form, or the raw bytes with the form fields in the query."""
        if request.headers.get("Authorization") != f"Bearer {OPENAI_KEY}":
            return _unauthorized()
        if request.files:
            form, filename = request.form, request.files["file"].filename
            content = request.files["file"].read()
        else:
            form, filename, content = request.args, request.args["filename"], request.get_data()
        self.requests.append({"purpose": form["purpose"], "filename": filename})
        uploaded = {
            "id": f"file-{hashlib.sha256(content).hexdigest()[:24]}",
            "object": "file",
            "bytes": len(content),
            "created_at": CREATED,
            "filename": filename,
            "purpose": form["purpose"],
            "status": "processed",
        }
        return self._respond(json.dumps(uploaded).encode(), "application/json", {})


ENDPOINT_MODULE = '''
"""Where the fake model listens, the canary keys, and a place to put results."""
import json
import pathlib

BASE_URL = {url!r}
OPENAI_KEY = {openai_key!r}
ANTHROPIC_KEY = {anthropic_key!r}
RESULTS = pathlib.Path(__file__).parent / "results"


def save(name, value):
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{{name}}.json").write_text(json.dumps(value, sort_keys=True))


def openai_client(asynchronous=False, **options):
    import openai

    client = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    return client(base_url=BASE_URL + "/v1", api_key=OPENAI_KEY, max_retries=0, **options)


def anthropic_client(asynchronous=False, **options):
    import anthropic

    client = anthropic.AsyncAnthropic if asynchronous else anthropic.Anthropic
    return client(base_url=BASE_URL, api_key=ANTHROPIC_KEY, max_retries=0, **options)
'''


class Project:
    """A generated user project that talks to the fake model through ``endpoint.py``."""

    def __init__(self, pytester: pytest.Pytester, llm: FakeLLM) -> None:
        self.pytester = pytester
        self.llm = llm
        self.path = pytester.path
        self.cassettes = pytester.path / "cassettes"
        pytester.makepyfile(
            endpoint=ENDPOINT_MODULE.format(
                url=llm.url, openai_key=OPENAI_KEY, anthropic_key=ANTHROPIC_KEY
            )
        )

    def write(self, source: str, name: str = "test_chain") -> Path:
        return self.pytester.makepyfile(**{name: textwrap.dedent(source)})

    def run(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest("-p", "no:cacheprovider", *args)

    def record(self, *args: str, mode: str = "all") -> pytest.RunResult:
        return self.run(f"--promptflow-record={mode}", *args)

    def files(self) -> dict[str, bytes]:
        """Every file under the cassette folder, by relative path, as bytes."""
        return {
            path.relative_to(self.cassettes).as_posix(): path.read_bytes()
            for path in sorted(self.cassettes.rglob("*"))
            if path.is_file()
        }

    def cassette(self, relative: str) -> dict[str, Any]:
        """The recorded run at ``relative`` (to the cassette folder), parsed."""
        return json.loads((self.cassettes / relative).read_text(encoding="utf-8"))

    def results(self) -> dict[str, Any]:
        """What the generated tests passed to ``save``, by name; reading clears it."""
        folder = self.path / "results"
        found = {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
        for path in folder.glob("*.json"):
            path.unlink()
        return found

    def assert_no_canary(self) -> None:
        files = self.files()
        assert files, "nothing was recorded"
        for name, content in files.items():
            for token in CANARY_TOKENS:
                assert token.encode() not in content, f"{token} leaked into {name}"


def run_merge_command(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m pytest_promptflow.report merge <arguments>`` run in ``cwd``, as a user
    runs it; it never raises on the exit status."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_promptflow.report", "merge", *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
