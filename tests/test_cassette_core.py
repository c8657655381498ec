"""The pure pieces under the cassette layer: request keys, SSE events, file names, the format."""

from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optional_packages import require

from pytest_promptflow import CassetteError
from pytest_promptflow.cassette.conversion import parse_body, request_header_pairs
from pytest_promptflow.cassette.format import (
    Interaction,
    RecordedRequest,
    RecordedResponse,
    RecordedRun,
    SseEvent,
    recorded_run_path,
    response_fingerprint,
    serialize_recorded_run,
    write_atomically,
)
from pytest_promptflow.cassette.interception import HttpInterception, httpx_vcr_request
from pytest_promptflow.cassette.matching import RecordingIndex, canonical_request_key
from pytest_promptflow.cassette.modes import IGNORED_BODY_FIELDS
from pytest_promptflow.cassette.reading import read_recorded_run
from pytest_promptflow.cassette.sse import parse_events, serialize_events

URL = "https://api.openai.com/v1/chat/completions"
BODY = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    "response_format": {"type": "json_schema", "json_schema": {"name": "a", "strict": True}},
}


def key(
    body: object = BODY,
    url: str = URL,
    method: str = "POST",
    ignored_fields: tuple[str, ...] = IGNORED_BODY_FIELDS,
) -> str:
    return canonical_request_key(method, url, body, None, ignored_fields)


# -- the fingerprint of a recorded answer -------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


def fingerprint_as_recorded(response: RecordedResponse) -> str:
    """How every earlier version named an answer: pydantic's dump, in canonical JSON."""
    document = response.model_dump(mode="json", exclude_none=True)
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


@settings(max_examples=300, deadline=None)
@given(
    body=JSON_VALUES,
    text=st.none() | st.text(),
    events=st.none() | st.lists(st.builds(SseEvent, data=JSON_VALUES, text=st.none() | st.text())),
)
def test_an_answer_keeps_the_fingerprint_it_was_recorded_under(
    body: Any, text: str | None, events: list[SseEvent] | None
) -> None:
    response = RecordedResponse(
        status=200,
        headers={"content-type": ["application/json"]},
        body=body,
        body_text=text,
        events=events,
    )
    assert response_fingerprint(response) == fingerprint_as_recorded(response)


# -- vcrpy's request for an httpx request ------------------------------------------------


@pytest.mark.parametrize("module_name", ["httpx", "httpx2"])
def test_the_lean_httpx_conversion_gives_vcrpy_the_request_its_own_conversion_gives(
    module_name: str,
) -> None:
    httpx = require(module_name)
    from vcr.stubs import httpx_stubs

    request = httpx.Request(
        "POST",
        "https://api.example.com/v1/chat?b=2&a=1",
        headers=[
            ("Authorization", "Bearer sk-canary"),
            ("X-Trace", "one"),
            ("x-trace", "two"),
            ("Content-Type", "application/json"),
        ],
        content=b'{"model": "m"}',
    )
    body = request.read()

    theirs = httpx_stubs._make_vcr_request(request, body)
    ours = httpx_vcr_request(request, body)

    assert list(ours.headers.items()) == list(theirs.headers.items())
    assert ours.headers["X-TRACE"] == theirs.headers["x-trace"] == "one, two"
    assert (ours.method, ours.uri, ours.body) == (theirs.method, theirs.uri, theirs.body)
    assert request_header_pairs(ours) == request_header_pairs(theirs)


class _NoAnswer:
    def can_play(self, request: Any) -> bool:
        return False

    def play(self, request: Any) -> dict[str, Any]:
        raise AssertionError("nothing is played here")

    def record(self, request: Any, response: dict[str, Any]) -> None:
        raise AssertionError("nothing is recorded here")


def test_the_lean_conversion_lasts_as_long_as_the_patches() -> None:
    # Through sys.modules, as vcrpy's patching imports it: pytester's in-process runs
    # drop the modules they imported, so an attribute of the package may be stale.
    httpx_stubs = importlib.import_module("vcr.stubs.httpx_stubs")
    before = httpx_stubs._make_vcr_request  # vcrpy's own, or an open session's patch
    interception = HttpInterception()
    interception.attach(_NoAnswer())
    try:
        assert httpx_stubs._make_vcr_request is httpx_vcr_request
    finally:
        interception.close()
    assert httpx_stubs._make_vcr_request is before


# -- canonical request keys ---------------------------------------------------------------


def reordered(value: object) -> object:
    if isinstance(value, dict):
        return {k: reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reordered(item) for item in value]
    return value


