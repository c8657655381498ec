"""Record a test case's LLM calls once, then replay them offline with identical results."""

from __future__ import annotations

import json
import shutil
import textwrap
from typing import Any

import pytest
from llm_fakes import Project

from pytest_promptflow.prompts import prompt_version

ASK_SOURCE = "In one line, what is {{ topic }}?"

# One way of calling a model per scenario: a `call(prompt) -> str`, sync or async.
CALLS = {
    "openai": """
        def call(prompt):
            reply = openai_client().chat.completions.create(
                model="gpt-4o-mini", temperature=0, messages=[{"role": "user", "content": prompt}]
            )
            return reply.choices[0].message.content
        """,
    "openai-async": """
        async def call(prompt):
            reply = await openai_client(asynchronous=True).chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
            )
            return reply.choices[0].message.content
        """,
    "openai-stream": """
        def call(prompt):
            chunks = openai_client().chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": prompt}],
                stream=True,
                stream_options={"include_usage": True},
            )
            parts, usage = [], None
            for chunk in chunks:
                parts += [choice.delta.content or "" for choice in chunk.choices]
                usage = chunk.usage or usage
            return "".join(parts) + f" [{usage.total_tokens} tokens]"
        """,
    "openai-async-stream": """
        async def call(prompt):
            chunks = await openai_client(asynchronous=True).chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}], stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
        """,
    "anthropic": """
        def call(prompt):
            message = anthropic_client().messages.create(
                model="claude-haiku-4-5", max_tokens=200,
                messages=[{"role": "user", "content": prompt}],
            )
            return message.content[0].text + f" [{message.usage.output_tokens} tokens]"
        """,
    "anthropic-async": """
        async def call(prompt):
            message = await anthropic_client(asynchronous=True).messages.create(
                model="claude-haiku-4-5", max_tokens=200,
                messages=[{"role": "user", "content": prompt}],
            )
            return message.content[0].text
        """,
    "anthropic-stream": """
        def call(prompt):
            events = anthropic_client().messages.create(
                model="claude-haiku-4-5", max_tokens=200,
                messages=[{"role": "user", "content": prompt}], stream=True,
            )
            kinds, text = [], ""
            for event in events:
                kinds.append(event.type)
                if event.type == "content_block_delta":
                    text += event.delta.text
            return text + " " + ",".join(kinds)
        """,
    "anthropic-stream-helper": """
        def call(prompt):
            with anthropic_client().messages.stream(
                model="claude-haiku-4-5", max_tokens=200,
                messages=[{"role": "user", "content": prompt}],
            ) as stream:
                return stream.get_final_text()
        """,
    "anthropic-async-stream": """
        async def call(prompt):
            async with anthropic_client(asynchronous=True).messages.stream(
                model="claude-haiku-4-5", max_tokens=200,
                messages=[{"role": "user", "content": prompt}],
            ) as stream:
                return await stream.get_final_text()
        """,
    "httpx": """
        def call(prompt):
            reply = httpx.post(
                BASE_URL + "/v1/chat/completions",
                headers={"Authorization": f"Bearer {OPENAI_KEY}"},
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]},
            )
            return reply.json()["choices"][0]["message"]["content"]
        """,
    "httpx-async": """
        async def call(prompt):
            async with httpx.AsyncClient(base_url=BASE_URL) as client:
                reply = await client.post(
                    "/v1/messages",
                    headers={"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"},
                    json={"model": "claude-haiku-4-5", "max_tokens": 200,
                          "messages": [{"role": "user", "content": prompt}]},
                )
            return reply.json()["content"][0]["text"]
        """,
    "requests": """
        def call(prompt):
            reply = requests.post(
                BASE_URL + "/v1/chat/completions",
                headers={"Authorization": f"Bearer {OPENAI_KEY}"},
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]},
                timeout=10,
            )
            return reply.json()["choices"][0]["message"]["content"]
        """,
}

HEADER = f"""
    import asyncio

    import httpx
    import pytest
    import requests
    from endpoint import ANTHROPIC_KEY, BASE_URL, OPENAI_KEY, anthropic_client, openai_client, save
    from pytest_promptflow import Prompt, step

    ASK = Prompt.from_string({ASK_SOURCE!r}, name="ask")
    """

SYNC_STEP = """
    @step(prompt=ASK)
    def ask(topic: str) -> str:
        return call(ASK.render(topic=topic))


    def answers(*topics):
        return [ask(topic) for topic in topics]
    """

ASYNC_STEP = """
    @step(prompt=ASK)
    async def ask(topic: str) -> str:
        return await call(ASK.render(topic=topic))


    def answers(*topics):
        async def in_order():
            return [await ask(topic) for topic in topics]

        return asyncio.run(in_order())
    """


def chain_module(call: str) -> str:
    """A test module whose `answers(*topics)` asks the model through `call`, in a step."""
    step = ASYNC_STEP if "async def call" in call else SYNC_STEP
    return "\n".join(textwrap.dedent(part) for part in (HEADER, call, step))


