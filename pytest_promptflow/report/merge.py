"""Joining the JSON reports of several runs (CI shards, a matrix) into one report."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pytest_promptflow.errors import PromptflowError
from pytest_promptflow.report.render import REPORT_SCHEMA_VERSION, report_paths, write_reports
from pytest_promptflow.report.summary import SessionTally

MERGED_ACCEPT_COMMAND = "pytest --promptflow-accept"


def merge_reports(paths: Sequence[Path]) -> SessionTally:
    """One tally from JSON reports; reports of another schema version are refused."""
    if not paths:
        raise PromptflowError("merge: name at least one JSON report")
    documents = []
    for path in paths:
        if path.suffix != ".json":
            raise PromptflowError(f"merge: {path} is not a JSON report (.json)")
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise PromptflowError(f"merge: {path} cannot be read: {error}") from None
        if not isinstance(document, dict) or "steps" not in document:
            raise PromptflowError(f"merge: {path} is not a pytest-promptflow report")
        documents.append((path, document))
    versions = {document.get("schema") for _, document in documents}
    if versions != {REPORT_SCHEMA_VERSION}:
        found = ", ".join(
            f"{path} has schema {document.get('schema')!r}" for path, document in documents
        )
        raise PromptflowError(
            f"merge: cannot join reports of different schema versions ({found}); this "
            f"pytest-promptflow writes and joins schema {REPORT_SCHEMA_VERSION}: produce every "
            "report with the same pytest-promptflow version, then merge again"
        )
    tally = SessionTally()
    for _, document in documents:
        tally.merge_json(document)
    return tally


def merge_command(paths: Sequence[Path], outs: Sequence[Path]) -> None:
    """Join the JSON reports ``paths`` and write the result to each of ``outs``; nothing is
    written when an output's suffix or an input is refused."""
    outs = report_paths(outs, "--out")
    write_reports(outs, merge_reports(paths), MERGED_ACCEPT_COMMAND)
