"""The framework integrations: each records a two-step chain against a local stand-in,
replays it with the stand-in stopped, and names the step whose prompt changed.

They need the ``frameworks`` extra. Without it they are skipped with the reason, except
in CI (the ``CI`` variable set), where a missing framework fails instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# chains.py holds the assertions every integration shares: rewritten, they say what differed.
pytest.register_assert_rewrite("chains")

from framework_server import FrameworkServer  # noqa: E402

# litellm downloads its model price map when imported unless told to use its own copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture
def llm() -> Iterator[FrameworkServer]:
    """The stand-in the integrations' projects (the ``project`` fixture) talk to."""
    with FrameworkServer() as server:
        yield server
