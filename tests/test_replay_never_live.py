"""Replay never reaches the network, a miss is reported once, and recording is
deterministic even for concurrent requests and for streams that are not JSON."""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from llm_fakes import FakeLLM, Project, _last_user_text
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


def failures(result: pytest.RunResult) -> str:
    """The failures section of a run's output, without its short summary."""
    return result.stdout.str().split("short test summary info")[0]


STEP_IN_AN_UNMARKED_TEST = """
    import httpx
    from endpoint import BASE_URL, OPENAI_KEY, openai_client
    from pytest_promptflow import step

    @step
    def ask(question: str) -> str:
        reply = openai_client().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
        )
        return reply.choices[0].message.content

    def test_unmarked():
        ask("What is gravity?")
    """


@pytest.mark.parametrize("mode", ["none", "new", "all"])
def test_a_step_in_a_test_without_a_marker_never_reaches_the_network(
    project: Project, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    project.write(STEP_IN_AN_UNMARKED_TEST)

    result = project.run(f"--promptflow-record={mode}")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*step 'ask' made an HTTP request in test_chain.py::test_unmarked, a test without "
            "@pytest.mark.promptflow",
            f"*  request:  POST {project.llm.url}/v1/chat/completions",
            "*Add @pytest.mark.promptflow to the test*",
        ]
    )
    assert failures(result).count("Its calls would be neither recorded nor replayed") == 1
    assert project.llm.requests == []
    assert not project.cassettes.exists()


def test_marking_the_test_records_and_replays_it(project: Project) -> None:
    project.write(
        STEP_IN_AN_UNMARKED_TEST.replace(
            "def test_unmarked",
            "import pytest\n\n    @pytest.mark.promptflow\n    def test_unmarked",
        )
    )
    project.record().assert_outcomes(passed=1)
    project.llm.reset()

    with project.llm.offline():
        project.run().assert_outcomes(passed=1)


def test_requests_outside_steps_in_unmarked_tests_go_through(project: Project) -> None:
    project.write(
        """
        import httpx, requests
        from endpoint import BASE_URL, OPENAI_KEY

        QUESTION = {"model": "m", "messages": [{"role": "user", "content": "ping"}]}
        HEADERS = {"Authorization": f"Bearer {OPENAI_KEY}"}

        def test_other_http_code():
            assert httpx.post(BASE_URL + "/v1/chat/completions", json=QUESTION,
                              headers=HEADERS).status_code == 200
            assert requests.post(BASE_URL + "/v1/chat/completions", json=QUESTION,
                                 headers=HEADERS, timeout=10).status_code == 200
        """
    )
    project.run().assert_outcomes(passed=1)

    assert len(project.llm.requests) == 2
    assert not project.cassettes.exists()


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_a_miss_is_one_attempt_reported_once_even_with_the_sdks_default_retries(
    project: Project, sdk: str
) -> None:
    call = {
        "openai": "openai.OpenAI(base_url=BASE_URL + '/v1', api_key=OPENAI_KEY)"
        ".chat.completions.create(model='m', messages=[{'role': 'user', 'content': 'hi'}])",
        "anthropic": "anthropic.Anthropic(base_url=BASE_URL, api_key=ANTHROPIC_KEY)"
        ".messages.create(model='m', max_tokens=5, messages=[{'role': 'user', 'content': 'hi'}])",
    }[sdk]
    project.write(
        f"""
        import anthropic, openai, pytest
        from endpoint import ANTHROPIC_KEY, BASE_URL, OPENAI_KEY
        from pytest_promptflow import step

        ATTEMPTS = []

        @step
        def ask() -> str:
            return str({call})

        @pytest.mark.promptflow
        def test_default_retries(monkeypatch):
            # The SDK's retry back-off sleeps; none may happen.
            monkeypatch.setattr("time.sleep", lambda seconds: ATTEMPTS.append(seconds))
            try:
                ask()
            finally:
                assert ATTEMPTS == [], "the SDK retried the miss"
        """
    )

    result = project.run()

    result.assert_outcomes(failed=1)
    assert failures(result).count("To record it, run:") == 1
    assert "the SDK retried the miss" not in result.stdout.str()
    assert project.llm.requests == []


def test_a_swallowed_miss_still_fails_the_test_once(project: Project) -> None:
    project.write(
        """
        import pytest, requests
        from endpoint import BASE_URL
        from pytest_promptflow import step

        @step
        def ask() -> int:
            return requests.post(BASE_URL + "/v1/chat/completions", json={"q": 1}, timeout=5
                                 ).status_code

        @pytest.mark.promptflow
        def test_ignores_the_status():
            assert ask() == 400
            ask()
        """
    )
    result = project.run()

    result.assert_outcomes(failed=1)
    assert failures(result).count("To record it, run:") == 1


