"""Per-field drift rules, declared where the type is declared.

    class Urgency(BaseModel):
        level: Annotated[int, Field(ge=1, le=5), drift.exact()]
        reason: Annotated[str, drift.similar(0.8)]

A rule on a field covers everything below it unless a deeper field has its own. A
field without a rule gets the project default: ``similar(threshold)`` for text,
``exact()`` for everything else. A new rule is a small frozen dataclass with a
``judge(old, new)`` method.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

import pydantic
from rapidfuzz import fuzz

DEFAULT_SIMILARITY = 0.85


@dataclass(frozen=True)
class Judgement:
    tolerated: bool
    score: float | None = None


class Rule:
    """What counts as drift for one field."""

    name = "rule"

    def judge(self, old: Any, new: Any) -> Judgement:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Exact(Rule):
    """Any change is drift."""

    name = "exact"

    def judge(self, old: Any, new: Any) -> Judgement:
        return Judgement(tolerated=False)


@dataclass(frozen=True)
class Similar(Rule):
    """Text may change while its similarity to the golden text stays at ``threshold``."""

    threshold: float = DEFAULT_SIMILARITY
    name = "similar"

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"drift.similar threshold must be in [0, 1], not {self.threshold}")

    def judge(self, old: Any, new: Any) -> Judgement:
        if not isinstance(old, str) or not isinstance(new, str):
            return Judgement(tolerated=False)
        score = round(fuzz.ratio(old, new) / 100.0, 3)
        return Judgement(tolerated=score >= self.threshold, score=score)

    def __str__(self) -> str:
        return f"similar({self.threshold:g})"


@dataclass(frozen=True)
class Unordered(Rule):
    """A list whose order does not matter; its items are compared as a multiset."""

    name = "unordered"

    def judge(self, old: Any, new: Any) -> Judgement:
        return Judgement(tolerated=False)


@dataclass(frozen=True)
class Ignore(Rule):
    """Never drift; changes are not even reported."""

    name = "ignore"

    def judge(self, old: Any, new: Any) -> Judgement:
        return Judgement(tolerated=True)


@dataclass(frozen=True)
class Tolerance(Rule):
    """A number may move by ``abs`` or by the fraction ``rel`` of the golden value."""

    abs: float = 0.0
    rel: float = 0.0
    name = "tolerance"

    def judge(self, old: Any, new: Any) -> Judgement:
        numbers = (int, float)
        if not isinstance(old, numbers) or not isinstance(new, numbers):
            return Judgement(tolerated=False)
        # ``rel`` is a fraction of the golden value, not of whichever is larger.
        allowed = max(self.abs, self.rel * abs(old))
        return Judgement(tolerated=abs(new - old) <= allowed, score=round(float(new - old), 9))

    def __str__(self) -> str:
        parts = [f"abs={self.abs:g}"] if self.abs else []
        parts += [f"rel={self.rel:g}"] if self.rel else []
        return f"tolerance({', '.join(parts)})"


def exact() -> Exact:
    return Exact()


def similar(threshold: float = DEFAULT_SIMILARITY) -> Similar:
    return Similar(threshold)


def unordered() -> Unordered:
    return Unordered()


def ignore() -> Ignore:
    return Ignore()


def tolerance(abs: float = 0.0, *, rel: float = 0.0) -> Tolerance:
    return Tolerance(abs=abs, rel=rel)


@dataclass(frozen=True)
class PolicyDefaults:
    """Project defaults, from ini keys."""

    similarity: float = DEFAULT_SIMILARITY
    structure_changes_fail: bool = True
    """Whether a field that appears or disappears is drift, or only a tolerated change."""


DEFAULTS = PolicyDefaults()

Path = Sequence[str | int]


class DriftPolicy:
    """The rule for every field of one output type."""

    def __init__(self, annotation: Any, defaults: PolicyDefaults = DEFAULTS) -> None:
        self.annotation = annotation
        self.defaults = defaults

    def rule_at(self, path: Path, value: Any) -> Rule:
        """The rule that governs the field at ``path``, whose value (old or new) is ``value``."""
        declared = _declared_rule(self.annotation, list(path), None)
        if declared is not None:
            return declared
        return Similar(self.defaults.similarity) if isinstance(value, str) else Exact()

    def unordered_at(self, path: Path) -> bool:
        return isinstance(_declared_rule(self.annotation, list(path), None), Unordered)


def _rules_in(metadata: Sequence[Any]) -> Rule | None:
    rules = [item for item in metadata if isinstance(item, Rule)]
    return rules[-1] if rules else None


def _declared_rule(annotation: Any, path: list[str | int], inherited: Rule | None) -> Rule | None:
    """Walk the type along ``path``; the deepest declared rule wins."""
    if typing.get_origin(annotation) is typing.Annotated:
        base, *metadata = typing.get_args(annotation)
        return _declared_rule(base, path, _rules_in(metadata) or inherited)
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        # Optional[Annotated[str, rule]]: the rule sits inside the union.
        for option in typing.get_args(annotation):
            if option is not type(None):
                found = _declared_rule(option, path, inherited)
                if found is not inherited:
                    return found
        return inherited
    if not path:
        return inherited
    head, rest = path[0], path[1:]
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        field = annotation.model_fields.get(str(head))
        if field is None:
            return inherited
        own = _rules_in(field.metadata) or inherited
        return _declared_rule(field.annotation, rest, own)
    if isinstance(annotation, type) and (
        dataclasses.is_dataclass(annotation) or typing.is_typeddict(annotation)
    ):
        hints = typing.get_type_hints(annotation, include_extras=True)
        return _declared_rule(hints[str(head)], rest, inherited) if head in hints else inherited
    if origin in (list, tuple, set, frozenset, Sequence) and isinstance(head, int):
        arguments = typing.get_args(annotation)
        return _declared_rule(arguments[0] if arguments else Any, rest, inherited)
    if origin is dict:
        arguments = typing.get_args(annotation)
        return _declared_rule(arguments[1] if arguments else Any, rest, inherited)
    return inherited
