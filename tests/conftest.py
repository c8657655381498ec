"""Shared setup of the plugin's own tests."""

from __future__ import annotations

from collections.abc import Iterator

# An in-process pytester run forgets the modules first imported during it, and the
# hypothesis plugin imports hypothesis lazily at the end of every session: without
# these imports each generated project would pay about a second to import them again.
import anthropic  # noqa: F401
import httpx  # noqa: F401
import hypothesis  # noqa: F401
import openai  # noqa: F401
import pytest
import requests  # noqa: F401
from llm_fakes import FakeLLM, LocalAPI, Project

from pytest_promptflow.cassette import reading as cassette_reading


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture
def project(pytester: pytest.Pytester, llm: LocalAPI, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A generated project talking to ``llm``: the fake model, or the stand-in API a
    module or folder gives as its own ``llm`` fixture."""
    # A CI variable from the environment running these tests must not change their runs.
    monkeypatch.delenv("CI", raising=False)
    # A project reads only the URL of a stand-in other than FakeLLM; the tests that use
    # one script it themselves.
    return Project(pytester, llm)  # type: ignore[arg-type]


@pytest.fixture(params=["models", "careful", "compact"])
def reading(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every way a recorded run is read: a small plain file into models at once, any
    other small file carefully, part by part (here every file), and a large one into
    compact JSON parsed again when played (here every file counts as large)."""
    if request.param == "careful":
        monkeypatch.setattr(cassette_reading, "_validated_at_once", lambda data: None)
    if request.param == "compact":
        monkeypatch.setattr(cassette_reading, "COMPACT_ABOVE_BYTES", 0)
    return str(request.param)
