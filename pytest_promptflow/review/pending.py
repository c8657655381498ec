"""Pending changes: what a session found that accepting would take, kept for review.

Every session that finds drift, budget overruns or broken expected values writes them to
``promptflow/pending`` in pytest's cache directory (``.pytest_cache/v/promptflow/pending``):
per test, case and step, the changes as the JSON report describes them, the golden step
calls that accepting would write, and the hash of the recorded run they apply to. A
session replaces the entries of the tests it ran and keeps the others.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_promptflow.errors import PromptflowError

PENDING_KEY = "promptflow/pending"
"""The key of the pending changes in pytest's cache (``config.cache``)."""
PENDING_FORMAT = 1
DEFAULT_CACHE_DIR = ".pytest_cache"


def step_accept_command(test: str, step: str) -> str:
    """The command that accepts one step of one test case from the pending changes,
    without running the tests."""
    return shlex.join(
        ["python", "-m", "pytest_promptflow", "accept", "--test", test, "--step", step]
    )


def pending_path(cache_dir: Path) -> Path:
    """Where pytest's cache keeps the value of ``PENDING_KEY``."""
    return cache_dir / "v" / PENDING_KEY


def file_hash(path: Path) -> str | None:
    """The SHA-256 of a recorded run's bytes, None when there is no such file."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


@dataclass
class PendingChange:
    """One step of one test case that changed, and what accepting it would write."""

    test: str
    case: str | None
    step: str
    file: str
    """The recorded run, relative to the rootdir, with ``/`` separators."""
    hash: str
    """The SHA-256 of the recorded run when the session that found the change ended."""
    drifts: list[dict[str, Any]] = field(default_factory=list)
    """The step's changes, each occurrence as the JSON report's ``cases[].steps[]``."""
    budget: dict[str, Any] | None = None
    """The step's usage, as the JSON report's ``usage_cases[].steps[]``, when over budget."""
    golden: list[dict[str, Any]] = field(default_factory=list)
    """Every golden step call of the case as accepting would write it (the recorded run's
    ``steps``): accepting this step takes its calls from here."""
    prompt_sources: dict[str, str] = field(default_factory=dict)
    whole_module: bool = False
    """Whether the session that found it saw every test of its module: only then may
    accepting it drop the recordings its step no longer uses, as ``--promptflow-accept``
    prunes only what a session that saw every test knows to be unused."""

    @property
    def key(self) -> tuple[str, str]:
        return self.test, self.step

    @property
    def causes(self) -> list[str]:
        found = [drift["cause"] for drift in self.drifts]
        return list(dict.fromkeys(found)) or ([self.budget["cause"]] if self.budget else [])

    @property
    def broken(self) -> bool:
        return any(
            change.get("expected") == "broken"
            for drift in self.drifts
            for change in drift["changes"]
        )

    @property
    def kinds(self) -> list[str]:
        """What makes it pending: ``drift``, ``broken`` (an expected value), ``over budget``."""
        kinds = []
        if any(drift["drifted"] for drift in self.drifts):
            kinds.append("drift")
        if self.broken:
            kinds.append("broken")
        if self.budget is not None and self.budget.get("over_budget"):
            kinds.append("over budget")
        return kinds

    def to_json(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "case": self.case,
            "step": self.step,
            "file": self.file,
            "hash": self.hash,
            "drifts": self.drifts,
            "budget": self.budget,
            # As text: pytest's cache sorts the keys of what it stores, and accepting must
            # write each golden value with its keys in the order the recorder wrote them.
            "golden": json.dumps(self.golden, ensure_ascii=False),
            "prompt_sources": self.prompt_sources,
            "whole_module": self.whole_module,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PendingChange:
        return cls(
            data["test"],
            data["case"],
            data["step"],
            data["file"],
            data["hash"],
            list(data.get("drifts", [])),
            data.get("budget"),
            _golden_calls(data.get("golden", [])),
            dict(data.get("prompt_sources", {})),
            data.get("whole_module") is True,
        )


def _golden_calls(stored: object) -> list[dict[str, Any]]:
    calls = json.loads(stored) if isinstance(stored, str) else stored
    if not isinstance(calls, list):
        raise TypeError("golden is not a list of step calls")
    return calls


def pending_document(entries: Iterable[PendingChange]) -> dict[str, Any]:
    ordered = sorted(entries, key=lambda entry: (entry.file, entry.test, entry.step))
    return {"format": PENDING_FORMAT, "changes": [entry.to_json() for entry in ordered]}


def pending_changes(document: object) -> list[PendingChange]:
    """The entries of a pending document; anything else is no entry."""
    if not isinstance(document, dict) or document.get("format") != PENDING_FORMAT:
        return []
    return [PendingChange.from_json(entry) for entry in document.get("changes", [])]


def read_pending(path: Path) -> list[PendingChange]:
    """The pending changes at ``path``; none when there is no such file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as error:
        raise PromptflowError(f"pending changes {path} cannot be read: {error}") from None
    try:
        return pending_changes(json.loads(text))
    except (ValueError, KeyError, TypeError) as error:
        raise PromptflowError(
            f"pending changes {path} cannot be read ({error}); run the tests again to "
            "write them anew"
        ) from None


def replaced(
    existing: Sequence[PendingChange], ran: Iterable[str], found: Sequence[PendingChange]
) -> list[PendingChange]:
    """The pending changes after a session: those of the tests it did not run, kept, and
    what it found."""
    tests = set(ran)
    return [entry for entry in existing if entry.test not in tests] + list(found)
