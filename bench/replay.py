"""Replay speed: pytest-promptflow, pytest-recording + vcrpy and the in-memory floor.

All three answer the same requests of the real openai SDK, recorded once from a local
OpenAI-compatible server, with the server stopped:

- pytest-promptflow: one recorded run per case, replayed through the plugin;
- pytest-recording + vcrpy, configured as an LLM suite needs it: YAML cassettes,
  matching on method, scheme, host, port, path, query and body, one cassette per test;
  it is skipped above 1,000 calls per cassette, where its time grows with the square
  of the cassette's size;
- the floor: the same SDK on an ``httpx2.MockTransport`` that answers each request
  body from a dict loaded before the tests start, with no cassette layer at all. What
  pytest-promptflow costs beyond it is the price of recording and replaying.

Times are the CPU time of the pytest process while it runs the tests (setup, call and
teardown of every test), not interpreter start-up or collection (each side builds its
client when its conftest is imported); runs of the three sides alternate, and the
median of each side is kept. Peak memory is the pytest
process's peak resident set, start-up included.

    python bench/replay.py [--repeats 5] [--scenario 200x5 ...] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness import (
    TIMER_PLUGIN,
    TimedRuns,
    Timing,
    chat_completion,
    client_fixture,
    local_chat_completions,
    timed_pytest,
)
from werkzeug import Request, Response

RECORDING_LIMIT = 1000
"""Calls per cassette above which pytest-recording is not measured."""

ASK_TEXT = """
ASK_TEXT = (
    "Ticket {{ case }}, question {{ number }}: which product is the customer "
    "writing about, how urgent is it, and what should support do next?"
)
"""

ASK_CALL = """
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        temperature=0,
        messages=[{"role": "user", "content": ASK.render(case=case, number=number)}],
    )
    return reply.choices[0].message.content
"""

SUITE = """
@pytest.mark.parametrize("case", range(CASES))
def test_case(case, client):
    for number in range(CALLS):
        assert ask(case, number, client).startswith("Answer")
"""

PROMPTFLOW_TEST = (
    """
import pytest
from pytest_promptflow import Prompt, step
"""
    + ASK_TEXT
    + """
ASK = Prompt.from_string(ASK_TEXT, name="ask")

@step(prompt=ASK)
def ask(case: int, number: int, client) -> str:"""
    + ASK_CALL
    + "\n@pytest.mark.promptflow"
    + SUITE
)

PLAIN_ASK = (
    """
import pytest
from jinja2 import Template
"""
    + ASK_TEXT
    + """
ASK = Template(ASK_TEXT)

def ask(case, number, client):"""
    + ASK_CALL
)

RECORDING_TEST = (
    PLAIN_ASK
    + """
@pytest.fixture(scope="module")
def vcr_config():
    return {
        "match_on": ["method", "scheme", "host", "port", "path", "query", "body"],
        "filter_headers": ["authorization"],
        "decode_compressed_response": True,
    }

@pytest.mark.vcr"""
    + SUITE
)

FLOOR_TEST = PLAIN_ASK + SUITE

FLOOR_CLIENT = """
import json
import os

import httpx2
import openai
import pytest

RESPONSES = "responses.json"
RECORDING = os.environ.get("FLOOR_RECORD") == "1"
# Request body -> response body, read before the tests start.
TABLE: dict[bytes, bytes] = {}
if not RECORDING:
    with open(RESPONSES, encoding="utf-8") as stream:
        TABLE = {k.encode(): v.encode() for k, v in json.load(stream).items()}
HEADERS = {"content-type": "application/json"}


def answer(request):
    return httpx2.Response(200, headers=HEADERS, content=TABLE[request.content])


class Recorder(httpx2.BaseTransport):
    def __init__(self):
        self.inner = httpx2.HTTPTransport()

    def handle_request(self, request):
        response = self.inner.handle_request(request)
        body = response.read()
        TABLE[request.content] = body
        return httpx2.Response(response.status_code, headers=HEADERS, content=body)


def pytest_unconfigure(config):
    if RECORDING:
        with open(RESPONSES, "w", encoding="utf-8") as stream:
            json.dump({k.decode(): v.decode() for k, v in TABLE.items()}, stream)


CLIENT = openai.OpenAI(
    base_url="BASE_URL",
    api_key="sk-bench-0000000000000000",
    max_retries=0,
    http_client=httpx2.Client(transport=Recorder() if RECORDING else httpx2.MockTransport(answer)),
)


@pytest.fixture(scope="session")
def client():
    return CLIENT
