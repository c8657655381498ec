"""Joining the JSON reports of several runs (CI shards, a matrix) into one report, and
pairing the quality of two runs (``compare``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_promptflow.errors import PromptflowError
from pytest_promptflow.quality.comparison import compare_rows
from pytest_promptflow.quality.gate import GateResult, Requirement, evaluate
from pytest_promptflow.quality.tally import QualityRow, QualityTally
from pytest_promptflow.report.quality import row_cells
from pytest_promptflow.report.render import (
    READABLE_SCHEMA_VERSIONS,
    REPORT_SCHEMA_VERSION,
    report_paths,
    write_reports,
)
from pytest_promptflow.report.summary import SessionTally

MERGED_ACCEPT_COMMAND = "pytest --promptflow-accept"


@dataclass
class MergedReport:
    """What several reports hold together: the tally, the quality rows, the quality gate's
    requirements and their results on the merged rows."""

    tally: SessionTally
    quality: QualityTally = field(default_factory=QualityTally)
    requirements: list[Requirement] = field(default_factory=list)
    quality_gate: list[GateResult] = field(default_factory=list)

    @property
    def quality_gate_failed(self) -> bool:
        return any(result.passed is False for result in self.quality_gate)


def read_reports(
    paths: Sequence[Path], command: str = "merge"
) -> list[tuple[Path, dict[str, Any]]]:
    """The JSON reports at ``paths``, all of one schema version this version reads."""
    if not paths:
        raise PromptflowError(f"{command}: name at least one JSON report")
    documents = []
    for path in paths:
        if path.suffix != ".json":
            raise PromptflowError(f"{command}: {path} is not a JSON report (.json)")
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise PromptflowError(f"{command}: {path} cannot be read: {error}") from None
        if not isinstance(document, dict) or "steps" not in document:
            raise PromptflowError(f"{command}: {path} is not a pytest-promptflow report")
        documents.append((path, document))
    versions = {document.get("schema") for _, document in documents}
    if len(versions) != 1 or not versions <= set(READABLE_SCHEMA_VERSIONS):
        found = ", ".join(
            f"{path} has schema {document.get('schema')!r}" for path, document in documents
        )
        readable = " or ".join(str(version) for version in READABLE_SCHEMA_VERSIONS)
        raise PromptflowError(
            f"{command}: cannot join reports of different schema versions ({found}); this "
            f"pytest-promptflow writes schema {REPORT_SCHEMA_VERSION} and joins reports that "
            f"are all schema {readable}: produce every report with the same "
            "pytest-promptflow version, then run it again"
        )
    return documents


def merge_reports(paths: Sequence[Path]) -> MergedReport:
    """One report from JSON reports: figures and cases added up, quality outcomes joined
    and their figures computed again, the quality gate evaluated on them."""
    merged = MergedReport(SessionTally())
    for _, document in read_reports(paths):
        merged.tally.merge_json(document)
        merged.quality.merge_json(document.get("quality", []))
        for result in document.get("quality_gate", []):
            requirement = Requirement.from_json(result["rule"])
            if requirement not in merged.requirements:
                merged.requirements.append(requirement)
    merged.quality_gate = evaluate(merged.requirements, merged.quality.sorted_rows())
    return merged


def merge_command(paths: Sequence[Path], outs: Sequence[Path]) -> MergedReport:
    """Join the JSON reports ``paths`` and write the result to each of ``outs``; nothing is
    written when an output's suffix or an input is refused."""
    outs = report_paths(outs, "--out")
    merged = merge_reports(paths)
    write_reports(
        outs,
        merged.tally,
        MERGED_ACCEPT_COMMAND,
        quality=merged.quality,
        quality_gate=merged.quality_gate,
    )
    return merged


def compare_reports(base: Path, head: Path) -> list[QualityRow]:
    """HEAD's quality rows paired case by case with BASE's ``now`` outcomes."""
    documents = read_reports([base, head], "compare")
    (_, base_document), (_, head_document) = documents
    if base_document.get("schema") != REPORT_SCHEMA_VERSION:
        raise PromptflowError(
            f"compare: {base} has schema {base_document.get('schema')!r}; compare needs "
            f"reports of schema {REPORT_SCHEMA_VERSION}, which hold quality outcomes"
        )
    return compare_rows(base_document.get("quality", []), head_document.get("quality", []))


def comparison_lines(rows: Sequence[QualityRow]) -> list[str]:
    """The rows of ``compare``: base -> head, fixed, broken and the paired verdict."""
    if not rows:
        return ["no quality rows to compare: neither report scored expected values"]
    cells = [row_cells(row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(2)]
    lines = ["quality, base -> head: items right against their cases' expected values"]
    for row in cells:
        lines.append(f"{row[0]:<{widths[0]}} {row[1]:<{widths[1]}}  " + "  ".join(row[2:]))
    return lines
