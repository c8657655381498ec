"""One step call's output against the expected values of its case.

Each expected field is scored with the rule that judges its drift, the expected value
standing where the golden value stands: ``exact`` equal, ``unordered`` the same items,
``tolerance`` within bounds, ``facts`` the same facts, ``judged`` a judge finds the
output equivalent to the expected value under its criteria (its calls recorded like any
judge's), ``similar`` at or above its threshold. A field whose rule is ``ignore`` is not
scored. A field the output lacks is wrong.

A step's own measures, ``@step(metrics=[fn])``, are called as ``fn(output, expected)``
with the output as the step's output type and the step's expected fields (JSON), and
return a bool, or a number from 0 to 1 that counts as correct from 0.5.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pydantic

from pytest_promptflow.drift.compare import compare_output
from pytest_promptflow.drift.judging import JudgeSession
from pytest_promptflow.drift.policy import DEFAULTS, DriftPolicy, Ignore, PolicyDefaults
from pytest_promptflow.drift.policy import has_finite_values as _has_finite_values
from pytest_promptflow.errors import PromptflowError

ScoreKind = Literal["field", "metric"]
Metric = Callable[[Any, Mapping[str, Any]], object]
"""``fn(output, expected) -> bool | float``: a step's own measure of its output."""

CORRECT_FROM = 0.5
"""A metric's value from which it counts as correct."""


@dataclass(frozen=True, slots=True)
class Score:
    """One expected field, or one metric, of one step call."""

    name: str
    kind: ScoreKind
    correct: bool
    value: float | None = None
    """A metric's value, 0 to 1; None for a field."""
    labelled: bool = False
    """Whether the field has finitely many values (a ``Literal``, an enum, a ``bool``):
    then its expected and answered values make a confusion matrix."""
    expected: Any = None
    answered: Any = None
    detail: str | None = None
    """What the rule measured when the answer is wrong: the facts that differ, a
    similarity, the judge's reason."""


def metric_name(metric: Metric) -> str:
    return str(getattr(metric, "__name__", repr(metric)))


_PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})


def _answered_as_expected(expected: Any, answered: Any) -> bool:
    """Whether an answer equals its expected value, told by one equality test when both
    are strings, numbers, flags or nulls of one type, as most answers are, or lists of
    such items whose types match one by one (Python holds ``True == 1``, JSON does not).
    Anything else is left to the field's rule."""
    kind = type(expected)
    if kind is not type(answered) or expected != answered:
        return False
    return kind in _PLAIN_TYPES or (
        kind is list
        and all(
            type(old) is type(new) and type(old) in _PLAIN_TYPES
            for old, new in zip(expected, answered, strict=True)
        )
    )


@dataclass(frozen=True, slots=True)
class _ExpectedField:
    """What scoring one output field needs of the step's type, worked out once."""

    scored: bool
    """False when its rule is ``ignore``."""
    labelled: bool
    right: Score
    """The score of an answer equal to the expected value, when the field is not
    labelled: the same for every call."""


class Scorer:
    """Scores the calls of one step against expected values, with the step's rules."""

    def __init__(
        self,
        step: str,
        output_type: Any,
        metrics: Sequence[Metric] = (),
        defaults: PolicyDefaults = DEFAULTS,
    ) -> None:
        self.step = step
        # A field the answer lacks, or a key it adds, is wrong whatever drift tolerates.
        self.policy = DriftPolicy.of(
            output_type, dataclasses.replace(defaults, structure_changes_fail=True)
        )
        self.metrics = tuple(metrics)
        self._adapter: pydantic.TypeAdapter[Any] | None = None
        self._output_type = output_type
        self._fields: dict[str, _ExpectedField] = {}

    @classmethod
    def of(
        cls,
        step: str,
        output_type: Any,
        metrics: Sequence[Metric] = (),
        defaults: PolicyDefaults = DEFAULTS,
    ) -> Scorer:
        """The scorer of ``step``, shared by every case of the session, so that each
        field's rule, and the output type's validator for the metrics, is worked out once."""
        try:
            return _shared_scorer(step, output_type, tuple(metrics), defaults)
        except TypeError:  # an output type or a metric that cannot be hashed
            return cls(step, output_type, metrics, defaults)

    def _field(self, name: str) -> _ExpectedField:
        found = self._fields.get(name)
        if found is None:
            declared = self.policy.declared_at((name,))
            labelled = _has_finite_values(declared.leaf)
            found = self._fields[name] = _ExpectedField(
                not isinstance(declared.rule, Ignore),
                labelled,
                Score(name, "field", True, labelled=labelled),
            )
        return found

    def score(self, output: Any, expected: Mapping[str, Any], judges: JudgeSession) -> list[Score]:
        """Every expected field of ``output`` (a JSON value), then every metric."""
        scores: list[Score] = []
        answer = output if isinstance(output, dict) else {}
        for name, value in expected.items():
            field = self._field(name)
            if not field.scored:
                continue
            if name in answer and _answered_as_expected(value, answer[name]):
                scores.append(
                    Score(name, "field", True, labelled=True, expected=value, answered=value)
                    if field.labelled
                    else field.right  # the same object for every call: nothing to allocate
                )
                continue
            current = {name: answer[name]} if name in answer else {}
            changes = compare_output({name: value}, current, self.policy, judges, self.step)
            wrong = [change for change in changes if not change.tolerated]
            scores.append(
                Score(
                    name,
                    "field",
                    not wrong,
                    labelled=field.labelled,
                    expected=value if field.labelled else None,
                    answered=answer.get(name) if field.labelled else None,
                    detail=_detail(wrong),
                )
            )
        if self.metrics:
            typed = self._typed(output)
            for metric in self.metrics:
                measured = self._measure(metric, typed, expected)
                scores.append(
                    Score(metric_name(metric), "metric", measured >= CORRECT_FROM, measured)
                )
        return scores

    def failed(self, expected: Mapping[str, Any]) -> list[Score]:
        """The scores of a call that raised instead of answering: all wrong."""
        scores = [Score(name, "field", False) for name in expected if self._field(name).scored]
        return scores + [Score(metric_name(m), "metric", False, 0.0) for m in self.metrics]

    def _typed(self, output: Any) -> Any:
        """The output as the step returned it: its JSON form validated into its type."""
        if self._output_type is Any:
            return output
        if self._adapter is None:
            self._adapter = pydantic.TypeAdapter(self._output_type)
        try:
            return self._adapter.validate_python(output)
        except pydantic.ValidationError:
            return output  # a golden value of an earlier schema: the metric gets its JSON

    def _measure(self, metric: Metric, output: Any, expected: Mapping[str, Any]) -> float:
        name = metric_name(metric)
        try:
            result = metric(output, expected)
        except Exception as error:
            raise PromptflowError(
                f"metric {name} of step {self.step!r} raised {type(error).__name__}: {error}"
            ) from error
        if isinstance(result, bool):
            return 1.0 if result else 0.0
        if isinstance(result, int | float) and 0.0 <= float(result) <= 1.0:
            return float(result)
        raise PromptflowError(
            f"metric {name} of step {self.step!r} returned {result!r}; a metric returns "
            "True or False, or a number from 0 to 1"
        )


@functools.lru_cache(maxsize=256)
def _shared_scorer(
    step: str, output_type: Any, metrics: tuple[Metric, ...], defaults: PolicyDefaults
) -> Scorer:
    return Scorer(step, output_type, metrics, defaults)


def _detail(wrong: Sequence[Any]) -> str | None:
    scores = [str(change.score) for change in wrong if change.score is not None]
    return "; ".join(scores) or None
