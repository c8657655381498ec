"""Recorded runs are safe to commit: no secrets, decoded bodies, and bad files left alone."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from llm_fakes import CANARY_TOKENS, OPENAI_KEY, Project

from pytest_promptflow import SecretLeakError
from pytest_promptflow.cassette.format import (
    Interaction,
    RecordedRequest,
    RecordedResponse,
    write_atomically,
)
from pytest_promptflow.cassette.modes import RecordingOptions, RecordMode
from pytest_promptflow.cassette.recorder import CaseRecorder
from pytest_promptflow.cassette.scrub import REDACTED, Scrubber
from pytest_promptflow.trace import StepCall

ASK_ONCE = """
    import pytest
    from endpoint import openai_client, save

    @pytest.mark.promptflow
    def test_ask():
        reply = openai_client().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "What is gravity?"}]
        )
        save("answer", reply.choices[0].message.content)
    """

CASSETTE = "test_chain/test_ask.json"


def recorded_project(project: Project) -> Path:
    project.write(ASK_ONCE)
    project.record().assert_outcomes(passed=1)
    project.llm.reset()
    return project.cassettes / CASSETTE


# -- a cassette that cannot be read is reported and never touched -------------------------


@pytest.mark.parametrize("mode", ["none", "new", "all"])
def test_a_truncated_cassette_fails_the_test_naming_it_and_is_left_unchanged(
    project: Project, mode: str
) -> None:
    path = recorded_project(project)
    truncated = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(truncated)

    result = project.record(mode=mode)

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*test_chain.py::test_ask: cassette {path} is not valid JSON (line *, column *: *); "
            "fix it, or delete it and record again with --promptflow-record=new"
        ]
    )
    assert path.read_bytes() == truncated
    assert project.llm.requests == [], "the test body never ran"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda run: run.update(format=2),
            "has format 2, but this pytest-promptflow reads format 1",
        ),
        (lambda run: run.pop("format"), "has format None, but this pytest-promptflow reads"),
        (
            lambda run: run["interactions"][0]["response"].update(status="OK"),
            "does not match the recorded run format at interactions.0.response.status: "
            "Input should be a valid integer*",
        ),
        (
            lambda run: run["interactions"][0].update(tape="A"),
            "does not match the recorded run format at interactions.0.tape: "
            "Extra inputs are not permitted (1 problem(s))",
        ),
        (
            lambda run: run.pop("test"),
            "does not match the recorded run format at test: Field required",
        ),
    ],
    ids=["newer-format", "no-format", "wrong-type", "unknown-field", "missing-field"],
)
def test_a_cassette_of_another_format_fails_the_test_naming_it_and_is_left_unchanged(
    project: Project, edit: Callable[[dict[str, Any]], object], message: str
) -> None:
    path = recorded_project(project)
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document, indent=2))
    before = path.read_bytes()

    result = project.record(mode="new")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*cassette {path} {message}*"])
    assert path.read_bytes() == before
    assert project.llm.requests == []


# -- secrets ----------------------------------------------------------------------------


def test_credential_headers_are_dropped_and_their_values_never_written(project: Project) -> None:
    secrets = [
        *CANARY_TOKENS,
        "org-canaryorganization",
        "proj_canaryproject01",
        "canarysessioncookie01",
        "azurecanarykey0123456789",
        "canarycookievalue0123456789",
    ]
    project.write(
        """
        import httpx, pytest
        from endpoint import ANTHROPIC_KEY, BASE_URL, OPENAI_KEY, openai_client, save

        QUESTION = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}

        @pytest.mark.promptflow
        def test_headers():
            client = openai_client(
                organization="org-canaryorganization",
                project="proj_canaryproject01",
                default_headers={"Cookie": "session=canarysessioncookie01"},
            )
            answers = [client.chat.completions.create(**QUESTION).choices[0].message.content]
            azure = httpx.post(
                BASE_URL + "/v1/chat/completions",
                headers={"api-key": "azurecanarykey0123456789",
                         "Authorization": f"Bearer {OPENAI_KEY}"},
                json=QUESTION,
            )
            claude = httpx.post(
                BASE_URL + "/v1/messages",
                headers={"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01",
                         "anthropic-beta": "prompt-caching-2024-07-31"},
                json={"max_tokens": 10, **QUESTION},
            )
            answers += [azure.json()["choices"][0]["message"]["content"],
                        claude.json()["content"][0]["text"]]
            save("answers", answers)
        """
    )
    project.record().assert_outcomes(passed=1)
    recorded = project.results()

    content = b"".join(project.files().values())
    for secret in secrets:
        assert secret.encode() not in content, secret
    interactions = project.cassette("test_chain/test_headers.json")["interactions"]
    assert [sorted(i["request"]["headers"]) for i in interactions] == [
        ["content-type"],
        ["content-type"],
        ["anthropic-beta", "anthropic-version", "content-type"],
    ]
    assert [sorted(i["response"]["headers"]) for i in interactions] == [["content-type"]] * 3
    with project.llm.offline():
        project.run().assert_outcomes(passed=1)
    assert project.results() == recorded


def test_secret_looking_strings_in_bodies_and_query_keys_are_redacted(project: Project) -> None:
    secrets = {
        "openai": "sk-proj-canary0123456789abcdefghij",
        "anthropic": "sk-ant-api03-canary0123456789",
        "bearer": "Bearer eyJhbGciOiJIUzI1NiJ9.canary",
        "google": "AIzaSyCanary0123456789abcdefghijk",
        "query key": "querycanaryvalue0123",
    }
    project.llm.extra_reply = " Your new key is sk-live-responseonly0123456789."
    project.write(
        f"""
        import httpx, pytest
        from endpoint import BASE_URL, OPENAI_KEY, save

        @pytest.mark.promptflow
        def test_leaky_prompt():
            reply = httpx.post(
                BASE_URL + "/v1/chat/completions?alt=json&key={secrets["query key"]}",
                headers={{"Authorization": f"Bearer {{OPENAI_KEY}}"}},
                json={{"model": "gpt-4o-mini", "messages": [
                    {{"role": "user", "content": "Check {" and ".join(secrets.values())}"}},
                ]}},
            )
            save("answer", reply.json()["choices"][0]["message"]["content"])
        """
    )
    project.record().assert_outcomes(passed=1)
    answer = project.results()["answer"]
    assert secrets["query key"] in answer, "the fake model echoes the prompt"

    text = project.files()["test_chain/test_leaky_prompt.json"].decode()
    for secret in [*secrets.values(), "sk-live-responseonly0123456789", *CANARY_TOKENS]:
        assert secret not in text, secret
    (interaction,) = json.loads(text)["interactions"]
    assert interaction["request"]["url"] == f"{project.llm.url}/v1/chat/completions?alt=json"
    assert interaction["request"]["body"]["messages"][0]["content"] == (
        f"Check {' and '.join([REDACTED] * len(secrets))}"
    )
    reply = interaction["response"]["body"]["choices"][0]["message"]["content"]
    assert reply.endswith(f"answer 1 Your new key is {REDACTED}.")

    # The live request is scrubbed the same way before it is matched, so it replays.
    with project.llm.offline():
        project.run().assert_outcomes(passed=1)
    replayed = project.results()["answer"]
    assert REDACTED in replayed
    for secret in secrets.values():
        assert secret not in replayed


@pytest.mark.parametrize(
    ("ini", "prompt"),
    [
        ("", "Why a 401?\\nAuthorization: Bearer\\n    eyJhbGciOiJIUzI1NiJ9.e30.sig"),
        (
            'promptflow_secret_patterns =\n    "password": "[^"]*"',
            'Is this config valid? {\\"user\\": \\"ops\\", \\"password\\": \\"hunter22\\"}',
        ),
    ],
    ids=["bearer-on-the-next-line", "secret-in-json-in-the-prompt"],
)
def test_a_request_whose_secret_shows_only_once_decoded_still_replays(
    project: Project, ini: str, prompt: str
) -> None:
    # In the JSON on the wire, a newline or a quote inside a string is escaped, so a
    # pattern can match the decoded prompt without matching the raw request body.
    project.pytester.makeini(f"[pytest]\n{ini}\n")
    project.write(
        f"""
        import pytest
        from endpoint import openai_client, save

        @pytest.mark.promptflow
        def test_explain():
            reply = openai_client().chat.completions.create(
                model="gpt-4o-mini", messages=[{{"role": "user", "content": "{prompt}"}}]
            )
            save("answer", reply.choices[0].message.content)
        """
    )
    project.record().assert_outcomes(passed=1)
    assert REDACTED in project.files()["test_chain/test_explain.json"].decode()

    with project.llm.offline():
        project.run().assert_outcomes(passed=1)


def test_a_secret_in_a_step_input_is_redacted_from_its_golden_values(project: Project) -> None:
    # Customers paste their keys into support tickets; the chain still has to be testable.
    ticket = "My key sk-proj-canary0123456789abcdefghij stopped working"
    project.write(
        f"""
        import pytest
        from endpoint import openai_client, save
        from pytest_promptflow import Prompt, step

        TRIAGE = Prompt.from_string("Triage this ticket: {{{{ ticket }}}}", name="triage")

        @step(prompt=TRIAGE)
        def triage(ticket: str) -> str:
            reply = openai_client().chat.completions.create(
                model="gpt-4o-mini",
                messages=[{{"role": "user", "content": TRIAGE.render(ticket=ticket)}}],
            )
            return reply.choices[0].message.content

        @pytest.mark.promptflow
        def test_triage():
            save("answer", triage({ticket!r}))
        """
    )
    project.record().assert_outcomes(passed=1)

    text = project.files()["test_chain/test_triage.json"].decode()
    assert "canary0123456789abcdefghij" not in text
    assert f"My key {REDACTED} stopped working" in text
    with project.llm.offline():
        project.run().assert_outcomes(passed=1)


def test_a_miss_message_shows_no_secret(project: Project) -> None:
    source = """
        import pytest
        from endpoint import OPENAI_KEY, openai_client

        @pytest.mark.promptflow
        def test_ask():
            openai_client(default_query={"key": "querycanaryvalue0123"}).chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": f"my key is {OPENAI_KEY}, question %d"}],
            )
        """
    project.write(source % 1)
    project.record().assert_outcomes(passed=1)
    project.write(source % 2)

    with project.llm.offline():
        result = project.run()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*no recording for a request made outside any step",
            f"*  request:  POST {project.llm.url}/v1/chat/completions",
            f'*-messages[[]0[]].content: "my key is {REDACTED}, question 1"',
            f'*+messages[[]0[]].content: "my key is {REDACTED}, question 2"',
        ]
    )
    for secret in [*CANARY_TOKENS, "querycanaryvalue0123"]:
        assert secret not in result.stdout.str()


def test_a_pattern_from_the_ini_file_redacts_a_custom_token(project: Project) -> None:
    project.write(
        """
        import httpx, pytest
        from endpoint import BASE_URL, OPENAI_KEY

        @pytest.mark.promptflow
        def test_internal_token():
            httpx.post(
                BASE_URL + "/v1/chat/completions",
                headers={"Authorization": f"Bearer {OPENAI_KEY}"},
                json={"model": "gpt-4o-mini",
                      "messages": [{"role": "user", "content": "use acme_0123456789abcdef"}]},
            )
        """
    )
    project.record().assert_outcomes(passed=1)
    assert b"acme_0123456789abcdef" in project.files()["test_chain/test_internal_token.json"]

    project.pytester.makeini("[pytest]\npromptflow_secret_patterns =\n    acme_[0-9a-f]{16}\n")
    project.record().assert_outcomes(passed=1)

    text = project.files()["test_chain/test_internal_token.json"].decode()
    assert "acme_0123456789abcdef" not in text
    assert f"use {REDACTED}" in text
    with project.llm.offline():
        project.run().assert_outcomes(passed=1)


def test_a_secret_in_a_kept_header_is_redacted(project: Project) -> None:
    project.write(
        """
        import pytest
        from endpoint import OPENAI_KEY, openai_client

        @pytest.mark.promptflow
        def test_beta_header():
            client = openai_client(default_headers={"OpenAI-Beta": OPENAI_KEY})
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
            )
        """
    )
    project.record().assert_outcomes(passed=1)

    recorded = json.loads((project.cassettes / "test_chain/test_beta_header.json").read_text())
    assert recorded["interactions"][0]["request"]["headers"]["openai-beta"] == ["<redacted>"]
    for path in project.cassettes.rglob("*"):
        if path.is_file():
            assert all(token.encode() not in path.read_bytes() for token in CANARY_TOKENS)


def test_the_final_scan_refuses_text_that_still_holds_a_secret() -> None:
    scrubber = Scrubber(extra_patterns=[r"acme_[0-9a-f]{16}"])
    scrubber.learn_secrets([("api-key", "azurecanarykey0123456789")], "https://x.test/v1")

    scrubber.check('{"content": "nothing to see"}', "cassette a.json")
    for text, secret in [
        ('{"content": "sk-abcdefghijklmnopqrstuvwx"}', "sk-abcdefghijklmnopqrstuvwx"),
        ('{"content": "call azurecanarykey0123456789"}', "azurecanarykey0123456789"),
        ('{"content": "acme_0123456789abcdef"}', "acme_0123456789abcdef"),
    ]:
        with pytest.raises(SecretLeakError) as raised:
            scrubber.check(text, "cassette a.json", json.loads(text))
        assert str(raised.value).startswith(
            "cassette a.json was not written: content still holds a value that looks like a "
            "secret after scrubbing"
        )
        # No part of what was found is shown: not even its first characters.
        assert all(secret[i : i + 4] not in str(raised.value) for i in range(len(secret) - 3))


def test_scrubbing_redacts_patterns_learned_credentials_and_secret_query_parameters() -> None:
    scrubber = Scrubber()
    scrubber.learn_secrets(
        [("Authorization", "Bearer tok-0123456789"), ("x-api-key", "short"), ("Accept", "*/*")],
        "https://x.test/v1/models?api_key=querykey0123&alt=json",
    )

    assert scrubber.text("tok-0123456789 and querykey0123") == f"{REDACTED} and {REDACTED}"
    assert scrubber.text("short stays, AIzaSyA0123456789abcdefghijk goes") == (
        f"short stays, {REDACTED} goes"
    )
    assert scrubber.json({"sk-ant-abcdefghijkl": ["Bearer abcdefghijkl", 3]}) == {
        REDACTED: [REDACTED, 3]
    }
    assert scrubber.url("https://x.test/v1/m?key=abc&api_key=def&alt=json") == (
        "https://x.test/v1/m?alt=json"
    )


def test_a_recorder_never_writes_a_run_that_fails_the_final_scan(tmp_path: Path) -> None:
    path = tmp_path / "test_leak.json"
    path.write_text("the previous recording\n")
    recorder = CaseRecorder(
        path,
        test_id="test_leak.py::test_leak",
        case_id=None,
        options=RecordingOptions(mode=RecordMode.NEW),
        record_command="pytest test_leak.py::test_leak --promptflow-record=new",
    )
    recorder.recorded.append(
        Interaction(
            request=RecordedRequest(method="GET", url="https://x.test/", body_text=OPENAI_KEY),
            response=RecordedResponse(status=200),
        )
    )

    with pytest.raises(SecretLeakError, match=f"cassette {path} was not written"):
        recorder.stop(passed=True)
    assert path.read_text() == "the previous recording\n"
    assert [p.name for p in tmp_path.iterdir()] == ["test_leak.json"]


@pytest.mark.parametrize("order", ["named-last", "named-first"])
def test_a_secret_one_call_passes_by_name_is_redacted_from_every_call(
    tmp_path: Path, order: str
) -> None:
    secret = "laterlearnedsecret0123"
    recorder = CaseRecorder(
        tmp_path / "test_chain.json",
        test_id="test_chain.py::test_chain",
        case_id=None,
        options=RecordingOptions(),
        record_command="pytest test_chain.py --promptflow-record=new",
    )
    calls = [
        StepCall(0, "note", None, {"note": f"the key is {secret}"}, {}, output="ok"),
        StepCall(1, "sign_in", None, {"api_key": secret}, {}, output=f"signed in as {secret}"),
    ]
    recorder.run.calls += calls if order == "named-last" else calls[::-1]

    comparable = recorder.comparable_run()

    written = json.dumps([(call.inputs, call.output) for call in comparable.calls])
    assert secret not in written
    assert written.count(REDACTED) == 3
    assert [call.inputs for call in recorder.run.calls] != [
        call.inputs for call in comparable.calls
    ], "the run itself is left as it was"


# -- bodies and files ---------------------------------------------------------------------


def test_a_gzip_response_is_stored_decoded_and_replays(project: Project) -> None:
    project.llm.compress = True
    project.write(
        """
        import pytest, requests
        from endpoint import BASE_URL, OPENAI_KEY, openai_client, save

        @pytest.mark.promptflow
        def test_compressed():
            sdk = openai_client().chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi from the SDK"}]
            )
            raw = requests.post(
                BASE_URL + "/v1/chat/completions",
                headers={"Authorization": f"Bearer {OPENAI_KEY}", "Accept-Encoding": "gzip"},
                json={"model": "gpt-4o-mini",
                      "messages": [{"role": "user", "content": "Hi from requests"}]},
                timeout=10,
            )
            save("answers", [sdk.choices[0].message.content, raw.json()["id"]])
        """
    )
    project.record().assert_outcomes(passed=1)
    recorded = project.results()
    assert recorded["answers"][0] == "reply to 'Hi from the SDK', answer 1"

    for interaction in project.cassette("test_chain/test_compressed.json")["interactions"]:
        response = interaction["response"]
        assert response["headers"] == {"content-type": ["application/json"]}
        assert response["body"]["object"] == "chat.completion"
    with project.llm.offline():
        project.run().assert_outcomes(passed=1)
    assert project.results() == recorded


def test_rewriting_a_recorded_run_leaves_no_temporary_file_behind(project: Project) -> None:
    project.write(ASK_ONCE)
    project.record().assert_outcomes(passed=1)
    first = project.files()
    project.record().assert_outcomes(passed=1)

    assert project.files() != first, "the second answer differs, so the file was rewritten"
    names = [p.relative_to(project.cassettes).as_posix() for p in project.cassettes.rglob("*")]
    assert sorted(names) == ["test_chain", CASSETTE]


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temporary_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs" / "test_ask.json"
    write_atomically(path, '{"format": 1}\n')

    with pytest.raises(UnicodeEncodeError):
        write_atomically(path, '{"format": 1, "broken": "\ud800"}\n')

    assert path.read_text() == '{"format": 1}\n'
    assert [p.name for p in path.parent.iterdir()] == ["test_ask.json"]
