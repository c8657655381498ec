"""Two runs' quality, paired case by case: a run on main against a branch, one model
against another (``python -m pytest_promptflow.report compare BASE.json HEAD.json``).

The ``now`` outcome of each item of the base report stands where the golden outcome
stands in one run, so that the rows, the fixed and broken cases and the verdicts read
as the quality table of a single run does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pytest_promptflow.quality.tally import ItemScore, QualityRow


def compare_rows(
    base: Iterable[Mapping[str, Any]], head: Iterable[Mapping[str, Any]]
) -> list[QualityRow]:
    """HEAD's rows with BASE's ``now`` outcomes as their golden ones, by test, step,
    field and case; a case or a row only HEAD has has no golden outcome."""
    before: dict[tuple[str, str, str, str], QualityRow] = {}
    for data in base:
        row = QualityRow.from_json(data)
        before[(row.test, row.step, row.name, row.kind)] = row
    paired = []
    for data in head:
        row = QualityRow.from_json(data)
        earlier = before.get((row.test, row.step, row.name, row.kind))
        compared = QualityRow(row.test, row.step, row.name, row.kind)
        earlier_items = earlier.items if earlier is not None else {}
        for case, item in row.items.items():
            was = earlier_items.get(case)
            compared.add(
                ItemScore(
                    item.test,
                    case,
                    item.step,
                    item.name,
                    item.kind,
                    now=item.now,
                    golden=was.now if was is not None else None,
                    labelled=item.labelled,
                    expected=item.expected,
                    answered=item.answered,
                    golden_answered=was.answered if was is not None else None,
                    value=item.value,
                    golden_value=was.value if was is not None else None,
                )
            )
        paired.append(compared)
    return sorted(paired, key=lambda r: (r.test, r.step, r.name, r.kind))
