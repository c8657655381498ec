"""A step's output against its golden value: field-level findings judged by the policy."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pytest_promptflow.drift.judging import JudgeSession
from pytest_promptflow.drift.policy import DriftPolicy, Facts, Ignore, Judged, Judgement, Path

if TYPE_CHECKING:
    from pytest_promptflow.drift.text_facts import Grounds

ChangeKind = Literal["changed", "added", "removed", "type"]

_KINDS: dict[str, ChangeKind] = {
    "values_changed": "changed",
    "type_changes": "type",
    "iterable_item_added": "added",
    "iterable_item_removed": "removed",
}


@dataclass(frozen=True)
class FieldChange:
    """One field that differs from its golden value, and whether the policy allows it."""

    path: str
    kind: ChangeKind
    old: Any
    new: Any
    rule: str
    tolerated: bool
    score: float | str | None = None
    """What the rule measured: the similarity for ``similar``, the move for ``tolerance``,
    the differing facts for ``facts``, the judge's reason for ``judged``."""
    expected: str | None = None
    """For a field the case has an expected value of, what the change did to the answer:
    ``still correct``, ``fixed``, ``still wrong`` or ``broken``; the expected value then
    judges the change instead of the golden one."""

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "old": self.old,
            "new": self.new,
            "rule": self.rule,
            "tolerated": self.tolerated,
            "score": self.score,
            "expected": self.expected,
        }


