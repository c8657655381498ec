"""Replay gives back the bytes that were recorded: JSON bodies and the JSON data of
server-sent events are stored parsed and readable, and written back exactly as the
server wrote them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from llm_fakes import Project
from pytest_httpserver import HTTPServer

from pytest_promptflow.cassette.conversion import live_response, vcr_response
from pytest_promptflow.cassette.format import RecordedResponse, SseEvent
from pytest_promptflow.cassette.layout import SEPARATORS, JsonLayout
from pytest_promptflow.cassette.scrub import Scrubber
from pytest_promptflow.cassette.sse import parse_events, serialize_events

COMPLETION = {
    "object": "chat.completion",
    "id": "chatcmpl-1",
    "model": "gpt-4o-mini",
    "created": 1718000000,
    "choices": [
        {
            "message": {"role": "assistant", "content": "Grüße, naïve café ☕"},
            "index": 0,
            "finish_reason": "stop",
        }
    ],
    "usage": {"total_tokens": 7, "prompt_tokens": 3, "completion_tokens": 4},
}
BODIES = {
    # Indented, non-ASCII escaped, a final newline: a layout writes it back.
    "pretty": json.dumps(COMPLETION, indent=2, ensure_ascii=True) + "\n",
    # Compact, non-ASCII as it is.
    "compact": json.dumps(COMPLETION, separators=(",", ":"), ensure_ascii=False),
    # Numbers JSON reads into other text, odd spacing, escaped and plain unicode mixed:
    # no layout writes it back, so it is stored as received too.
    "odd": (
        '{"object":"chat.completion" , "id":"chatcmpl-2","model":"gpt-4o-mini",'
        '"created":1718000000,"price":1.50,"weight":1e3,"offset":-0,'
        '"choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant",'
        '"content":"caf\\u00e9 and café \\/ slash"}}],'
        '"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}'
    ),
}
CHUNK = {"object": "chat.completion.chunk", "id": "c1", "model": "gpt-4o-mini", "created": 1}
STREAMS = {
    # JSON data in odd spacing, a marker: every event keeps its bytes.
    "events": (
        'data: {"choices": [{"delta": {"content": "Grü"}, "index": 0}], '
        + json.dumps(CHUNK)[1:]
        + "\n\n"
        + 'data: {"choices":[{"delta":{"content":"ße \\u2615"},"index":0}],'
        + json.dumps(CHUNK, separators=(",", ":"))[1:]
        + "\n\n"
        + 'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,'
        '"total_tokens":5,"cost":1.50},'
        + json.dumps(CHUNK, separators=(",", ":"))[1:]
        + "\n\n"
        + "data: [DONE]\n\n"
    ),
    # Framing the events do not hold: CRLF line ends, a comment, no space after "data:".
    "framing": (
        ": keep-alive\r\n\r\n"
        'data:{"choices":[{"delta":{"content":"Hi"},"index":0}],'
        + json.dumps(CHUNK, separators=(",", ":"))[1:]
        + "\r\n\r\n"
        + "data: [DONE]\r\n\r\n"
    ),
}

CLIENTS = """
import asyncio, hashlib
import aiohttp, httpx, openai, pytest, requests
from endpoint import OPENAI_KEY, save
from pytest_promptflow import step

URL = {url!r}


def sdk():
    return openai.OpenAI(base_url=URL + "/v1", api_key=OPENAI_KEY, max_retries=0)


def ask(name):
    return dict(model="gpt-4o-mini", messages=[{{"role": "user", "content": name}}])


@step
def openai_raw(name: str) -> str:
    raw = sdk().chat.completions.with_raw_response.create(**ask(name))
    assert raw.parse().choices[0].message.content
    return raw.http_response.text


@step
def openai_stream_text(name: str) -> str:
    with sdk().chat.completions.with_streaming_response.create(**ask(name), stream=True) as r:
        return "".join(r.iter_text())


@step
def openai_stream_parsed(name: str) -> str:
    chunks = sdk().chat.completions.create(**ask(name), stream=True)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@step
def httpx_hash(name: str) -> str:
    reply = httpx.post(URL + "/v1/chat/completions", json=ask(name))
    return hashlib.sha256(reply.content).hexdigest()


