"""Replay speed: pytest-promptflow against pytest-recording + vcrpy, side by side.

Both replay the same interactions, recorded once from a local OpenAI-compatible server,
through the real openai SDK, with the server stopped. pytest-recording is configured as
an LLM suite needs it: YAML cassettes, matching on method, scheme, host, port, path,
query and body, one cassette per test. Times cover the run of the tests (setup, call
and teardown of every test), not interpreter start-up, so imports weigh on neither.

    python bench/replay.py [--repeats 5] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

from harness import TIMER_PLUGIN, chat_completion, client_fixture, timed_pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

PORT = 8761
BASE_URL = f"http://127.0.0.1:{PORT}/v1"


CLIENT_FIXTURE = client_fixture(BASE_URL)

OURS_TEST = """
import pytest
from pytest_promptflow import Prompt, step

ASK = Prompt.from_string(
    "Ticket {{{{ case }}}}, question {{{{ number }}}}: which product is the customer "
    "writing about, how urgent is it, and what should support do next?",
    name="ask",
)

@step(prompt=ASK)
def ask(case: int, number: int, client) -> str:
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        temperature=0,
        messages=[{{"role": "user", "content": ASK.render(case=case, number=number)}}],
    )
    return reply.choices[0].message.content

@pytest.mark.promptflow
@pytest.mark.parametrize("case", range({cases}))
def test_case(case, client):
    for number in range({calls}):
        assert ask(case, number, client).startswith("Answer")
"""

BASELINE_TEST = """
import pytest
from jinja2 import Template

ASK = Template(
    "Ticket {{{{ case }}}}, question {{{{ number }}}}: which product is the customer "
    "writing about, how urgent is it, and what should support do next?"
)

def ask(case, number, client):
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        temperature=0,
        messages=[{{"role": "user", "content": ASK.render(case=case, number=number)}}],
    )
    return reply.choices[0].message.content

@pytest.fixture(scope="module")
def vcr_config():
    return {{
        "match_on": ["method", "scheme", "host", "port", "path", "query", "body"],
        "filter_headers": ["authorization"],
        "decode_compressed_response": True,
    }}

@pytest.mark.vcr
@pytest.mark.parametrize("case", range({cases}))
def test_case(case, client):
    for number in range({calls}):
        assert ask(case, number, client).startswith("Answer")
"""


@dataclass(frozen=True)
class Scenario:
    name: str
    cases: int
    calls: int


SCENARIOS = (
    Scenario("200 cases x 5 calls, one cassette per case", cases=200, calls=5),
    Scenario("1 case x 1000 calls, one large cassette", cases=1, calls=1000),
)


def completion(request: Request) -> Response:
    question = json.loads(request.data)["messages"][-1]["content"]
    return chat_completion(request, f"Answer to: {question[:48]}")


def write_project(folder: Path, test_source: str) -> None:
    folder.mkdir(parents=True)
    (folder / "conftest.py").write_text(CLIENT_FIXTURE + TIMER_PLUGIN)
    (folder / "test_suite.py").write_text(textwrap.dedent(test_source))
    (folder / "pytest.ini").write_text("[pytest]\n")


def run_pytest(folder: Path, *args: str) -> float:
    return timed_pytest(folder, *args)[0]


OURS_PLUGINS = ("-p", "no:recording")
BASELINE_PLUGINS = ("-p", "no:promptflow")


def measure(scenario: Scenario, workdir: Path, repeats: int) -> dict[str, object]:
    ours = workdir / "ours"
    baseline = workdir / "baseline"
    write_project(ours, OURS_TEST.format(cases=scenario.cases, calls=scenario.calls))
    write_project(baseline, BASELINE_TEST.format(cases=scenario.cases, calls=scenario.calls))

    server = HTTPServer(host="127.0.0.1", port=PORT)
    server.expect_request("/v1/chat/completions", method="POST").respond_with_handler(completion)
    server.start()
    try:
        run_pytest(ours, *OURS_PLUGINS, "--promptflow-record=all")
        run_pytest(baseline, *BASELINE_PLUGINS, "--record-mode=all")
    finally:
        server.clear()
        server.stop()

    ours_times, baseline_times = [], []
    for _ in range(repeats):
        ours_times.append(run_pytest(ours, *OURS_PLUGINS))
        baseline_times.append(run_pytest(baseline, *BASELINE_PLUGINS, "--record-mode=none"))
    ours_s = statistics.median(ours_times)
    baseline_s = statistics.median(baseline_times)
    return {
        "name": scenario.name,
        "interactions_per_cassette": scenario.calls,
        "ours_s": round(ours_s, 4),
        "baseline_s": round(baseline_s, 4),
        "speedup": round(baseline_s / ours_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per tool (median kept)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    arguments = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    results = []
    with tempfile.TemporaryDirectory(prefix="promptflow-bench-") as temporary:
        for position, scenario in enumerate(SCENARIOS):
            results.append(measure(scenario, Path(temporary) / str(position), arguments.repeats))

    header = (
        f"{'scenario':<44} {'calls/cassette':>14} {'promptflow s':>13} {'vcrpy s':>9} "
        f"{'speedup':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in results:
        print(
            f"{row['name']:<44} {row['interactions_per_cassette']:>14} "
            f"{row['ours_s']:>13.3f} {row['baseline_s']:>9.3f} {row['speedup']:>7.1f}x"
        )
    if arguments.json is not None:
        arguments.json.write_text(json.dumps({"scenarios": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
