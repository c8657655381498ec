"""Fixtures for the triage example: the OpenAI client the chain talks through.

By default every reply is replayed from the recorded runs under ``cassettes/``: no
server, no network, no API key. When recording (``--promptflow-record=new`` or
``all``), the replies come from the rule-based fake model in ``triage/fake_llm.py``,
served on a fixed local port so that recordings always carry the same URL. Set
``TRIAGE_BASE_URL`` (and ``OPENAI_API_KEY``) to record against a real
OpenAI-compatible API instead; no local server is started then.
"""

from __future__ import annotations

import os

import pytest
from openai import OpenAI
from pytest_httpserver import HTTPServer

from pytest_promptflow.plugin import record_mode
from triage import fake_llm

FAKE_LLM_HOST = "127.0.0.1"
DEFAULT_FAKE_LLM_PORT = 8642
# Only ever sent to the local fake model, which checks that a key is present but not
# what it is; the recorder redacts it all the same.
PLACEHOLDER_API_KEY = "sk-example-local-key-not-a-secret"

fake_llm_key = pytest.StashKey[HTTPServer]()


def _base_url() -> str:
    port = int(os.environ.get("TRIAGE_FAKE_LLM_PORT", DEFAULT_FAKE_LLM_PORT))
    return os.environ.get("TRIAGE_BASE_URL") or f"http://{FAKE_LLM_HOST}:{port}/v1"


def _serves_fake_llm(config: pytest.Config) -> bool:
    # One server for the whole run: the pytest-xdist controller (or a plain run) serves
    # it, and workers send their requests to the same URL.
    return (
        record_mode(config) != "none"
        and not os.environ.get("TRIAGE_BASE_URL")
        and not hasattr(config, "workerinput")
    )


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if not _serves_fake_llm(config):
        return
    port = int(os.environ.get("TRIAGE_FAKE_LLM_PORT", DEFAULT_FAKE_LLM_PORT))
    server = HTTPServer(host=FAKE_LLM_HOST, port=port)
    fake_llm.install(server)
    try:
        server.start()
    except SystemExit:
        # werkzeug exits instead of raising when the port is taken.
        raise pytest.UsageError(
            f"cannot start the fake LLM on {FAKE_LLM_HOST}:{port}: the port is in use; "
            "free it or choose another with TRIAGE_FAKE_LLM_PORT (and record again)"
        ) from None
    config.stash[fake_llm_key] = server


def pytest_unconfigure(config: pytest.Config) -> None:
    server = config.stash.get(fake_llm_key, None)
    if server is not None:
        server.clear()
        server.stop()


@pytest.fixture(scope="session")
def llm_client() -> OpenAI:
    """The OpenAI client the chain talks through."""
    return OpenAI(
        base_url=_base_url(),
        api_key=os.environ.get("OPENAI_API_KEY", PLACEHOLDER_API_KEY),
        # A retry would hide a failing request and double the recorded traffic.
        max_retries=0,
    )