def test_key_order_at_any_depth_does_not_change_the_key() -> None:
    assert reordered(BODY) == BODY
    assert json.dumps(reordered(BODY)) != json.dumps(BODY)
    assert key(reordered(BODY)) == key(BODY)


def test_ignored_fields_are_ignored_only_at_the_top_level() -> None:
    noisy = {**BODY, "user": "u-1", "metadata": {"run": 7}, "store": True}
    assert key(noisy) == key(BODY)
    assert key({**BODY, "safety_identifier": "x", "prompt_cache_key": "y"}) == key(BODY)

    nested = {**BODY, "messages": [{"role": "user", "content": "Hi", "user": "u-1"}]}
    assert key(nested) != key({**BODY, "messages": [{"role": "user", "content": "Hi"}]})


def test_the_ignored_fields_can_be_chosen() -> None:
    assert key({**BODY, "temperature": 0}) != key({**BODY, "temperature": 1})
    only_temperature = ("temperature",)
    assert key({**BODY, "temperature": 0}, ignored_fields=only_temperature) == key(
        {**BODY, "temperature": 1}, ignored_fields=only_temperature
    )
    assert key({**BODY, "user": "a"}, ignored_fields=only_temperature) != key(
        {**BODY, "user": "b"}, ignored_fields=only_temperature
    )


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ({"url": URL + "?a=1&b=2"}, {"url": URL + "?b=2&a=1"}),
        ({"url": URL}, {"url": "https://API.OpenAI.com/v1/chat/completions"}),
        ({"method": "post"}, {"method": "POST"}),
    ],
    ids=["query-order", "host-case", "method-case"],
)
def test_equivalent_requests_share_a_key(one: dict[str, str], other: dict[str, str]) -> None:
    assert key(**one) == key(**other)


@pytest.mark.parametrize(
    "other",
    [
        {"url": "https://api.openai.com/v1/completions"},
        {"url": "https://example.openai.azure.com/v1/chat/completions"},
        {"url": "https://api.openai.com:8443/v1/chat/completions"},
        {"url": URL + "?api-version=2024-06-01"},
        {"method": "PUT"},
        {"body": {**BODY, "model": "gpt-4o"}},
        {"body": {**BODY, "messages": list(reversed(BODY["messages"]))}},
        {"body": None},
    ],
    ids=["path", "host", "port", "query", "method", "model", "message-order", "no-body"],
)
def test_requests_that_could_get_another_answer_get_another_key(other: dict[str, Any]) -> None:
    assert key(**other) != key()


def test_a_text_body_is_part_of_the_key() -> None:
    assert canonical_request_key("POST", URL, None, "a=1") != canonical_request_key(
        "POST", URL, None, "a=2"
    )
    assert parse_body(b'{"b": 1}') == ({"b": 1}, None, None)
    assert parse_body(b"a=1") == (None, "a=1", None)
    assert parse_body(b"\xff\x00") == (None, None, "/wA=")
    assert parse_body(b"") == (None, None, None)


def test_the_index_hands_out_recordings_of_a_key_in_order() -> None:
    index = RecordingIndex(["a", "b", "a", "a"])

    assert index.peek("a") == 0
    assert index.peek("a") == 0, "peeking takes nothing"
    assert [index.take("a"), index.take("a"), index.take("a")] == [0, 2, 3]
    assert index.peek("a") is None
    assert index.peek("c") is None
    assert index.used == {0, 2, 3}


# -- server-sent events -----------------------------------------------------------------

OPENAI_STREAM = (
    'data: {"choices":[{"delta":{"content":"Hel"},"index":0}],"id":"c1"}\n\n'
    'data: {"choices":[{"delta":{"content":"lo"},"index":0}],"id":"c1"}\n\n'
    "data: [DONE]\n\n"
)
ANTHROPIC_STREAM = (
    "event: message_start\r\n"
    'data: {"type":"message_start","message":{"id":"m1","content":[]}}\r\n\r\n'
    ": keep-alive comment\r\n\r\n"
    'event: ping\r\ndata: {"type": "ping"}\r\n\r\n'
    "event: content_block_delta\r\n"
    'data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"Hi"}}\r\n\r\n'
    'event: message_stop\r\ndata: {"type":"message_stop"}\r\n\r\n'
)


def test_an_openai_stream_parses_into_json_events_and_a_done_marker() -> None:
    events = parse_events(OPENAI_STREAM)

    assert [e.data["choices"][0]["delta"]["content"] for e in events[:2]] == ["Hel", "lo"]
    assert events[2] == SseEvent(text="[DONE]")
    assert serialize_events(events).decode() == OPENAI_STREAM


