"""No credential reaches any file a run writes, nor its terminal output.

A hostile local server echoes back everything a request carried (headers, URL, query,
body), so that a credential the scrubber fails to learn shows up in responses, golden
values, reports, junit XML and the cache. The canaries come from environment variables,
so no source file of the generated project holds them: every file under the project is
searched.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llm_fakes import LocalAPI, openai_completion
from werkzeug import Request, Response

from pytest_promptflow import SecretLeakError
from pytest_promptflow.cassette.scrub import REDACTED, Scrubber, is_credential_name

CANARIES = {
    "PF_OPENAI": "sk-canaryopenai0123456789abcdef",
    "PF_CUSTOM": "customheadercanary0123",
    "PF_USER": "userinfousercanary01",
    "PF_USERINFO": "userinfopasswordcanary01",
    "PF_SIG": "sassigcanary0123456",
    "PF_CODE": "functionscodecanary01",
    "PF_SIGNATURE": "signaturecanary012345",
    "PF_AMZ_SIGNATURE": "amzsignaturecanary0123",
    "PF_AMZ_CREDENTIAL": "AKIACANARYCREDENTIAL01",
    "PF_AMZ_TOKEN": "amzsecuritytokencanary01",
    "PF_CLIENT_SECRET": "clientsecretcanary0123",
    "PF_PASSWORD": "querypasswordcanary01",
    "PF_BODY_KEY": "bodyapikeycanary012345",
    "PF_FORM": "formclientsecretcanary01",
    "PF_MULTIPART": "multipartpasswordcanary01",
    "PF_COOKIE": "cookiesessioncanary0123",
    "PF_INPUT_KEY": "stepinputapikeycanary01",
}

PROJECT = '''
import base64, json, os
import httpx, pytest, requests
from openai import OpenAI
from pytest_promptflow import step

URL = os.environ["PF_URL"]
S = {name: os.environ[name] for name in os.environ if name.startswith("PF_")}


@step
def ask(question: str, api_key: str) -> str:
    """An SDK call with a custom credential header; the answer echoes it."""
    client = OpenAI(
        base_url=URL + "/v1", api_key=S["PF_OPENAI"], max_retries=0,
        default_headers={"X-My-Token": S["PF_CUSTOM"]},
    )
    reply = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": question}]
    )
    return reply.choices[0].message.content


@step
def raw_calls() -> list:
    with_userinfo = URL.replace("http://", f"http://{S['PF_USER']}:{S['PF_USERINFO']}@")
    query = (
        f"sig={S['PF_SIG']}&code={S['PF_CODE']}&signature={S['PF_SIGNATURE']}"
        f"&X-Amz-Signature={S['PF_AMZ_SIGNATURE']}&X-Amz-Credential={S['PF_AMZ_CREDENTIAL']}"
        f"&X-Amz-Security-Token={S['PF_AMZ_TOKEN']}&client_secret={S['PF_CLIENT_SECRET']}"
        f"&password={S['PF_PASSWORD']}&alt=json"
    )
    answers = [
        httpx.post(with_userinfo + "/v1/echo?" + query,
                   json={"api_key": S["PF_BODY_KEY"], "prompt": "hi"}).json(),
        requests.post(URL + "/v1/echo", timeout=10,
                      data={"client_secret": S["PF_FORM"], "purpose": "x"}).json(),
        requests.post(
            URL + "/v1/echo", timeout=10,
            headers={"Authorization": "Bearer " + S["PF_OPENAI"]},
            data={"password": S["PF_MULTIPART"]},
            files={"file": ("k.bin", b"\\x00\\xff" + ("Bearer " + S["PF_OPENAI"]).encode())},
        ).json(),
        httpx.get(URL + "/v1/echo", headers={"Cookie": f"session={S['PF_COOKIE']}"}).json(),
    ]
    binary = httpx.post(URL + "/v1/binary", headers={"Authorization": "Bearer " + S["PF_OPENAI"]},
                        content=b"\\x00\\xff" + S["PF_OPENAI"].encode())
    return answers + [base64.b64encode(binary.content).decode()]


@pytest.mark.promptflow
def test_chain():
    ask("what is my token?", api_key=S["PF_INPUT_KEY"])
    raw_calls()


def test_zz_fails_with_a_learned_secret_in_its_message():
    print("the header was", S["PF_CUSTOM"])
    assert S["PF_CUSTOM"] == "something else"
'''


class EchoServer(LocalAPI):
    """Answers every request with everything it carried, so that leaks show."""

    def __init__(self) -> None:
        self.round = 1
        super().__init__()

    def _install(self) -> None:
        self.server.expect_request(re.compile(".*")).respond_with_handler(self._answer)

    def _answer(self, request: Request) -> Response:
        if request.path == "/v1/binary":
            # A binary answer that holds the credential the request carried.
            raw = b"\x89PNG\x00" + request.headers.get("Authorization", "").encode()
            return Response(raw + request.get_data(), content_type="application/octet-stream")
        echo = {
            "round": self.round,
            "note": "" if self.round == 1 else "an entirely different answer, " * 20,
            "headers": dict(request.headers),
            "url": request.url,
            "body": request.get_data().decode("utf-8", "replace"),
        }
        if request.path == "/v1/chat/completions":
            completion = openai_completion("chatcmpl-1", json.dumps(echo), {"total_tokens": 1})
            return Response(json.dumps(completion), content_type="application/json")
        return Response(json.dumps(echo), content_type="application/json")


@pytest.fixture
def echo(monkeypatch: pytest.MonkeyPatch) -> Iterator[EchoServer]:
    with EchoServer() as server:
        monkeypatch.delenv("CI", raising=False)
        monkeypatch.setenv("PF_URL", server.url)
        for name, value in CANARIES.items():
            monkeypatch.setenv(name, value)
        yield server


def written_files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def assert_no_canary(root: Path, *outputs: pytest.RunResult) -> None:
    for name, content in written_files(root).items():
        for canary in CANARIES.values():
            assert canary.encode() not in content, f"{canary} leaked into {name}"
            # Nor base64-encoded, as a binary body would hold it.
            assert base64.b64encode(canary.encode())[:20] not in content, f"{canary} in {name}"
    for result in outputs:
        text = result.stdout.str() + result.stderr.str()
        for canary in CANARIES.values():
            assert canary not in text, f"{canary} leaked into the terminal output"


def test_no_credential_reaches_any_file_a_run_writes_nor_the_terminal(
    pytester: pytest.Pytester, echo: EchoServer
) -> None:
    pytester.makepyfile(test_hostile=PROJECT)

    recorded = pytester.runpytest_subprocess(
        "--promptflow-record=all", "--promptflow-report=report.md", "--junitxml=junit1.xml"
    )
    recorded.assert_outcomes(passed=1, failed=1)
    run = json.loads((pytester.path / "cassettes/test_hostile/test_chain.json").read_text())
    assert len(run["interactions"]) == 6

    # The server answers differently now: the chain drifts, so the report and the failure
    # message show golden and new values side by side.
    echo.round = 2
    drifted = pytester.runpytest_subprocess(
        "--promptflow-record=all", "--promptflow-report=drift.md", "--junitxml=junit2.xml"
    )
    drifted.assert_outcomes(failed=2)
    drifted.stdout.fnmatch_lines(["*drift from the golden run*"])
    assert "round" in (pytester.path / "drift.md").read_text(), "values are in the report"

    echo.close()
    replayed = pytester.runpytest_subprocess(
        "--promptflow-report=report.json", "--junitxml=junit3.xml", "-rA"
    )
    # The drifted run failed only at the gate, so it kept its re-recording: the drift
    # holds offline, and its message shows the values again.
    replayed.assert_outcomes(failed=2)
    replayed.stdout.fnmatch_lines(["*drift from the golden run*"])

    files = written_files(pytester.path)
    for expected in ["report.md", "drift.md", "report.json", "junit1.xml", "junit3.xml"]:
        assert expected in files
    assert any(name.startswith(".pytest_cache/") for name in files)
    assert b"&lt;redacted&gt;" in files["junit1.xml"], "the failure message was scrubbed"
    assert_no_canary(pytester.path, recorded, drifted, replayed)


def test_what_was_redacted_still_replays_the_same_answers(
    pytester: pytest.Pytester, echo: EchoServer
) -> None:
    pytester.makepyfile(
        test_hostile=PROJECT
        + """
