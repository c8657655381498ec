"""What the benchmarks share: a generated project's timing plugin, a timed pytest run and
the local chat completions server that projects are recorded from.

Times cover the run of the tests (from the end of collection to the end of the
session), so interpreter start-up and imports weigh on no side: the wall-clock time,
and the CPU time of the pytest process, which other jobs on the machine disturb less.
The plugin also notes the process's peak resident memory.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

TIMER_PLUGIN = """
import json, resource, time

def _peak_rss_kib():
    # Linux keeps ru_maxrss across exec, so a child of a large process would report the
    # parent's peak; VmHWM belongs to this process's own memory.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

def pytest_collection_finish(session):
    session.config._bench_started = (time.perf_counter(), time.process_time())

def pytest_sessionfinish(session):
    started = getattr(session.config, "_bench_started", None)
    if started is not None:
        wall, cpu = started
        with open("elapsed.json", "w") as stream:
            json.dump(
                {
                    "seconds": time.perf_counter() - wall,
                    "cpu_seconds": time.process_time() - cpu,
                    "peak_rss_kib": _peak_rss_kib(),
                },
                stream,
            )
"""


@dataclass(frozen=True)
class Timing:
    """One pytest run of a generated project, start-up excluded."""

    seconds: float
    """Wall-clock time of the tests."""
    cpu_seconds: float
    """CPU time the pytest process spent running the tests."""
    peak_rss_mib: float
    """Peak resident memory of the pytest process, start-up included."""


class TimedRuns:
    """The medians of a benchmark side's timed runs (``runs``)."""

    runs: list[Timing]

    @property
    def cpu_s(self) -> float:
        return statistics.median(run.cpu_seconds for run in self.runs)

    @property
    def wall_s(self) -> float:
        return statistics.median(run.seconds for run in self.runs)

    @property
    def rss_mib(self) -> float:
        return statistics.median(run.peak_rss_mib for run in self.runs)


def client_fixture(base_url: str) -> str:
    """A conftest fixture ``client``: the openai SDK pointed at the local server.

    The client is built when the conftest is imported, as the floor's is, so that
    building its HTTP transport (an SSL context, tens of milliseconds) weighs on no
    side's tests."""
    return f"""
import openai
import pytest

CLIENT = openai.OpenAI(
    base_url="{base_url}", api_key="sk-bench-0000000000000000", max_retries=0
)

@pytest.fixture(scope="session")
def client():
    return CLIENT
"""


def chat_completion(request: Request, content: str) -> Response:
    """The local server's OpenAI chat completion answering ``request`` with ``content``."""
    body = json.loads(request.data)
    completion = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52},
    }
    return Response(json.dumps(completion), content_type="application/json")


@contextmanager
def local_chat_completions(
    answer: Callable[[Request], Response], port: int = 0
) -> Iterator[HTTPServer]:
    """An OpenAI-compatible chat completions server on 127.0.0.1 (``port`` 0: any free
    one) that answers each request with ``answer``, for the block."""
    # A line per request would bury the benchmark's own output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = HTTPServer(host="127.0.0.1", port=port)
    server.expect_request("/v1/chat/completions", method="POST").respond_with_handler(answer)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


def timed_pytest(
    folder: Path, *args: str, environment: Mapping[str, str] = MappingProxyType({})
) -> tuple[Timing, str]:
    """Run pytest in ``folder`` (with ``environment`` added to this process's); how long
    its tests took, and what it printed."""
    environment = {**os.environ, **environment, "PYTHONDONTWRITEBYTECODE": "1"}
    environment.pop("CI", None)
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *args],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(
            f"pytest exited with {completed.returncode} in {folder}:\n"
            f"{completed.stdout[-3000:]}{completed.stderr[-3000:]}"
        )
    elapsed = json.loads((folder / "elapsed.json").read_text())
    timing = Timing(
        seconds=elapsed["seconds"],
        cpu_seconds=elapsed["cpu_seconds"],
        peak_rss_mib=elapsed["peak_rss_kib"] / 1024,
    )
    return timing, completed.stdout