# -- determinism ------------------------------------------------------------------------


class SlowLLM(FakeLLM):
    """The fake model, answering each chat request after a random delay, requests in
    threads of their own, so that a later request may be answered first."""

    answered: list[str]

    def __init__(self) -> None:
        self.lock = threading.Lock()
        super().__init__()
        self.server.stop()
        self.server.threaded = True
        self.server.start()

    def _answer(self, request: Request) -> tuple[dict[str, Any], str, str]:
        with self.lock:
            return super()._answer(request)

    def _openai(self, request: Request) -> Response:
        time.sleep(random.uniform(0.0, 0.15))
        response = super()._openai(request)
        self.answered.append(_last_user_text(json.loads(request.data)["messages"]))
        return response


@pytest.fixture
def slow_project(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> tuple[Project, SlowLLM]:
    monkeypatch.delenv("CI", raising=False)
    server = SlowLLM()
    server.answered = []
    return Project(pytester, server), server


CONCURRENT = """
    import asyncio, concurrent.futures, contextvars
    import pytest
    from endpoint import openai_client
    from pytest_promptflow import step

    TOPICS = ["gravity", "entropy", "light", "sound", "heat", "magnetism"]

    @step
    async def fan_out() -> list[str]:
        client = openai_client(asynchronous=True)
        replies = await asyncio.gather(*(
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": topic}]
            )
            for topic in TOPICS
        ))
        return [reply.choices[0].message.content for reply in replies]

    @step
    def in_threads() -> list[str]:
        client = openai_client()

        def ask(topic):
            return client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "thread " + topic}]
            ).choices[0].message.content

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(contextvars.copy_context().run, ask, t) for t in TOPICS]
            return [future.result() for future in futures]

    @pytest.mark.promptflow
    def test_concurrent():
        asyncio.run(fan_out())
        in_threads()
    """


def test_concurrent_requests_are_recorded_in_an_order_independent_of_timing(
    slow_project: tuple[Project, SlowLLM],
) -> None:
    project, server = slow_project
    project.write(CONCURRENT)
    try:
        recordings, answer_orders = [], set()
        # On a loaded machine requests may arrive too far apart for the delays to reorder
        # them: record until two orders differ, at least three times, at most ten.
        while len(recordings) < 3 or (len(answer_orders) == 1 and len(recordings) < 10):
            server.reset()
            server.answered.clear()
            project.record().assert_outcomes(passed=1)
            recordings.append(project.files())
            answer_orders.add(tuple(server.answered))

        assert len(answer_orders) > 1, "the random delays changed the order of the answers"
        assert all(recording == recordings[0] for recording in recordings)
        run = project.cassette("test_chain/test_concurrent.json")
        assert len(run["interactions"]) == 12
        assert [i["step"] for i in run["interactions"]] == ["fan_out"] * 6 + ["in_threads"] * 6
        with server.offline():
            project.run().assert_outcomes(passed=1)
    finally:
        server.close()


class SteadyLLM(SlowLLM):
    """The slow fake model, answering identical requests identically."""

    def _answer(self, request: Request) -> tuple[dict[str, Any], str, str]:
        with self.lock:
            self.seen.clear()
            return FakeLLM._answer(self, request)


@pytest.fixture(params=["steady", "counting"])
def delayed_project(
    request: pytest.FixtureRequest, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Project, SlowLLM]]:
    """A project on a model that answers after random delays: identically to identical
    requests (steady), or "answer 1", "answer 2"... in the order they arrive (counting)."""
    monkeypatch.delenv("CI", raising=False)
    server = SteadyLLM() if request.param == "steady" else SlowLLM()
    server.answered = []
    try:
        yield Project(pytester, server), server
    finally:
        server.close()


TWICE_EACH = """
    import asyncio, concurrent.futures, contextvars, random, time
    import pytest
    from endpoint import openai_client, save
    from pytest_promptflow import step

    # 12 distinct questions, each asked twice.
    TOPICS = [f"topic {n}" for n in range(12)] * 2

    CLIENTS = {}  # one client per test, shared by its threads or tasks

    @step
    def ask(topic: str) -> str:
        time.sleep(random.uniform(0, 0.01))  # a replay's order varies too
        return CLIENTS["sync"].chat.completions.create(
            model="m", messages=[{"role": "user", "content": topic}]
        ).choices[0].message.content

    @step
    async def ask_async(topic: str) -> str:
        await asyncio.sleep(random.uniform(0, 0.01))
        reply = await CLIENTS["async"].chat.completions.create(
            model="m", messages=[{"role": "user", "content": "async " + topic}]
        )
        return reply.choices[0].message.content

    @step
    def summarize(answers: list[str]) -> int:
        return len(answers)

    @pytest.mark.promptflow
    def test_pool():
        CLIENTS["sync"] = openai_client(timeout=60)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(contextvars.copy_context().run, ask, t) for t in TOPICS]
            answers = [future.result() for future in futures]
        summarize(answers)
        save("pool", sorted(answers))

    @pytest.mark.promptflow
    def test_gather():
        async def main():
            CLIENTS["async"] = openai_client(asynchronous=True, timeout=60)
            return await asyncio.gather(*(ask_async(t) for t in TOPICS))

        answers = asyncio.run(main())
        summarize(answers)
        save("gather", sorted(answers))
    """