def write_chain_test(project: Project, call: str, test_source: str) -> None:
    project.write(chain_module(call) + textwrap.dedent(test_source))


def interactions(project: Project, relative: str) -> list[dict[str, Any]]:
    interactions: list[dict[str, Any]] = project.cassette(relative)["interactions"]
    return interactions


@pytest.mark.parametrize("client", list(CALLS))
def test_records_then_replays_offline_with_identical_results(project: Project, client: str) -> None:
    write_chain_test(
        project,
        CALLS[client],
        """
        @pytest.mark.promptflow
        def test_ask():
            save("answers", answers("gravity", "entropy"))
        """,
    )
    project.record().assert_outcomes(passed=1)
    recorded = project.results()["answers"]
    assert recorded[0].startswith("reply to 'In one line, what is gravity?'")
    assert len(project.llm.requests) == 2

    with project.llm.offline():
        project.run().assert_outcomes(passed=1)
    assert project.results()["answers"] == recorded
    project.assert_no_canary()

    stored = interactions(project, "test_chain/test_ask.json")
    assert [i["step"] for i in stored] == ["ask", "ask"]
    assert [i["prompts"] for i in stored] == [{"ask": prompt_version(ASK_SOURCE)}] * 2
    messages = stored[1]["request"]["body"]["messages"]
    assert messages == [{"content": "In one line, what is entropy?", "role": "user"}]


def recorded_stream(project: Project, client: str) -> dict[str, Any]:
    """Record one streamed `ask("gravity")` through `client`; the response it stored."""
    write_chain_test(
        project,
        CALLS[client],
        """
        @pytest.mark.promptflow
        def test_ask():
            save("answers", answers("gravity"))
        """,
    )
    project.record().assert_outcomes(passed=1)
    (stored,) = interactions(project, "test_chain/test_ask.json")
    assert stored["request"]["body"]["stream"] is True
    response: dict[str, Any] = stored["response"]
    assert response["headers"] == {"content-type": ["text/event-stream"]}
    assert "body" not in response
    assert "body_text" not in response
    return response


def test_an_openai_stream_is_stored_as_a_list_of_events(project: Project) -> None:
    events = recorded_stream(project, "openai-stream")["events"]

    *chunks, usage, done = events
    assert done == {"text": "[DONE]"}
    assert usage["data"]["usage"]["total_tokens"] == 40
    assert {chunk["data"]["object"] for chunk in chunks} == {"chat.completion.chunk"}
    text = "".join(chunk["data"]["choices"][0]["delta"].get("content", "") for chunk in chunks)
    assert text == "reply to 'In one line, what is gravity?', answer 1"


def test_an_anthropic_stream_is_stored_as_a_list_of_named_events(project: Project) -> None:
    events = recorded_stream(project, "anthropic-stream")["events"]

    names = [event["event"] for event in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert all(event["data"]["type"] == event["event"] for event in events)
    text = "".join(
        e["data"]["delta"]["text"] for e in events if e["event"] == "content_block_delta"
    )
    assert text == "reply to 'In one line, what is gravity?', answer 1"


def test_identical_requests_replay_their_recordings_in_order(
    project: Project, reading: str
) -> None:
    write_chain_test(
        project,
        CALLS["openai"],
        """
        @pytest.mark.promptflow
        def test_ask_again():
            save("answers", answers("gravity", "gravity", "gravity"))
        """,
    )
    project.record().assert_outcomes(passed=1)
    recorded = project.results()["answers"]
    assert [answer[-8:] for answer in recorded] == ["answer 1", "answer 2", "answer 3"]

    with project.llm.offline():
        project.run().assert_outcomes(passed=1)
    assert project.results()["answers"] == recorded


SUITE = """
    @pytest.mark.promptflow
    def test_one():
        save("one", answers("gravity", "entropy"))


    @pytest.mark.parametrize("topic", ["light", "sound", "heat"])
    def test_each(topic, chain_run):
        save(f"each-{topic}", answers(topic))
        assert [call.step for call in chain_run.calls] == ["ask"]


    class TestGrouped:
        @pytest.mark.promptflow
        def test_method(self):
            save("method", answers("time"))
    """


def write_suite(project: Project) -> None:
    write_chain_test(project, CALLS["openai-stream"], SUITE)
    project.write(
        textwrap.dedent(
            """
            import pytest
            from endpoint import anthropic_client, save

            @pytest.mark.promptflow
            def test_claude():
                message = anthropic_client().messages.create(
                    model="claude-haiku-4-5", max_tokens=50,
                    messages=[{"role": "user", "content": "Name a colour."}],
                )
                save("claude", message.content[0].text)
            """
        ),
        name="test_other",
    )


EXPECTED_FILES = [
    "test_chain/TestGrouped.test_method.json",
    "test_chain/test_each/heat.json",
    "test_chain/test_each/light.json",
    "test_chain/test_each/sound.json",
    "test_chain/test_one.json",
    "test_other/test_claude.json",
]


def test_rerecording_an_unchanged_suite_leaves_every_file_untouched(
    project: Project, reading: str
) -> None:
    write_suite(project)
    project.record().assert_outcomes(passed=6)
    files = project.files()
    assert sorted(files) == EXPECTED_FILES
    stats = {name: (project.cassettes / name).stat() for name in files}

    project.llm.reset()
    project.record().assert_outcomes(passed=6)
    assert len(project.llm.requests) == 7, "every request was made again"
    assert project.files() == files
    for name, before in stats.items():
        after = (project.cassettes / name).stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), name


