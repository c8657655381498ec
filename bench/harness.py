"""What the benchmarks share: a generated project's timing plugin and a timed pytest run.

Times cover the run of the tests (from the end of collection to the end of the
session), so interpreter start-up and imports weigh on no side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from werkzeug import Request, Response

TIMER_PLUGIN = """
import json, time

def pytest_collection_finish(session):
    session.config._bench_started = time.perf_counter()

def pytest_sessionfinish(session):
    started = getattr(session.config, "_bench_started", None)
    if started is not None:
        with open("elapsed.json", "w") as stream:
            json.dump({"seconds": time.perf_counter() - started}, stream)
"""


def client_fixture(base_url: str) -> str:
    """A conftest fixture ``client``: the openai SDK pointed at the local server."""
    return f"""
import openai
import pytest

@pytest.fixture(scope="session")
def client():
    return openai.OpenAI(base_url="{base_url}", api_key="sk-bench-0000000000000000", max_retries=0)
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


def timed_pytest(folder: Path, *args: str) -> tuple[float, str]:
    """Run pytest in ``folder``; the seconds its tests took, and what it printed."""
    environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
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
            f"pytest exited with {completed.returncode} in {folder}:\n{completed.stdout[-3000:]}"
        )
    seconds: float = json.loads((folder / "elapsed.json").read_text())["seconds"]
    return seconds, completed.stdout
