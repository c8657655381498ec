"""Quality per test function, step and field: rates, intervals, the paired verdict.

The unit is a case of a test function: each item scored on a step's expected field (or
metric) is correct now or not, and was correct in its golden run or not (None for a case
without golden values). A case that several test items of one test function score (a
test of one step alone runs once per recorded call of the case) is one item, joined from
theirs. A row gathers the items of one test function, step and field; its figures are
pure functions of those items, so that rows merged from pytest-xdist workers or CI shards
give the figures of one serial run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pytest_promptflow.quality import statistics
from pytest_promptflow.quality.scoring import Score, ScoreKind


class ItemScore(NamedTuple):
    """How one case of a test function did on one expected field (or metric) of one step."""

    test: str
    """The test function: the node id without its parameters."""
    case: str
    step: str
    name: str
    kind: ScoreKind
    now: bool
    golden: bool | None = None
    """None when the case has no golden values to score (a new case)."""
    labelled: bool = False
    expected: Any = None
    answered: Any = None
    golden_answered: Any = None
    value: float | None = None
    """A metric's value now (the mean over a test item's calls; of a case several test
    items score, the lowest of theirs)."""
    golden_value: float | None = None
    share: float | None = None
    """With several samples: the share of them that were correct now."""
    golden_share: float | None = None

    @property
    def fixed(self) -> bool:
        return self.golden is False and self.now

    @property
    def broken(self) -> bool:
        return self.golden is True and not self.now

    def joined(self, other: ItemScore) -> ItemScore:
        """This case scored by another test item of the same test function too: one item,
        correct only when both are (golden: both that have golden values); the answer
        counted is a wrong one's; a metric's value the lower. Any order of joining gives
        the same item, so that workers and shards give the figures of one serial run."""
        shown = min(self, other, key=_now_order)
        with_golden = [item for item in (self, other) if item.golden is not None]
        golden_shown = min(with_golden, key=_golden_order) if with_golden else None
        return shown._replace(
            now=self.now and other.now,
            golden=all(item.golden for item in with_golden) if with_golden else None,
            labelled=self.labelled or other.labelled,
            golden_answered=golden_shown.golden_answered if golden_shown else None,
            value=_lower(self.value, other.value),
            golden_value=_lower(self.golden_value, other.golden_value),
            share=_lower(self.share, other.share),
            golden_share=_lower(self.golden_share, other.golden_share),
        )

    def outcome_json(self) -> dict[str, Any]:
        outcome: dict[str, Any] = {"golden": self.golden, "now": self.now}
        if self.labelled:
            outcome |= {
                "expected": self.expected,
                "answered": self.answered,
                "golden_answered": self.golden_answered,
            }
        if self.kind == "metric":
            outcome |= {"value": self.value, "golden_value": self.golden_value}
        if self.share is not None:
            outcome |= {"share": self.share, "golden_share": self.golden_share}
        return outcome

    @classmethod
    def from_outcome(
        cls, test: str, case: str, step: str, name: str, kind: ScoreKind, data: Mapping[str, Any]
    ) -> ItemScore:
        return cls(
            test,
            case,
            step,
            name,
            kind,
            now=bool(data["now"]),
            golden=data.get("golden"),
            labelled="expected" in data,
            expected=data.get("expected"),
            answered=data.get("answered"),
            golden_answered=data.get("golden_answered"),
            value=data.get("value"),
            golden_value=data.get("golden_value"),
            share=data.get("share"),
            golden_share=data.get("golden_share"),
        )


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def _now_order(item: ItemScore) -> tuple[bool, str, str]:
    """Wrong before right, then by answer: which of two joined items' answer is counted."""
    return item.now, _canonical(item.answered), _canonical(item.expected)


def _golden_order(item: ItemScore) -> tuple[bool, str]:
    return bool(item.golden), _canonical(item.golden_answered)


def _lower(first: float | None, second: float | None) -> float | None:
    known = [value for value in (first, second) if value is not None]
    return min(known) if known else None


def item_scores(
    test: str,
    case: str,
    step: str,
    now: Sequence[Sequence[Score]],
    golden: Sequence[Sequence[Score]] | None,
) -> list[ItemScore]:
    """One item's scores on a step, from the scores of each of its calls now and in its
    golden run: correct only when every call is; the answer is the last call's; a
    metric's value is the mean over the calls."""
    combined_now = combined_calls(now)
    combined_golden = combined_calls(golden) if golden else {}
    items = []
    for (name, kind), (correct, last, value) in combined_now.items():
        was = combined_golden.get((name, kind))
        items.append(
            ItemScore(
                test,
                case,
                step,
                name,
                kind,
                now=correct,
                golden=was[0] if was is not None else None,
                labelled=last.labelled,
                expected=last.expected,
                answered=last.answered,
                golden_answered=was[1].answered if was is not None else None,
                value=value,
                golden_value=was[2] if was is not None else None,
            )
        )
    return items