def test_xdist_records_the_same_files_as_a_serial_run(project: Project) -> None:
    write_suite(project)
    project.record().assert_outcomes(passed=6)
    serial = project.files()
    serial_results = project.results()
    shutil.rmtree(project.cassettes)

    project.llm.reset()
    parallel = project.pytester.runpytest_subprocess(
        "-p", "xdist", "-n", "2", "-v", "-p", "no:cacheprovider", "--promptflow-record=all"
    )
    parallel.assert_outcomes(passed=6)
    assert "[gw0] " in parallel.stdout.str()
    assert "[gw1] " in parallel.stdout.str()
    recorded = project.files()
    # Latency is measured, so two recordings from scratch differ in it and nothing else.
    assert without_latency(recorded) == without_latency(serial)
    assert project.results() == serial_results

    with project.llm.offline():
        replay = project.pytester.runpytest_subprocess(
            "-p", "xdist", "-n", "2", "-p", "no:cacheprovider"
        )
    replay.assert_outcomes(passed=6)
    assert project.results() == serial_results
    assert project.files() == recorded


def without_latency(files: dict[str, bytes]) -> dict[str, Any]:
    parsed = {name: json.loads(content) for name, content in files.items()}
    for document in parsed.values():
        for interaction in document["interactions"]:
            assert interaction.pop("latency")["total_ms"] >= 0
        for golden_step in document["steps"]:
            for answer in golden_step["usage"]:
                assert answer.pop("latency")["total_ms"] >= 0
    return parsed


def test_a_recorded_run_is_plain_sorted_json(project: Project) -> None:
    write_chain_test(
        project,
        CALLS["openai"],
        """
        @pytest.mark.promptflow
        def test_ask():
            save("answers", answers("gravity"))
        """,
    )
    project.record().assert_outcomes(passed=1)

    text = (project.cassettes / "test_chain/test_ask.json").read_text(encoding="utf-8")
    document = json.loads(text)
    assert list(document)[:3] == ["format", "test", "interactions"]
    assert document["format"] == 1
    assert document["test"] == "test_chain.py::test_ask"
    body = document["interactions"][0]["request"]["body"]
    assert list(body) == sorted(body) == ["messages", "model", "temperature"]
    assert text.endswith("}\n")
    assert "\n  " in text, "indented, so that a review diff is line by line"


def test_a_file_upload_replays(project: Project) -> None:
    project.write(
        """
        import pytest
        from endpoint import openai_client, save

        @pytest.mark.promptflow
        def test_upload_batch():
            batch = b'{"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions"}\\n'
            uploaded = openai_client().files.create(file=("batch.jsonl", batch), purpose="batch")
            save("upload", [uploaded.id, uploaded.bytes])
        """
    )
    project.record().assert_outcomes(passed=1)
    recorded = project.results()

    with project.llm.offline():
        project.run().assert_outcomes(passed=1)
    assert project.results() == recorded


def test_a_binary_request_body_is_recorded_and_replays(project: Project) -> None:
    project.write(
        """
        import httpx, pytest
        from endpoint import BASE_URL, OPENAI_KEY, save

        PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452") + bytes(range(256))

        @pytest.mark.promptflow
        def test_upload_image():
            reply = httpx.post(
                BASE_URL + "/v1/files",
                params={"purpose": "vision", "filename": "chart.png"},
                headers={"Authorization": f"Bearer {OPENAI_KEY}", "Content-Type": "image/png"},
                content=PNG,
            )
            save("upload", reply.json())
        """
    )
    project.record().assert_outcomes(passed=1)
    recorded = project.results()
    assert recorded["upload"]["bytes"] == 272

    with project.llm.offline():
        project.run().assert_outcomes(passed=1)
    assert project.results() == recorded


def test_a_miss_retried_by_the_sdk_is_printed_once(project: Project) -> None:
    source = """
        import openai
        import pytest
        from endpoint import BASE_URL, OPENAI_KEY
        from pytest_promptflow import step

        @step
        def ask(text: str) -> str:
            # The SDK's own retries: the miss reaches it as a failed connection.
            client = openai.OpenAI(base_url=BASE_URL + "/v1", api_key=OPENAI_KEY, max_retries=1)
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
            )
            return reply.choices[0].message.content

        @pytest.mark.promptflow
        def test_ask():
            ask("TEXT")
        """
    project.write(source.replace("TEXT", "hello"))
    project.record().assert_outcomes(passed=1)
    project.write(source.replace("TEXT", "hello again"))

    with project.llm.offline():
        result = project.run()

    result.assert_outcomes(failed=1)
    assert result.stdout.str().count("To record it, run:") == 1
