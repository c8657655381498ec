"""A step's output against its golden value: field-level findings judged by the policy."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pytest_promptflow.drift.policy import DriftPolicy, Ignore, Judgement, Path

ChangeKind = Literal["changed", "added", "removed", "type"]

_KINDS: dict[str, ChangeKind] = {
    "values_changed": "changed",
    "type_changes": "type",
    "dictionary_item_added": "added",
    "dictionary_item_removed": "removed",
    "iterable_item_added": "added",
    "iterable_item_removed": "removed",
}
_ABSENT = object()


@dataclass(frozen=True)
class FieldChange:
    """One field that differs from its golden value, and whether the policy allows it."""

    path: str
    kind: ChangeKind
    old: Any
    new: Any
    rule: str
    tolerated: bool
    score: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "old": self.old,
            "new": self.new,
            "rule": self.rule,
            "tolerated": self.tolerated,
            "score": self.score,
        }


def format_path(path: Path) -> str:
    """``reason``, ``steps[2]``, ``problem.symptoms[0]``; the whole output is ``(output)``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(output)"


def compare_output(golden: Any, current: Any, policy: DriftPolicy) -> list[FieldChange]:
    """Every difference between two JSON values, judged by the rule of its field."""
    if golden == current:
        return []
    golden = _order_unordered(golden, policy, [])
    current = _order_unordered(current, policy, [])
    if golden == current:
        return []
    from deepdiff import DeepDiff  # only once something differs: it is slow to import

    changes = []
    for report_type, levels in DeepDiff(golden, current, view="tree").items():
        kind = _KINDS.get(report_type)
        if kind is None:
            continue
        for level in levels:
            path: list[str | int] = level.path(output_format="list")
            old = _value(level.t1)
            new = _value(level.t2)
            rule = policy.rule_at(path, old if old is not None else new)
            if isinstance(rule, Ignore):
                continue
            if report_type.startswith("dictionary_item"):
                # A field that appears or disappears: the project decides.
                judgement = Judgement(tolerated=not policy.defaults.structure_changes_fail)
            else:
                judgement = rule.judge(old, new)
            changes.append(
                FieldChange(
                    format_path(path),
                    kind,
                    old,
                    new,
                    str(rule),
                    judgement.tolerated,
                    judgement.score,
                )
            )
    return sorted(changes, key=lambda change: change.path)


def _value(side: Any) -> Any:
    # deepdiff marks the missing side of an added or removed item with a sentinel.
    return None if type(side).__name__ == "NotPresent" else side


def _order_unordered(value: Any, policy: DriftPolicy, path: list[str | int]) -> Any:
    """Sort the lists whose rule is ``unordered``, so that only their content compares."""
    if isinstance(value, dict):
        return {key: _order_unordered(item, policy, [*path, key]) for key, item in value.items()}
    if isinstance(value, list):
        items = [_order_unordered(item, policy, [*path, i]) for i, item in enumerate(value)]
        if policy.unordered_at(path):
            items.sort(key=lambda item: json.dumps(item, sort_keys=True))
        return items
    return value
