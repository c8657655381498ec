"""Writing the pending changes back after a review or an accept: those not accepted stay."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pytest_promptflow.cassette.format import write_atomically
from pytest_promptflow.review.pending import PendingChange, file_hash, pending_document


def write_remaining(
    path: Path,
    entries: Sequence[PendingChange],
    accepted: Sequence[PendingChange],
    rootdir: Path,
    changed: Sequence[str] = (),
) -> None:
    """Keep every pending change but those accepted, in pytest's cache as it writes it.
    The changes left in a recorded run that accepting just ``changed`` apply to it as it
    is now: its other steps are as the session that found them left them."""
    done = {id(entry) for entry in accepted}
    if not done:
        return
    remaining = [entry for entry in entries if id(entry) not in done]
    hashes = {name: file_hash(rootdir / name) for name in set(changed)}
    for entry in remaining:
        digest = hashes.get(entry.file)
        if digest is not None:
            entry.hash = digest
    text = json.dumps(pending_document(remaining), ensure_ascii=False, indent=2, sort_keys=True)
    write_atomically(path, text)
