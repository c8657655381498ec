"""Accepting prunes the recorded runs no test owns any more, but only when the session
provably saw every test of the modules it prunes.

A recorded run is stale when no collected test or case of its module owns it. That
conclusion holds only if nothing narrowed the session to some tests of a module: a node
id, ``-k``, ``-m``, ``--deselect``, ``--lf``, ``--sw``, or any plugin that deselects or
drops items. Any of these and nothing is pruned; the summary says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_promptflow.cassette.format import stale_recorded_runs

NARROWING_OPTIONS = (
    ("keyword", "-k"),
    ("markexpr", "-m"),
    ("deselect", "--deselect"),
    ("lf", "--lf"),
    ("stepwise", "--sw"),
    ("stepwise_skip", "--sw-skip"),
)
"""pytest's option names (``config.option``) that select some tests of a module."""


@dataclass
class PruningScope:
    """What one session collected and what narrowed it, then what pruning did."""

    owned: dict[Path, set[Path]] = field(default_factory=dict)
    """Recorded runs every collected test owns, by the folder of its module."""
    collected: int = 0
    selected: int | None = None
    deselected: int = 0
    pruned: int = 0
    skipped_because: str | None = None

    def own(self, folder: Path, paths: Sequence[Path]) -> None:
        self.owned.setdefault(folder, set()).update(paths)

    def narrowed_by(self, options: Mapping[str, Any], arguments: Sequence[str]) -> str | None:
        """Why this session may not have seen every test of its modules, or None."""
        given = [flag for name, flag in NARROWING_OPTIONS if options.get(name)]
        if any("::" in argument for argument in arguments):
            given.insert(0, "a node id")
        if given:
            return f"the run selected some tests only ({', '.join(given)})"
        if self.deselected:
            return f"{self.deselected} collected test(s) were deselected"
        if self.selected is not None and self.selected < self.collected:
            return f"a plugin left out {self.collected - self.selected} collected test(s)"
        return None

    def prune(self, options: Mapping[str, Any], arguments: Sequence[str]) -> list[Path]:
        """Delete the stale recorded runs when the session saw every test of its modules."""
        self.skipped_because = self.narrowed_by(options, arguments)
        if self.skipped_because is not None:
            return []
        stale = stale_recorded_runs(self.owned)
        for path in stale:
            path.unlink(missing_ok=True)
        self.pruned = len(stale)
        return stale

    def to_json(self) -> dict[str, Any]:
        return {"pruned": self.pruned, "skipped_because": self.skipped_because}

    def merge_json(self, data: Mapping[str, Any]) -> None:
        """Fold in a pytest-xdist worker's outcome: workers delete the same stale files."""
        self.pruned = max(self.pruned, int(data.get("pruned", 0)))
        self.skipped_because = self.skipped_because or data.get("skipped_because")

    def summary_lines(self) -> list[str]:
        if self.skipped_because is not None:
            return [
                f"recorded runs not pruned: {self.skipped_because}; to delete the recorded "
                "runs no test owns any more, accept whole modules (no node ids, -k, -m, "
                "--deselect, --lf or --sw)"
            ]
        if self.pruned:
            return [f"pruned {self.pruned} recorded run(s) that no test owns any more"]
        return []