def combined_calls(
    calls: Sequence[Sequence[Score]],
) -> dict[tuple[str, ScoreKind], tuple[bool, Score, float | None]]:
    """An item's scores on a step from those of its calls: correct only when every call
    is, the last call's score (its answer), the mean of a metric's values."""
    if len(calls) == 1:  # a step called once in the item, as most are
        return {(score.name, score.kind): (score.correct, score, score.value) for score in calls[0]}
    by_name: dict[tuple[str, ScoreKind], list[Score]] = {}
    for scores in calls:
        for score in scores:
            by_name.setdefault((score.name, score.kind), []).append(score)
    combined = {}
    for key, scores in by_name.items():
        mean = _mean_of([score.value for score in scores])
        combined[key] = (all(score.correct for score in scores), scores[-1], mean)
    return combined


def _rate(correct: int, scored: int) -> dict[str, Any]:
    interval = statistics.wilson_interval(correct, scored)
    return {
        "correct": correct,
        "scored": scored,
        "rate": statistics.proportion(correct, scored),
        "low": interval[0] if interval is not None else None,
        "high": interval[1] if interval is not None else None,
    }


def _now_rate(items: Sequence[ItemScore]) -> dict[str, Any]:
    return _rate(sum(item.now for item in items), len(items))


def _golden_rate(items: Sequence[ItemScore]) -> dict[str, Any] | None:
    known = [item for item in items if item.golden is not None]
    return _rate(sum(bool(item.golden) for item in known), len(known)) if known else None


