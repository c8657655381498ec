"""The README's tour is a project: write it out, record it, replay it offline, break it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

README = Path(__file__).resolve().parents[1] / "README.md"
FILE_BLOCK = re.compile(r"<!-- file: (?P<path>\S+) -->\n```\w*\n(?P<body>.*?)\n```", re.DOTALL)
CANARY_KEY = "sk-readme-canary-00112233445566778899"


def readme_files() -> dict[str, str]:
    files = {m["path"]: m["body"] + "\n" for m in FILE_BLOCK.finditer(README.read_text())}
    assert {"app.py", "test_app.py", "prompts/summarize.j2", "fixtures/articles.jsonl"} <= set(
        files
    )
    return files


def plausible_reply(request: Request) -> Response:
    """A chat completion for the tour's two prompts, decided from the prompt text."""
    prompt = json.loads(request.data)["messages"][-1]["content"]
    if prompt.startswith("Summarize"):
        title = re.search(r"^Title: (.+)$", prompt, re.MULTILINE)
        assert title is not None
        content = {"headline": f"{title[1]}, in short", "points": ["It happened today."]}
    else:
        topic = "science" if "Comet" in prompt else "sports"
        content = {"topic": topic}
    completion = {
        "id": "chatcmpl-readme",
        "object": "chat.completion",
        "created": 1_718_000_000,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": json.dumps(content)},
                "finish_reason": "stop",
            }
        ],
    }
    return Response(json.dumps(completion), content_type="application/json")


@pytest.fixture
def tour(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for path, body in readme_files().items():
        target = pytester.path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
    pytester.syspathinsert()
    return pytester


def record(tour: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    server = HTTPServer(host="127.0.0.1", port=0)
    server.expect_request("/v1/chat/completions", method="POST").respond_with_handler(
        plausible_reply
    )
    server.start()
    # Replay must reach nothing: the base URL stays, the server goes.
    monkeypatch.setenv("OPENAI_BASE_URL", server.url_for("/v1"))
    try:
        result = tour.runpytest("--promptflow-record=new")
    finally:
        server.clear()
        server.stop()
    result.assert_outcomes(passed=2)


def test_the_tour_records_then_replays_offline(
    tour: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(tour, monkeypatch)
    files = sorted(p.relative_to(tour.path).as_posix() for p in tour.path.rglob("*.json"))
    assert files == [
        "cassettes/test_app/test_digest/comet.json",
        "cassettes/test_app/test_digest/final.json",
    ]
    for path in files:
        assert CANARY_KEY.encode() not in (tour.path / path).read_bytes()
    recorded = json.loads((tour.path / files[0]).read_text())
    assert [i["step"] for i in recorded["interactions"]] == ["summarize", "tag"]

    replayed = tour.runpytest()

    replayed.assert_outcomes(passed=2)
    replayed.stdout.fnmatch_lines(["*promptflow*", "summarize*2*0", "tag*2*0"])


def test_an_edited_prompt_fails_naming_the_step_and_the_command(
    tour: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(tour, monkeypatch)
    prompt = tour.path / "prompts" / "summarize.j2"
    prompt.write_text(prompt.read_text().replace("for a busy reader", "in plain words"))

    result = tour.runpytest()

    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "no recording for a request of step 'summarize' in case comet",
            "*prompt summarize changed: * -> *",
            "*-  | Summarize this article for a busy reader.",
            "*+  | Summarize this article in plain words.",
            "To record it, run:",
            "  pytest 'test_app.py::test_digest[comet]' --promptflow-record=new",
        ]
    )


def test_a_truncated_recording_is_reported_by_path_and_left_alone(
    tour: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(tour, monkeypatch)
    cassette = tour.path / "cassettes" / "test_app" / "test_digest" / "comet.json"
    truncated = cassette.read_bytes()[: cassette.stat().st_size // 2]
    cassette.write_bytes(truncated)

    for mode in ("none", "new", "all"):
        result = tour.runpytest("-k", "comet", f"--promptflow-record={mode}")
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines([f"*cassette {cassette} is not valid JSON*"])
        assert cassette.read_bytes() == truncated