def test_a_thread_pool_and_gather_record_the_same_files_whatever_the_timing(
    delayed_project: tuple[Project, SlowLLM],
) -> None:
    project, server = delayed_project
    project.write(TWICE_EACH)
    recordings, answer_orders = [], set()
    for _ in range(5):
        server.answered.clear()
        server.reset()
        project.record().assert_outcomes(passed=2)
        recordings.append(project.files())
        answer_orders.add(tuple(server.answered))
    assert len(answer_orders) > 1, "the random delays changed the order of the answers"
    assert all(recording == recordings[0] for recording in recordings)
    for test in ("pool", "gather"):
        recorded = project.cassette(f"test_chain/test_{test}.json")
        assert len(recorded["interactions"]) == 24
        steps = [golden["step"] for golden in recorded["steps"]]
        assert steps == ["ask" if test == "pool" else "ask_async"] * 24 + ["summarize"]
        asked = [golden["inputs"]["topic"] for golden in recorded["steps"][:24]]
        assert asked == sorted(asked), "concurrent calls are stored by what they are"
    results = project.results()

    with server.offline():
        for _ in range(3):
            project.run("--promptflow-report=report.json").assert_outcomes(passed=2)
            assert project.results() == results
            steps = json.loads((project.path / "report.json").read_text())["steps"]
            for name, tally in steps.items():
                # Each concurrent call was compared with the golden call of its own input.
                assert tally["compared"] == tally["calls"] > 0, name
                assert (tally["tolerated"], tally["drift"]) == (0, {}), name
    assert project.files() == recordings[0]


def test_stream_data_that_is_not_json_replays_byte_for_byte(
    project: Project, httpserver: HTTPServer
) -> None:
    stream = (
        "data: 1.50\n\n"
        "data: true \n\n"
        "data:  two leading spaces\n\n"
        "event: note\ndata: first line\ndata: 1e5\n\n"
        'data: {"text":"json stays parsed"}\n\n'
        "data: [DONE]\n\n"
    )
    httpserver.expect_request(re.compile("/stream")).respond_with_data(
        stream, content_type="text/event-stream"
    )
    project.write(
        f"""
        import httpx, pytest
        from endpoint import save
        from pytest_promptflow import step

        @step
        def listen() -> str:
            with httpx.stream("POST", {httpserver.url_for("/stream")!r}, json={{"q": 1}}) as r:
                return r.read().decode()

        @pytest.mark.promptflow
        def test_stream():
            save("stream", listen())
        """
    )
    project.record().assert_outcomes(passed=1)
    assert project.results() == {"stream": stream}
    events = project.cassette("test_chain/test_stream.json")["interactions"][0]["response"]
    assert events["events"][0] == {"text": "1.50"}
    assert events["events"][4] == {"data": {"text": "json stays parsed"}}

    httpserver.clear()
    httpserver.stop()
    try:
        project.run().assert_outcomes(passed=1)
        assert project.results() == {"stream": stream}
    finally:
        httpserver.start()  # the server is shared by the session's later tests


def test_threads_do_not_share_a_recording_meant_for_one(project: Project) -> None:
    # Two threads make the same request, recorded once: one replays it, the other misses.
    project.write(
        """
        import concurrent.futures, contextvars, pytest
        from endpoint import openai_client, save
        from pytest_promptflow import step

        @step
        def ask() -> str:
            return openai_client().chat.completions.create(
                model="m", messages=[{"role": "user", "content": "same"}]
            ).choices[0].message.content

        @pytest.mark.promptflow
        def test_twice(promptflow_record_mode):
            times = 1 if promptflow_record_mode != "none" else 2
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                futures = [pool.submit(contextvars.copy_context().run, ask) for _ in range(times)]
                for future in futures:
                    try:
                        future.result()
                    except Exception:
                        pass
        """
    )
    project.record().assert_outcomes(passed=1)

    with project.llm.offline():
        result = project.run()

    result.assert_outcomes(failed=1)
    assert failures(result).count("To record it, run:") == 1