@dataclass
class QualityRow:
    """The items of one test function scored on one field (or metric) of one step."""

    test: str
    step: str
    name: str
    kind: ScoreKind
    _stored: dict[str, tuple[Any, ...]] = field(default_factory=dict, init=False, repr=False)
    """Each case's item as a plain tuple, which the garbage collector stops tracking
    since it holds only strings, numbers, flags and nulls. A session keeps an item per
    case and expected field: as tracked objects, those of 1,000 cases expecting 10
    fields each set off a full collection during the tests (0.13 s of their 3.8 s of
    CPU time in ``bench/quality.py``)."""

    @property
    def items(self) -> dict[str, ItemScore]:
        """By case id."""
        return {case: ItemScore._make(values) for case, values in self._stored.items()}

    def add(self, item: ItemScore) -> None:
        known = self._stored.get(item.case)
        joined = item if known is None else ItemScore._make(known).joined(item)
        self._stored[item.case] = tuple(joined)

    def _sorted_items(self) -> list[ItemScore]:
        return [ItemScore._make(self._stored[case]) for case in sorted(self._stored)]

    @property
    def fixed(self) -> list[str]:
        return [item.case for item in self._sorted_items() if item.fixed]

    @property
    def broken(self) -> list[str]:
        return [item.case for item in self._sorted_items() if item.broken]

    @property
    def any_golden(self) -> bool:
        return any(item.golden is not None for item in self.items.values())

    @property
    def labelled(self) -> bool:
        return any(item.labelled for item in self.items.values())

    def now_rate(self) -> dict[str, Any]:
        return _now_rate(list(self.items.values()))

    def golden_rate(self) -> dict[str, Any] | None:
        return _golden_rate(list(self.items.values()))

    def p_value(self) -> float | None:
        return statistics.mid_p_mcnemar(len(self.fixed), len(self.broken))

    def verdict(self) -> statistics.PairedVerdict:
        return statistics.paired_verdict(len(self.fixed), len(self.broken), self.any_golden)

    def to_json(self) -> dict[str, Any]:
        # Every figure from one list of the items, each counted once.
        items = self._sorted_items()
        fixed = [item.case for item in items if item.fixed]
        broken = [item.case for item in items if item.broken]
        any_golden = any(item.golden is not None for item in items)
        labels = confusion = macro = per_label = None
        if any(item.labelled for item in items):
            expected = [item.expected for item in items]
            answered = [item.answered for item in items]
            labels = statistics.labels_in_order([*expected, *answered])
            confusion = statistics.confusion(expected, answered, labels)
            macro = statistics.macro_f1(confusion)
            per_label = [
                {
                    "label": figures.label,
                    "precision": figures.precision,
                    "recall": figures.recall,
                    "f1": figures.f1,
                    "support": figures.support,
                }
                for figures in statistics.per_label(confusion, labels)
            ]
        mean = None
        if self.kind == "metric":
            mean = {
                "now": _mean([item.value for item in items]),
                "golden": _mean([item.golden_value for item in items if item.golden is not None]),
            }
        return {
            "test": self.test,
            "step": self.step,
            "field": self.name,
            "kind": self.kind,
            "golden": _golden_rate(items),
            "now": _now_rate(items),
            "fixed": fixed,
            "broken": broken,
            "p_value": statistics.mid_p_mcnemar(len(fixed), len(broken)),
            "verdict": statistics.paired_verdict(len(fixed), len(broken), any_golden),
            "labels": labels,
            "confusion": confusion,
            "macro_f1": macro,
            "per_label": per_label,
            "mean": mean,
            "outcomes": {item.case: item.outcome_json() for item in items},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> QualityRow:
        row = cls(data["test"], data["step"], data["field"], data["kind"])
        for case, outcome in data["outcomes"].items():
            row.add(ItemScore.from_outcome(row.test, case, row.step, row.name, row.kind, outcome))
        return row


def _mean(values: Iterable[float | None]) -> dict[str, Any] | None:
    known = [value for value in values if value is not None]
    found = statistics.mean_t_interval(known)
    if found is None:
        return None
    mean, low, high = found
    return {"value": mean, "low": low, "high": high, "n": len(known)}


@dataclass
class QualityTally:
    """Every item scored in a session, as rows; mergeable across workers and shards."""

    rows: dict[tuple[str, str, str, str], QualityRow] = field(default_factory=dict)
    expected_steps: set[str] = field(default_factory=set)
    """Steps some case of the session expects values of."""
    scored_steps: set[str] = field(default_factory=set)
    """Steps some test of the session called and scored."""

    def add(self, items: Iterable[ItemScore]) -> None:
        for item in items:
            key = (item.test, item.step, item.name, item.kind)
            row = self.rows.get(key)
            if row is None:
                row = self.rows[key] = QualityRow(item.test, item.step, item.name, item.kind)
            row.add(item)
            self.scored_steps.add(item.step)

    def sorted_rows(self) -> list[QualityRow]:
        return [self.rows[key] for key in sorted(self.rows)]

    @property
    def not_called(self) -> list[str]:
        """Expected steps no test of the session called."""
        return sorted(self.expected_steps - self.scored_steps)

    def to_json(self) -> list[dict[str, Any]]:
        return [row.to_json() for row in self.sorted_rows()]

    def merge_json(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for data in rows:
            row = QualityRow.from_json(data)
            self.add(row.items.values())

    def worker_json(self) -> dict[str, Any]:
        return {
            "rows": self.to_json(),
            "expected_steps": sorted(self.expected_steps),
            "scored_steps": sorted(self.scored_steps),
        }

    def merge_worker_json(self, data: Mapping[str, Any]) -> None:
        self.merge_json(data["rows"])
        self.expected_steps.update(data["expected_steps"])
        self.scored_steps.update(data["scored_steps"])


def sampled_item_scores(
    test: str,
    case: str,
    step: str,
    now: Sequence[Sequence[Sequence[Score]]],
    golden: Sequence[Sequence[Sequence[Score]]],
) -> list[ItemScore]:
    """One item's scores on a step from several samples, each given as the scores of its
    calls: correct when more than half of its samples are (a tie counts as wrong), its
    answer the most frequent (a tie to the first in label order), a metric's value the
    mean over the samples; the share of its samples that were correct beside it."""
    per_now = [combined_calls(calls) for calls in now]
    per_golden = [combined_calls(calls) for calls in golden if calls]
    keys = list(dict.fromkeys(key for sample in per_now for key in sample))
    items = []
    for name, kind in keys:
        found = [sample[(name, kind)] for sample in per_now if (name, kind) in sample]
        was = [sample[(name, kind)] for sample in per_golden if (name, kind) in sample]
        last = found[-1][1]
        correct = sum(entry[0] for entry in found)
        golden_correct = sum(entry[0] for entry in was)
        items.append(
            ItemScore(
                test,
                case,
                step,
                name,
                kind,
                now=2 * correct > len(found),
                golden=2 * golden_correct > len(was) if was else None,
                labelled=last.labelled,
                expected=last.expected,
                answered=_most_frequent([entry[1].answered for entry in found])
                if last.labelled
                else None,
                golden_answered=_most_frequent([entry[1].answered for entry in was])
                if last.labelled and was
                else None,
                value=_mean_of([entry[2] for entry in found]),
                golden_value=_mean_of([entry[2] for entry in was]) if was else None,
                share=correct / len(found),
                golden_share=golden_correct / len(was) if was else None,
            )
        )
    return items


def _most_frequent(answers: Sequence[Any]) -> Any:
    """The answer given most often; a tie to the first in label order."""
    counts: dict[str, int] = {}
    for answer in answers:
        key = statistics.label_key(answer)
        counts[key] = counts.get(key, 0) + 1
    top = max(counts.values())
    tied = [answer for answer in answers if counts[statistics.label_key(answer)] == top]
    return statistics.labels_in_order(tied)[0]


def _mean_of(values: Sequence[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return math.fsum(known) / len(known) if known else None