"""


@dataclass(frozen=True)
class Scenario:
    key: str
    name: str
    cases: int
    calls: int

    @property
    def with_recording(self) -> bool:
        return self.calls <= RECORDING_LIMIT


SCENARIOS = (
    Scenario("200x5", "200 cases x 5 calls", cases=200, calls=5),
    Scenario("2000x5", "2,000 cases x 5 calls", cases=2000, calls=5),
    Scenario("1x1000", "1 case x 1,000 calls", cases=1, calls=1000),
    Scenario("1x10000", "1 case x 10,000 calls", cases=1, calls=10000),
)

PROMPTFLOW_PLUGINS = ("-p", "no:recording")
RECORDING_PLUGINS = ("-p", "no:promptflow")
FLOOR_PLUGINS = ("-p", "no:promptflow", "-p", "no:recording")


def completion(request: Request) -> Response:
    question = json.loads(request.data)["messages"][-1]["content"]
    return chat_completion(request, f"Answer to: {question[:48]}")


def write_project(folder: Path, conftest: str, test_source: str, scenario: Scenario) -> None:
    folder.mkdir(parents=True)
    (folder / "conftest.py").write_text(conftest + TIMER_PLUGIN)
    suite = test_source.replace("CASES", str(scenario.cases)).replace("CALLS", str(scenario.calls))
    (folder / "test_suite.py").write_text(suite)
    (folder / "pytest.ini").write_text("[pytest]\n")


@dataclass
class Side(TimedRuns):
    """One of the three ways to answer the suite's requests, and its measured runs."""

    folder: Path
    replay_args: tuple[str, ...]
    runs: list[Timing]

    def run(self) -> None:
        self.runs.append(timed_pytest(self.folder, *self.replay_args)[0])


def measure(scenario: Scenario, workdir: Path, repeats: int) -> dict[str, object]:
    sides = {
        "promptflow": Side(workdir / "promptflow", PROMPTFLOW_PLUGINS, []),
        "floor": Side(workdir / "floor", FLOOR_PLUGINS, []),
    }
    if scenario.with_recording:
        sides["recording"] = Side(
            workdir / "recording", (*RECORDING_PLUGINS, "--record-mode=none"), []
        )
    with local_chat_completions(completion) as server:
        base_url = f"http://127.0.0.1:{server.port}/v1"
        client = client_fixture(base_url)
        write_project(sides["promptflow"].folder, client, PROMPTFLOW_TEST, scenario)
        floor_client = FLOOR_CLIENT.replace("BASE_URL", base_url)
        write_project(sides["floor"].folder, floor_client, FLOOR_TEST, scenario)
        if "recording" in sides:
            write_project(sides["recording"].folder, client, RECORDING_TEST, scenario)
        timed_pytest(sides["promptflow"].folder, *PROMPTFLOW_PLUGINS, "--promptflow-record=all")
        timed_pytest(sides["floor"].folder, *FLOOR_PLUGINS, environment={"FLOOR_RECORD": "1"})
        if "recording" in sides:
            timed_pytest(sides["recording"].folder, *RECORDING_PLUGINS, "--record-mode=all")

    for _ in range(repeats):
        for side in sides.values():
            side.run()
    promptflow_s = sides["promptflow"].cpu_s
    floor_s = sides["floor"].cpu_s
    recording_s = sides["recording"].cpu_s if "recording" in sides else None
    return {
        "name": scenario.name,
        "cases": scenario.cases,
        "interactions_per_cassette": scenario.calls,
        "promptflow_s": round(promptflow_s, 4),
        "recording_s": None if recording_s is None else round(recording_s, 4),
        "floor_s": round(floor_s, 4),
        "speedup": None if recording_s is None else round(recording_s / promptflow_s, 2),
        "floor_ratio": round(promptflow_s / floor_s, 3),
        "promptflow_rss_mib": round(sides["promptflow"].rss_mib, 1),
        "floor_rss_mib": round(sides["floor"].rss_mib, 1),
    }


HEADER = (
    f"{'scenario':<22} {'promptflow s':>12} {'recording s':>12} {'floor s':>8} "
    f"{'speedup':>8} {'floor ratio':>11} {'promptflow MiB':>14} {'floor MiB':>10}"
)


def row_line(row: dict[str, object]) -> str:
    recording = row["recording_s"]
    speedup = row["speedup"]
    return (
        f"{row['name']:<22} {row['promptflow_s']:>12.3f} "
        f"{'skipped' if recording is None else f'{recording:.3f}':>12} "
        f"{row['floor_s']:>8.3f} "
        f"{'-' if speedup is None else f'{speedup:.1f}x':>8} "
        f"{row['floor_ratio']:>10.2f}x {row['promptflow_rss_mib']:>14.1f} "
        f"{row['floor_rss_mib']:>10.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per side (median kept)")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[scenario.key for scenario in SCENARIOS],
        help="measure only this scenario (repeatable; all four by default)",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    arguments = parser.parse_args()
    chosen = [s for s in SCENARIOS if not arguments.scenario or s.key in arguments.scenario]

    print(f"CPU seconds of the tests, median of {arguments.repeats} runs; peak RSS in MiB")
    print(HEADER)
    print("-" * len(HEADER), flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="promptflow-bench-") as temporary:
        for scenario in chosen:
            folder = Path(temporary) / scenario.key
            results.append(measure(scenario, folder, arguments.repeats))
            print(row_line(results[-1]), flush=True)
    if arguments.json is not None:
        arguments.json.write_text(json.dumps({"scenarios": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