@pytest.mark.promptflow
def test_answers():
    answers = [ask("again", api_key=S["PF_INPUT_KEY"]), *raw_calls()]
    (pathlib.Path(__file__).parent / "answers.json").write_text(json.dumps(answers))
import pathlib
"""
    )
    pytester.runpytest("--promptflow-record=all", "-k", "test_answers").assert_outcomes(passed=1)
    answers = json.loads((pytester.path / "answers.json").read_text())
    (pytester.path / "answers.json").unlink()

    echo.close()
    pytester.runpytest("-k", "test_answers").assert_outcomes(passed=1)
    replayed = json.loads((pytester.path / "answers.json").read_text())
    (pytester.path / "answers.json").unlink()

    # What replays is what was stored: each answer as recorded, its secrets redacted.
    run = json.loads((pytester.path / "cassettes/test_hostile/test_answers.json").read_text())
    chat, *echoes, binary_stored = [i["response"] for i in run["interactions"]]
    stored = [chat["body"]["choices"][0]["message"]["content"], *(e["body"] for e in echoes)]
    *texts, binary = answers
    *texts_again, binary_again = replayed
    assert texts_again == stored
    assert base64.b64decode(binary_again) == base64.b64decode(binary_stored["body_base64"])
    # What was live held the secrets; what replays holds the marker in their place.
    for live, again in zip(texts, texts_again, strict=True):
        again_text = json.dumps(again)
        assert all(canary not in again_text for canary in CANARIES.values())
        assert any(canary in json.dumps(live) for canary in CANARIES.values())
        assert REDACTED in again_text
    key = CANARIES["PF_OPENAI"].encode()
    assert base64.b64decode(binary_again) == (
        base64.b64decode(binary)
        .replace(b"Bearer " + key, REDACTED.encode())
        .replace(key, REDACTED.encode())
    )
    assert CANARIES["PF_CUSTOM"] in answers[0], "the server echoed the custom header"
    urls = [i["request"]["url"] for i in run["interactions"]]
    assert f"{echo.url}/v1/echo?alt=json" in urls, "credential parameters and userinfo gone"
    assert run["steps"][0]["inputs"] == {"question": "again", "api_key": REDACTED}


# -- how a value is judged a credential ----------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "X-My-Token",
        "x-api-key",
        "api-key",
        "Ocp-Apim-Subscription-Key",
        "X-Amz-Security-Token",
        "X-Amz-Signature",
        "X-Amz-Credential",
        "client_secret",
        "password",
        "sig",
        "apiKey",
        "accessToken",
        "x-session-id",
        "Cookie",
        "openai-organization",
        "AWS_SECRET_ACCESS_KEY",
    ],
)
def test_a_credential_is_judged_by_its_name(name: str) -> None:
    assert is_credential_name(name)


@pytest.mark.parametrize(
    "name",
    ["content-type", "user-agent", "accept-encoding", "max_tokens", "author", "model", "code"],
)
def test_names_that_only_look_alike_are_not_credentials(name: str) -> None:
    # ``code`` is a credential only as a query parameter (Azure Functions' key).
    assert not is_credential_name(name)


def test_harmless_values_under_credential_names_are_never_learned() -> None:
    scrubber = Scrubber()
    scrubber.learn_secrets(
        [
            ("X-Auth-Encoding", "gzip"),
            ("X-Token-Format", "application/json"),
            ("X-Session-Timeout", "360000000"),
            ("X-Auth-Client", "python-httpx/0.28.1"),
            ("X-Api-Key", "short"),
            ("User-Agent", "OpenAI/Python 1.40.0"),
        ],
        "https://x.test/v1?token=true",
    )
    text = "gzip application/json 360000000 python-httpx/0.28.1 short OpenAI/Python 1.40.0 true"

    assert scrubber.text(text) == text
    assert not scrubber.knows_secrets


def test_every_part_of_an_authorization_is_learned() -> None:
    scrubber = Scrubber()
    basic = base64.b64encode(b"apiuser01:basicpassword01").decode()
    scrubber.learn_secrets(
        [
            ("Authorization", f"Basic {basic}"),
            ("Proxy-Authorization", "Bearer proxytoken0123"),
            ("Cookie", "a=cookieone012345; b=cookietwo012345"),
        ],
        "https://urluser0123:urlpassword01@x.test/v1",
    )

    text = "apiuser01 basicpassword01 proxytoken0123 cookieone012345 cookietwo012345"
    assert scrubber.text(text) == " ".join([REDACTED] * 5)
    assert scrubber.text("urluser0123 urlpassword01") == f"{REDACTED} {REDACTED}"
    assert scrubber.url("https://urluser0123:urlpassword01@x.test/v1?sig=abc&a=1") == (
        "https://x.test/v1?a=1"
    )


def test_credential_fields_of_bodies_forms_and_multipart_are_learned_and_redacted() -> None:
    scrubber = Scrubber()
    body = scrubber.fields(
        {
            "messages": [{"role": "user", "content": "use bodysecret0123 please"}],
            "auth": {"client_secret": "bodysecret0123", "password": "short"},
            "max_tokens": 10,
            "author": "Ada Lovelace",
        }
    )
    assert body == {
        "messages": [{"role": "user", "content": f"use {REDACTED} please"}],
        "auth": {"client_secret": REDACTED, "password": REDACTED},
        "max_tokens": 10,
        "author": "Ada Lovelace",
    }
    assert scrubber.form("grant_type=client&client_secret=formsecret0123") == (
        "grant_type=client&client_secret=%3Credacted%3E"
    )
    assert scrubber.text("formsecret0123") == REDACTED
    multipart = (
        b'--b\r\nContent-Disposition: form-data; name="api_key"\r\n\r\nmultisecret0123\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n'
        b"\x00\xffmultisecret0123\r\n--b--\r\n"
    )
    redacted = scrubber.multipart(multipart)
    assert b'name="api_key"\r\n\r\n<redacted>\r\n' in redacted
    assert scrubber.binary(redacted).count(b"multisecret0123") == 0


def test_a_secret_is_found_inside_binary_and_base64_bodies() -> None:
    scrubber = Scrubber()
    scrubber.learn_secrets([("X-Api-Key", "binarysecret0123")], "https://x.test/")
    raw = b"\x89PNG\x00\xffbinarysecret0123\x00"

    assert scrubber.binary(raw) == b"\x89PNG\x00\xff<redacted>\x00"
    encoded = base64.b64encode(raw).decode()
    assert base64.b64decode(scrubber.base64_body(encoded)) == scrubber.binary(raw)
    assert base64.b64decode(scrubber.json({"image": encoded})["image"]) == scrubber.binary(raw)
    data_url = "data:image/png;base64," + encoded
    scrubbed = scrubber.json(data_url)
    assert scrubbed.startswith("data:image/png;base64,")
    assert b"binarysecret0123" not in base64.b64decode(scrubbed.split(",", 1)[1])


def test_the_final_scan_finds_a_secret_hidden_in_base64_and_names_only_its_place() -> None:
    scrubber = Scrubber()
    scrubber.learn_secrets([("X-Api-Key", "base64secret0123")], "https://x.test/")
    hidden = base64.b64encode(b"\x00\x01base64secret0123\x02").decode()
    document: dict[str, Any] = {"interactions": [{"response": {"body_base64": hidden}}]}

    with pytest.raises(SecretLeakError) as raised:
        scrubber.check(json.dumps(document), "cassette a.json", document)

    message = str(raised.value)
    assert message.startswith(
        "cassette a.json was not written: interactions[0].response.body_base64 still holds"
    )
    assert "base64secret0123"[:4] not in message.replace("base64", "")
    assert hidden[:8] not in message

    keyed = {"headers": {"base64secret0123": "x"}}
    with pytest.raises(SecretLeakError) as raised:
        scrubber.check(json.dumps(keyed), "cassette a.json", keyed)
    assert str(raised.value).startswith("cassette a.json was not written: a key of headers ")
    assert "secret0123" not in str(raised.value)


def test_names_from_the_ini_file_are_credentials_too(
    pytester: pytest.Pytester, echo: EchoServer
) -> None:
    pytester.makeini("[pytest]\npromptflow_secret_names =\n    X-Tenant\n    workspace\n")
    pytester.makepyfile(
        test_named="""
        import httpx, os, pytest

        @pytest.mark.promptflow
        def test_named():
            httpx.post(os.environ["PF_URL"] + "/v1/echo?workspace=wsid0123456789",
                       headers={"X-Tenant": "tenantcanary0123"}, json={"prompt": "hi"})
        """
    )
    pytester.runpytest("--promptflow-record=all").assert_outcomes(passed=1)

    text = (pytester.path / "cassettes/test_named/test_named.json").read_text()
    assert "tenantcanary0123" not in text
    assert "wsid0123456789" not in text
    assert REDACTED in text, "the server echoed the header, which was redacted"
