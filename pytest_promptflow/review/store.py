"""Writing the pending changes back after a review or an accept: those not accepted stay."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pytest_promptflow.cassette.format import write_atomically
from pytest_promptflow.review.pending import PendingChange, pending_document


def write_remaining(
    path: Path, entries: Sequence[PendingChange], accepted: Sequence[PendingChange]
) -> None:
    """Keep every pending change but those accepted, in pytest's cache as it writes it."""
    done = {id(entry) for entry in accepted}
    if not done:
        return
    remaining = [entry for entry in entries if id(entry) not in done]
    text = json.dumps(pending_document(remaining), ensure_ascii=False, indent=2, sort_keys=True)
    write_atomically(path, text)