def test_an_anthropic_stream_keeps_event_names_and_drops_comments() -> None:
    events = parse_events(ANTHROPIC_STREAM)

    assert [e.event for e in events] == [
        "message_start",
        "ping",
        "content_block_delta",
        "message_stop",
    ]
    assert events[2].data == {
        "type": "content_block_delta",
        "delta": {"type": "text_delta", "text": "Hi"},
    }
    assert parse_events(serialize_events(events).decode()) == events


def test_ids_and_multi_line_text_data_survive_a_round_trip() -> None:
    text = "id: 7\nevent: note\ndata: first line\ndata: second line\n\ndata:no-space\n\n"
    events = parse_events(text)

    assert events == [
        SseEvent(id="7", event="note", text="first line\nsecond line"),
        SseEvent(text="no-space"),
    ]
    assert parse_events(serialize_events(events).decode()) == events


@pytest.mark.parametrize("data", ["null", '""', "0", "false", "[]"])
def test_every_json_data_value_survives_a_round_trip(data: str) -> None:
    events = parse_events(f"event: value\ndata: {data}\n\n")

    replayed = serialize_events(events).decode()

    assert replayed == f"event: value\ndata: {data}\n\n"


# -- file names -------------------------------------------------------------------------


def test_a_recorded_run_path_follows_module_test_and_case() -> None:
    root = Path("/repo/cassettes")

    assert recorded_run_path(root, Path("tests/chains/test_triage.py"), "test_all", None) == (
        root / "tests/chains/test_triage/test_all.json"
    )
    assert recorded_run_path(root, Path("tests/test_triage.py"), "test_one", "t-1001") == (
        root / "tests/test_triage/test_one/t-1001.json"
    )
    # Upper case gets a hash, since T-1001 and t-1001 are one file on macOS and Windows.
    assert recorded_run_path(root, Path("tests/test_triage.py"), "test_one", "T-1001") == (
        root / "tests/test_triage/test_one/T-1001-cb216f.json"
    )
    assert recorded_run_path(root, Path("test_t.py"), "TestSteps.test_one", "v1.2") == (
        root / "test_t/TestSteps.test_one/v1.2.json"
    )


def test_ids_that_differ_only_in_unsafe_characters_get_different_files() -> None:
    ids = ["a/b", "a b", "a:b", "a_b", "a?b", "a\\b", "../a_b", "a__b", "é", "ü"]
    names = [recorded_run_path(Path("c"), Path("test_x.py"), "test", i).name for i in ids]

    assert len(set(names)) == len(ids)
    for name in names:
        assert name.endswith(".json")
        assert "/" not in name
        assert "\\" not in name
        assert not name.startswith(".")
    assert names[3] == "a_b.json", "a safe id is used as it is"


def test_a_long_parameter_id_still_makes_a_writable_file_name(tmp_path: Path) -> None:
    # pytest joins the ids of several parameters with "-", each up to 100 characters.
    parameter_id = "-".join(
        [
            "You are a careful support engineer who answers in one short paragraph and cites docs",
            "How do I rotate the API keys of a workspace without downtime for services using them",
            "Create a second key, switch the services over to it, then revoke the first key after.",
        ]
    )
    path = recorded_run_path(tmp_path, Path("test_prompts.py"), "test_answer", parameter_id)

    write_atomically(path, "{}\n")

    assert path.read_text() == "{}\n"
    other = recorded_run_path(tmp_path, Path("test_prompts.py"), "test_answer", parameter_id + "!")
    assert other != path


# -- the format -------------------------------------------------------------------------


def test_a_recorded_run_reads_back_as_it_was_written(tmp_path: Path) -> None:
    run = RecordedRun(
        test="test_x.py::test_y[c1]",
        case="c1",
        interactions=[
            Interaction(
                step="classify",
                prompts={"classify": "0123456789ab"},
                request=RecordedRequest(
                    method="POST",
                    url=URL,
                    headers={"content-type": ["application/json"]},
                    body=BODY,
                ),
                response=RecordedResponse(
                    status=200, events=[SseEvent(event="message_stop", data={"type": "x"})]
                ),
            )
        ],
    )
    path = tmp_path / "run.json"
    write_atomically(path, serialize_recorded_run(run))

    read_back = read_recorded_run(path)
    assert read_back == run
    assert serialize_recorded_run(read_back) == path.read_text()
    assert read_recorded_run(tmp_path / "missing.json") is None


def test_an_unreadable_cassette_is_a_cassette_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_bytes(b"\xff\xfe{}")

    with pytest.raises(CassetteError, match=f"cassette {path} cannot be read"):
        read_recorded_run(path)

    path.write_text("[1, 2]")
    with pytest.raises(CassetteError, match="has format None"):
        read_recorded_run(path)
