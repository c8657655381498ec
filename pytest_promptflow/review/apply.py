"""Accepting pending changes step by step: the new golden values of a case's accepted
steps written into its recorded run, with no test run and no network call.

What is written for an accepted step is what ``--promptflow-accept`` writes for it: the
step's golden calls as the session found them and the source of each prompt version they
use; when the session that found them saw every test of their module, the step's
recordings that no accepted call used are pruned (a superseded prompt version's). A step
of the case with a pending change that is not accepted keeps its golden values; the
steps that passed the gate take what accepting the case writes for them. A recorded run
holds every step of its case, so the decisions on one file are written together, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pytest_promptflow.cassette.format import (
    GoldenStep,
    RecordedRun,
    recorded_run_document,
    response_fingerprint,
    serialize_document,
    write_atomically,
)
from pytest_promptflow.cassette.reading import read_recorded_run
from pytest_promptflow.errors import PromptflowError
from pytest_promptflow.review.pending import PendingChange, file_hash


@dataclass
class Applied:
    """What accepting some pending changes did."""

    accepted: list[PendingChange] = field(default_factory=list)
    refused: list[tuple[PendingChange, str]] = field(default_factory=list)
    """Changes that could not be accepted, with why."""
    files: list[str] = field(default_factory=list)
    """The recorded runs written."""


def stale(entry: PendingChange, rootdir: Path, hashes: dict[str, str | None]) -> str | None:
    """Why ``entry`` no longer applies, None when it does: its recorded run changed since
    the session that found it (``hashes`` holds each file's hash when the review began)."""
    if entry.file not in hashes:
        hashes[entry.file] = file_hash(rootdir / entry.file)
    current = hashes[entry.file]
    if current is None:
        return f"{entry.file} no longer exists"
    if current != entry.hash:
        return (
            f"{entry.file} changed since the session that found this change; run the "
            "tests again to review what they find now"
        )
    return None


def accept_file(
    rootdir: Path,
    accepted: Sequence[PendingChange],
    pending: Sequence[PendingChange],
) -> RecordedRun:
    """The recorded run of ``accepted`` changes' file with their steps accepted;
    ``pending`` are every pending change of that file (accepted or not)."""
    path = rootdir / accepted[0].file
    run = read_recorded_run(path)
    if run is None:
        raise PromptflowError(f"{accepted[0].file} no longer exists")
    taken = {entry.step for entry in accepted}
    # Steps with a pending change that is not accepted keep their golden values; every
    # other step passed the gate, and takes what accepting the case would write for it
    # (its inputs and answers may have changed with an upstream step's), so that
    # accepting every pending step of a case writes what --promptflow-accept writes.
    kept = {entry.step for entry in pending} - taken
    new = [GoldenStep.model_validate(step) for step in accepted[0].golden]
    old = list(run.steps)
    if [s.step for s in old] == [s.step for s in new]:
        golden = [o if n.step in kept else n for o, n in zip(old, new, strict=True)]
    else:
        # Calls were added or went missing: the order and parents of the golden calls
        # change, which only accepting every changed step of the case together can keep.
        if kept:
            raise PromptflowError(
                f"{accepted[0].file}: the calls of the case changed (a call added or "
                f"missing), so its steps {', '.join(sorted(taken))} can only be accepted "
                f"together with {', '.join(sorted(kept))}"
            )
        golden = new
    interactions = list(run.interactions)
    if all(entry.whole_module for entry in accepted):
        renewed = {call.step for call in golden} - kept
        used = {answer for call in golden if call.step in renewed for answer in call.responses}
        interactions = [
            interaction
            for interaction in interactions
            if interaction.step not in renewed
            or interaction.judge is not None
            or interaction.sample is not None
            or response_fingerprint(interaction.response) in used
        ]
    versions = {version for call in golden for version in call.prompts.values()}
    sources = {**run.prompt_sources, **accepted[0].prompt_sources}
    return run.model_copy(
        update={
            "interactions": interactions,
            "steps": golden,
            "prompt_sources": {v: s for v, s in sorted(sources.items()) if v in versions},
        }
    )


def apply(
    rootdir: Path,
    decisions: Sequence[PendingChange],
    pending: Sequence[PendingChange],
    hashes: dict[str, str | None] | None = None,
) -> Applied:
    """Accept ``decisions`` (pending changes), a file at a time; ``pending`` are all the
    pending changes, to know what else changed in each file."""
    hashes = {} if hashes is None else hashes
    applied = Applied()
    by_file: dict[str, list[PendingChange]] = {}
    for entry in decisions:
        problem = stale(entry, rootdir, hashes)
        if problem is not None:
            applied.refused.append((entry, problem))
        else:
            by_file.setdefault(entry.file, []).append(entry)
    for name, entries in sorted(by_file.items()):
        try:
            run = accept_file(rootdir, entries, [e for e in pending if e.file == name])
        except PromptflowError as error:
            applied.refused += [(entry, str(error)) for entry in entries]
            continue
        text = serialize_document(recorded_run_document(run))
        write_atomically(rootdir / name, text)
        hashes[name] = file_hash(rootdir / name)
        applied.accepted += entries
        applied.files.append(name)
    return applied
