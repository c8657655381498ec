"""What ``--promptflow-accept`` did: golden values taken, recordings pruned, runs deleted.

Mergeable across pytest-xdist workers, like the session tally.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_promptflow.cassette.format import RecordedRun
from pytest_promptflow.cassette.reading import read_recorded_run


@dataclass(frozen=True)
class AcceptedCase:
    """A test case whose recorded run an accepting session rewrote."""

    test: str
    steps: tuple[str, ...]
    """The steps whose golden value is new or changed, in call order, once each."""
    pruned: int
    """Recordings dropped because the run no longer used them."""

    def to_json(self) -> dict[str, Any]:
        return {"test": self.test, "steps": list(self.steps), "pruned": self.pruned}


def accepted_case(test: str, before: RecordedRun | None, after: RecordedRun) -> AcceptedCase:
    """What changed between the recorded run before accepting and the one written."""
    old_steps = before.steps if before is not None else []
    steps: list[str] = []
    for position, golden in enumerate(after.steps):
        old = old_steps[position] if position < len(old_steps) else None
        if old != golden and golden.step not in steps:
            steps.append(golden.step)
    for old in old_steps[len(after.steps) :]:
        if old.step not in steps:
            steps.append(old.step)
    old_interactions = before.interactions if before is not None else []
    kept = list(after.interactions)  # parsed once, not once per comparison
    pruned = sum(1 for interaction in old_interactions if interaction not in kept)
    return AcceptedCase(test, tuple(steps), pruned)


@dataclass
class Acceptance:
    accepted: list[AcceptedCase] = field(default_factory=list)
    not_accepted: list[str] = field(default_factory=list)
    """Tests that failed, so their outputs were not taken."""
    deleted: list[str] = field(default_factory=list)
    """Recorded runs deleted because no collected test or case owns them."""

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": [case.to_json() for case in self.accepted],
            "not_accepted": list(self.not_accepted),
            "deleted": list(self.deleted),
        }

    def merge_json(self, data: Mapping[str, Any]) -> None:
        self.accepted += [
            AcceptedCase(case["test"], tuple(case["steps"]), case["pruned"])
            for case in data["accepted"]
        ]
        self.accepted.sort(key=lambda case: case.test)
        self.not_accepted = sorted({*self.not_accepted, *data["not_accepted"]})
        self.deleted = sorted({*self.deleted, *data["deleted"]})

    def note_test(
        self, test: str, before: RecordedRun | None, written: Path | None, *, passed: bool
    ) -> None:
        """One test of the accepting session: its recorded run before, and the file it
        wrote (None when it wrote nothing)."""
        if not passed:
            self.not_accepted.append(test)
            return
        after = read_recorded_run(written) if written is not None else None
        if after is not None:
            self.accepted.append(accepted_case(test, before, after))

    def note_deleted(self, paths: list[Path], rootdir: Path) -> None:
        for path in paths:
            try:
                shown = path.relative_to(rootdir).as_posix()
            except ValueError:
                shown = str(path)
            self.deleted.append(shown)
        self.deleted.sort()

    def summary_lines(self) -> list[str]:
        """The confirmation printed at the end of an accepting session."""
        golden = [case for case in self.accepted if case.steps]
        pruned = sum(case.pruned for case in self.accepted)
        pruned_runs = sum(1 for case in self.accepted if case.pruned)
        lines = []
        if golden:
            by_step: dict[str, int] = {}
            for case in golden:
                for step in case.steps:
                    by_step[step] = by_step.get(step, 0) + 1
            steps = ", ".join(f"{step} ({count})" for step, count in sorted(by_step.items()))
            lines.append(f"accepted: new golden values for {len(golden)} case(s), steps {steps}:")
            lines += [f"  {case.test}: {', '.join(case.steps)}" for case in golden]
        else:
            lines.append("accepted: no golden value changed; every one was already current")
        if pruned:
            lines.append(
                f"pruned: {pruned} recording(s) no longer used, from {pruned_runs} recorded run(s)"
            )
        if self.deleted:
            lines.append(
                f"deleted: {len(self.deleted)} recorded run(s) of tests or cases that no "
                "longer exist:"
            )
            lines += [f"  {path}" for path in self.deleted]
        if self.not_accepted:
            lines.append(
                f"not accepted: {len(self.not_accepted)} test(s) failed, so their outputs were "
                "not taken; fix them first:"
            )
            lines += [f"  {test}" for test in self.not_accepted]
        lines.append("Review the changed recorded runs and commit them.")
        return lines