def format_path(path: Path) -> str:
    """``reason``, ``steps[2]``, ``problem.symptoms[0]``; the whole output is ``(output)``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(output)"


def compare_output(
    golden: Any,
    current: Any,
    policy: DriftPolicy,
    judges: JudgeSession | None = None,
    step: str = "",
    *,
    inputs: Mapping[str, Any] | None = None,
) -> list[FieldChange]:
    """Every difference between two JSON values, judged by the rule of its field.

    A list whose rule is ``unordered`` reports the items it lost and gained; a field whose
    rule is ``judged`` is judged once as a whole by ``judges`` (one per case). ``inputs``,
    the data inputs of the call that produced ``current`` (in JSON form), ground its
    ``facts`` fields: a fact a text adds that they state is no drift. Only drift passes
    them; a comparison without them grounds nothing.
    """
    if same_value(golden, current):
        return []
    changes: list[FieldChange] = []
    differences: list[_Difference] = []
    _differences(golden, current, policy, [], changes, differences)
    judged: dict[tuple[str | int, ...], Judged] = {}
    grounds: Grounds | None = None
    for difference in differences:
        path, old, new = difference.path, difference.old, difference.new
        rule = policy.rule_at(path, old if old is not None else new)
        if isinstance(rule, Ignore):
            continue
        if isinstance(rule, Judged):
            origin = tuple(path[: policy.declared_at(path).depth])
            if not (difference.structural and len(origin) == len(path)):
                judged[origin] = rule
                continue
        if difference.structural:
            # A field that appears or disappears: the project decides.
            judgement = Judgement(tolerated=not policy.defaults.structure_changes_fail)
        elif isinstance(rule, Facts) and inputs:
            if grounds is None:
                grounds = rule.grounds_of(inputs)  # one per call, read once a text adds a fact
            judgement = rule.judge(old, new, grounds=grounds)
        else:
            judgement = rule.judge(old, new)
        changes.append(
            FieldChange(
                format_path(path),
                difference.kind,
                old,
                new,
                str(rule),
                judgement.tolerated,
                judgement.score,
            )
        )
    session = judges if judges is not None else JudgeSession()
    for origin, rule in judged.items():
        old, new = _at(golden, origin), _at(current, origin)
        judgement = session.judge(rule, step, format_path(origin), old, new)
        changes.append(
            FieldChange(
                format_path(origin),
                "changed",
                old,
                new,
                str(rule),
                judgement.tolerated,
                judgement.score,
            )
        )
    return sorted(changes, key=lambda change: change.path)


@dataclass(frozen=True)
class _Difference:
    path: list[str | int]
    kind: ChangeKind
    old: Any
    new: Any
    structural: bool = False
    """A dictionary key that appears or disappears."""


def _differences(
    golden: Any,
    current: Any,
    policy: DriftPolicy,
    path: list[str | int],
    changes: list[FieldChange],
    differences: list[_Difference],
) -> None:
    """Collect where two JSON values differ, visiting only the parts that are not equal.

    Objects are walked here, key by key: deepdiff's tree view costs about a hundred
    microseconds per compared output even when one field changed, which a suite comparing
    thousands of step calls pays on every run. Ordered lists of plain values (strings,
    numbers, booleans, nulls) that share an item are left to deepdiff, which aligns them
    (by difflib) so that an inserted item is reported as added rather than as every later
    item changed. Any other list deepdiff would compare position by position (lists of
    plain values with no item in common align nowhere), as is done here, without the
    paths deepdiff renders for every item it visits. ``unordered`` lists report what they
    lost and gained.
    """
    if same_value(golden, current):
        return
    if isinstance(golden, dict) and isinstance(current, dict):
        for key, old in golden.items():
            if key in current:
                _differences(old, current[key], policy, [*path, key], changes, differences)
            else:
                differences.append(_Difference([*path, key], "removed", old, None, True))
        for key, new in current.items():
            if key not in golden:
                differences.append(_Difference([*path, key], "added", None, new, True))
    elif isinstance(golden, list) and isinstance(current, list):
        if policy.unordered_at(path):
            _unordered_changes(golden, current, policy, path, changes)
        elif golden != current and _needs_alignment(golden, current):
            # Lists equal to Python differ only in flags swapped for numbers, which
            # deepdiff does not see either: pairing by position finds them.
            differences += _list_differences(golden, current, path)
        else:
            for position, (old, new) in enumerate(zip(golden, current, strict=False)):
                _differences(old, new, policy, [*path, position], changes, differences)
            common = min(len(golden), len(current))
            differences += [
                _Difference([*path, position], "removed", old, None)
                for position, old in enumerate(golden[common:], start=common)
            ]
            differences += [
                _Difference([*path, position], "added", None, new)
                for position, new in enumerate(current[common:], start=common)
            ]
    else:
        kind: ChangeKind = "changed" if type(golden) is type(current) else "type"
        differences.append(_Difference(path, kind, golden, current))


def same_value(golden: Any, current: Any) -> bool:
    """Equal as JSON values. Python holds ``True == 1``, at any depth of two containers;
    a flag that became a number, or a number a flag, is a change of type."""
    return golden == current and _no_flag_swapped(golden, current)


def _no_flag_swapped(golden: Any, current: Any) -> bool:
    """Of two equal values, whether every flag of one is a flag of the other."""
    if type(golden) is dict:
        return all(_no_flag_swapped(value, current[key]) for key, value in golden.items())
    if type(golden) is list:
        return all(_no_flag_swapped(old, new) for old, new in zip(golden, current, strict=True))
    return (type(golden) is bool) == (type(current) is bool)


def _needs_alignment(golden: list[Any], current: list[Any]) -> bool:
    """Whether deepdiff's alignment of two ordered lists could differ from pairing their
    items by position: only when both hold plain values and share at least one."""
    plain = not any(isinstance(item, (dict, list)) for item in (*golden, *current))
    return plain and not set(golden).isdisjoint(current)


def _list_differences(
    golden: list[Any], current: list[Any], path: list[str | int]
) -> list[_Difference]:
    """Where two ordered lists of plain values differ, aligned by deepdiff (difflib)."""
    from deepdiff import DeepDiff  # only once such a list differs: it is slow to import

    found: list[_Difference] = []
    if not any(type(item) is str and item in _FLAGS for item in (*golden, *current)):
        # deepdiff, like Python, holds True == 1: flags are told apart by a tag.
        golden = [_FLAG_TAGS[item] if type(item) is bool else item for item in golden]
        current = [_FLAG_TAGS[item] if type(item) is bool else item for item in current]
    diff = DeepDiff(golden, current, view="tree", threshold_to_diff_deeper=0)
    for report_type, levels in diff.items():
        kind = _KINDS.get(report_type)
        if kind is None:
            continue
        for level in levels:
            old, new = _value(level.t1), _value(level.t2)
            # A tagged flag against a string is a change of type.
            same_type = kind != "changed" or type(old) is type(new)
            found.append(
                _Difference(
                    [*path, *level.path(output_format="list")],
                    kind if same_type else "type",
                    old,
                    new,
                )
            )
    return found


def _at(value: Any, path: Sequence[str | int]) -> Any:
    for part in path:
        value = value[part]
    return value


def _unordered_changes(
    golden: list[Any],
    current: list[Any],
    policy: DriftPolicy,
    path: list[str | int],
    changes: list[FieldChange],
) -> None:
    """The items an ``unordered`` list lost and gained, whatever their order."""
    rule = str(policy.declared_at(path).rule)
    old_items = Counter(_canonical(item, policy, [*path, 0]) for item in golden)
    new_items = Counter(_canonical(item, policy, [*path, 0]) for item in current)
    where = format_path(path)
    for item in (old_items - new_items).elements():
        changes.append(FieldChange(where, "removed", json.loads(item), None, rule, False))
    for item in (new_items - old_items).elements():
        changes.append(FieldChange(where, "added", None, json.loads(item), rule, False))


def _canonical(item: Any, policy: DriftPolicy, path: list[str | int]) -> str:
    return json.dumps(_order_unordered(item, policy, path), sort_keys=True, ensure_ascii=False)


_FLAG_TAGS = {True: "\x00promptflow-flag:true", False: "\x00promptflow-flag:false"}
_FLAGS = {tag: flag for flag, tag in _FLAG_TAGS.items()}


def _value(side: Any) -> Any:
    # deepdiff marks the missing side of an added or removed item with a sentinel.
    if type(side).__name__ == "NotPresent":
        return None
    return _FLAGS.get(side, side) if type(side) is str else side


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