@step
def requests_text(name: str) -> str:
    reply = requests.post(URL + "/v1/chat/completions", json=ask(name), timeout=10)
    return reply.content.decode("utf-8")


@step
async def aiohttp_text(name: str) -> str:
    async with aiohttp.ClientSession() as session:
        async with session.post(URL + "/v1/chat/completions", json=ask(name)) as reply:
            return (await reply.read()).decode("utf-8")


@pytest.mark.promptflow
def test_bytes():
    results = {{}}
    for name in {bodies!r}:
        results[f"openai_raw/{{name}}"] = openai_raw(name)
        results[f"httpx_hash/{{name}}"] = httpx_hash(name)
        results[f"requests_text/{{name}}"] = requests_text(name)
        results[f"aiohttp_text/{{name}}"] = asyncio.run(aiohttp_text(name))
    for name in {streams!r}:
        results[f"openai_stream_text/{{name}}"] = openai_stream_text(name)
        results[f"httpx_hash/{{name}}"] = httpx_hash(name)
        results[f"requests_text/{{name}}"] = requests_text(name)
    results["openai_stream_parsed/events"] = openai_stream_parsed("events")
    save("bytes", results)
"""


def serve(httpserver: HTTPServer) -> None:
    def answer(request: Any) -> Any:
        from werkzeug import Response

        name = json.loads(request.data)["messages"][0]["content"]
        if name in STREAMS:
            return Response(STREAMS[name], content_type="text/event-stream")
        return Response(BODIES[name], content_type="application/json")

    httpserver.expect_request("/v1/chat/completions").respond_with_handler(answer)


def write_clients(project: Project, httpserver: HTTPServer) -> None:
    url = httpserver.url_for("").rstrip("/")
    project.write(CLIENTS.format(url=url, bodies=list(BODIES), streams=list(STREAMS)))


def expected_results() -> dict[str, str]:
    expected: dict[str, str] = {}
    for name, body in BODIES.items():
        expected[f"openai_raw/{name}"] = body
        expected[f"httpx_hash/{name}"] = hashlib.sha256(body.encode()).hexdigest()
        expected[f"requests_text/{name}"] = body
        expected[f"aiohttp_text/{name}"] = body
    for name, stream in STREAMS.items():
        expected[f"openai_stream_text/{name}"] = stream
        expected[f"httpx_hash/{name}"] = hashlib.sha256(stream.encode()).hexdigest()
        expected[f"requests_text/{name}"] = stream
    expected["openai_stream_parsed/events"] = "Grüße ☕"
    return expected


def test_every_client_replays_the_bytes_recorded_and_the_steps_do_not_drift(
    project: Project, httpserver: HTTPServer
) -> None:
    serve(httpserver)
    write_clients(project, httpserver)
    project.record().assert_outcomes(passed=1)
    assert project.results()["bytes"] == expected_results()
    recorded = project.files()

    httpserver.clear()
    httpserver.stop()
    try:
        project.run("--promptflow-report=report.json").assert_outcomes(passed=1)
        assert project.results()["bytes"] == expected_results()
    finally:
        httpserver.start()  # the server is shared by the session's later tests
    assert project.files() == recorded
    steps = json.loads((project.path / "report.json").read_text())["steps"]
    assert len(steps) == 6
    for name, tally in steps.items():
        # Every output compared with its golden value, and equal: not even a tolerated
        # change, which a text rule would allow for a reformatted body.
        assert tally["compared"] == tally["calls"] > 0, name
        assert (tally["tolerated"], tally["drift"]) == (0, {}), name

    serve(httpserver)
    project.record().assert_outcomes(passed=1)
    # The same request made by two clients got the same answer: identical exchanges,
    # whose latencies stay where they were.
    assert project.files() == recorded, "re-recording an unchanged server changes no byte"


def test_the_recorded_run_stays_readable(project: Project, httpserver: HTTPServer) -> None:
    serve(httpserver)
    write_clients(project, httpserver)
    project.record().assert_outcomes(passed=1)

    interactions = project.cassette("test_chain/test_bytes.json")["interactions"]
    responses = {
        i["request"]["body"]["messages"][0]["content"]: i["response"] for i in interactions
    }
    pretty, compact, odd = responses["pretty"], responses["compact"], responses["odd"]
    assert list(pretty["body"]) == list(COMPLETION), "the server's key order is kept"
    assert pretty["body_layout"] == "keys-spaced indent=2 ascii newline"
    assert compact["body_layout"] == "compact"
    assert "body_text" not in pretty
    assert "body_text" not in compact
    assert odd["body"]["price"] == 1.5, "parsed, to be read"
    assert odd["body_text"] == BODIES["odd"], "as received, to be replayed"
    events = responses["events"]["events"]
    assert events[0]["layout"] == "spaced"
    assert "layout" not in events[1], "compact is how events without a layout replay"
    assert '"cost":1.50},' in events[2]["text"], "as received, to be replayed"
    assert events[2]["data"]["usage"]["total_tokens"] == 5
    assert "body_text" not in responses["events"]
    assert responses["framing"]["body_text"] == STREAMS["framing"]
    assert responses["framing"]["events"][0]["data"]["choices"][0]["delta"] == {"content": "Hi"}


def test_a_body_recorded_by_an_older_version_replays_as_it_always_did() -> None:
    # Sorted keys, no layout: written back by json.dumps with ensure_ascii=False.
    stored = RecordedResponse(
        status=200,
        headers={"content-type": ["application/json"]},
        body={"a": {"b": "café"}, "z": 1.5},
        events=None,
    )
    assert vcr_response(stored)["body"]["string"] == '{"a": {"b": "café"}, "z": 1.5}'.encode()
    old_stream = RecordedResponse(
        status=200, events=[SseEvent(data={"a": 1, "b": "é"}), SseEvent(text="[DONE]")]
    )
    assert vcr_response(old_stream)["body"]["string"] == (
        'data: {"a":1,"b":"é"}\n\ndata: [DONE]\n\n'.encode()
    )


def test_a_redacted_body_replays_its_parsed_form_in_the_layout_it_was_sent_in() -> None:
    scrubber = Scrubber()
    scrubber.learn_value("sk-secret-value-0123456789")
    sent = '{"echo":"sk-secret-value-0123456789","n":1}'
    live = live_response(
        {
            "status": {"code": 200, "message": "OK"},
            "headers": {"Content-Type": ["application/json"]},
            "body": {"string": sent.encode()},
        }
    )
    stored = scrubber.response(*live)
    assert stored.body == {"echo": "<redacted>", "n": 1}
    assert vcr_response(stored)["body"]["string"] == b'{"echo":"<redacted>","n":1}'


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=12,
)
LAYOUTS = st.builds(
    JsonLayout,
    st.sampled_from(list(SEPARATORS.values())),
    st.sampled_from([None, 1, 2, 4, "\t"]),
    st.booleans(),
    st.booleans(),
)


@given(
    value=st.one_of(st.lists(JSON_VALUES, max_size=3), st.dictionaries(st.text(), JSON_VALUES)),
    layout=LAYOUTS,
)
def test_a_json_text_written_by_any_layout_is_written_back_exactly(
    value: Any, layout: JsonLayout
) -> None:
    text = layout.write(value)
    found = JsonLayout.of(text, json.loads(text))
    assert found is not None
    assert found.write(json.loads(text)) == text
    assert JsonLayout.parse(str(found)) == found


@pytest.mark.parametrize(
    "stored", ["", "tight", "spaced spaced", "indent=0", "indent=x compact", "compact indent=99"]
)
def test_a_layout_that_names_nothing_known_is_refused(stored: str) -> None:
    with pytest.raises(ValueError, match=r"layout|indentation"):
        JsonLayout.parse(stored)


@given(
    data=st.lists(st.dictionaries(st.text(max_size=4), JSON_VALUES, max_size=3), max_size=4),
    layout=LAYOUTS.filter(lambda layout: not layout.newline),
)
def test_a_stream_of_json_events_is_written_back_exactly(
    data: list[dict[str, Any]], layout: JsonLayout
) -> None:
    text = "".join("data: " + "\ndata: ".join(layout.write(d).split("\n")) + "\n\n" for d in data)
    assert serialize_events(parse_events(text)).decode() == text
