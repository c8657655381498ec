"""Per-field drift rules, declared where the type is declared.

    class Urgency(BaseModel):
        level: Annotated[int, Field(ge=1, le=5), drift.exact()]
        reason: Annotated[str, drift.similar(0.8)]

A rule on a field covers everything below it unless a deeper field has its own. A
field without a rule gets the project default: ``facts()`` for free text (``similar``
when the project chooses it), ``exact()`` for everything else, literals and enums
included. A new rule is a small frozen dataclass with a ``judge(old, new)`` method.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Union

import pydantic

if TYPE_CHECKING:
    from pytest_promptflow.drift.text_facts import Grounds

DEFAULT_SIMILARITY = 0.85
TextRuleName = Literal["facts", "similar"]


@dataclass(frozen=True)
class Judgement:
    tolerated: bool
    score: float | str | None = None
    """What the rule measured: a similarity, a delta, the differing facts, a judge's reason."""


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
        from rapidfuzz import fuzz  # only once a text differs: it is slow to import

        score = round(fuzz.ratio(old, new) / 100.0, 3)
        return Judgement(tolerated=score >= self.threshold, score=score)

    def __str__(self) -> str:
        return f"similar({self.threshold:g})"


@dataclass(frozen=True)
class Facts(Rule):
    """Text may be reworded as long as it asserts the same facts: negations, numbers with
    their units and what they qualify, dates and times, names, identifiers, emails, URLs
    and quotes (see ``pytest_promptflow.drift.text_facts``). The score of a change names the
    differing facts.

    With ``grounds`` (the step call's inputs, which only the drift gate passes), a fact
    the new text adds that the inputs state is no drift; the score names it as
    ``grounded``."""

    name = "facts"

    def judge(self, old: Any, new: Any, *, grounds: Grounds | None = None) -> Judgement:
        if not isinstance(old, str) or not isinstance(new, str):
            return Judgement(tolerated=False)
        from pytest_promptflow.drift.text_facts import describe, drifted, fact_changes

        differences = fact_changes(old, new, grounds)
        if not differences:
            return Judgement(tolerated=True)
        return Judgement(tolerated=not drifted(differences), score=describe(differences))

    @staticmethod
    def grounds_of(inputs: Mapping[str, Any]) -> Grounds:
        """What a step call's data inputs (in JSON form) state, read when first needed."""
        from pytest_promptflow.drift.text_facts import Grounds

        return Grounds(inputs)

    def __str__(self) -> str:
        return "facts()"


@dataclass(frozen=True)
class Verdict:
    """A judge's answer: whether the new value means the same as the golden one, and why."""

    equivalent: bool
    reason: str


Judge = Callable[[Any, Any, str], Verdict]
"""``judge(old, new, criteria) -> Verdict``: decides whether ``new`` means ``old``."""


@dataclass(frozen=True)
class Judged(Rule):
    """A model decides whether the new value means the same as the golden one under
    ``criteria``. Its calls are recorded and replayed like a step's (see
    ``pytest_promptflow.drift.judging``); the score of a change is the judge's reason."""

    criteria: str
    judge_with: Judge | None = None
    """The judge; None: the project's, set with ``drift.use_judge``."""
    name = "judged"

    def __post_init__(self) -> None:
        if not isinstance(self.criteria, str) or not self.criteria.strip():
            raise ValueError("drift.judged needs criteria: what must stay the same")
        if self.judge_with is not None and not callable(self.judge_with):
            raise TypeError(
                f"drift.judged(judge=...) takes a callable (old, new, criteria) -> Verdict, "
                f"not {self.judge_with!r}"
            )

    def judge(self, old: Any, new: Any) -> Judgement:
        raise TypeError("a judged field is judged through drift.judging.JudgeSession")

    def __str__(self) -> str:
        return f"judged({self.criteria!r})"


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


def facts() -> Facts:
    return Facts()


def judged(criteria: str, judge: Judge | None = None) -> Judged:
    return Judged(criteria, judge)


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
    text_rule: TextRuleName = "facts"
    """The rule of a free-text field that declares none: ``facts`` or ``similar``."""


DEFAULTS = PolicyDefaults()

Path = Sequence[str | int]


@dataclass(frozen=True)
class DeclaredRule:
    """A rule found on the type, and how deep along the path it was declared."""

    rule: Rule | None
    depth: int
    """The length of the path to the field that declares ``rule`` (0: the whole output)."""
    leaf: Any
    """The annotation of the field at the end of the path, when the type says it."""


class DriftPolicy:
    """The rule for every field of one output type."""

    def __init__(self, annotation: Any, defaults: PolicyDefaults = DEFAULTS) -> None:
        self.annotation = annotation
        self.defaults = defaults
        self._cache: dict[tuple[str | int, ...], DeclaredRule] = {}

    @classmethod
    def of(cls, annotation: Any, defaults: PolicyDefaults = DEFAULTS) -> DriftPolicy:
        """The policy of ``annotation``, shared by every comparison of the session, so
        that the rule of each path is worked out from the type once."""
        try:
            return _shared_policy(annotation, defaults)
        except TypeError:  # an annotation that cannot be hashed
            return cls(annotation, defaults)

    def declared_at(self, path: Path) -> DeclaredRule:
        key = tuple(path)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = _declared_rule(self.annotation, list(key), None, 0, 0)
        return found

    def rule_at(self, path: Path, value: Any) -> Rule:
        """The rule that governs the field at ``path``, whose value (old or new) is ``value``."""
        declared = self.declared_at(path)
        if declared.rule is not None:
            return declared.rule
        if isinstance(value, str) and not _is_closed_choice(declared.leaf):
            if self.defaults.text_rule == "similar":
                return Similar(self.defaults.similarity)
            return Facts()
        return Exact()

    def unordered_at(self, path: Path) -> bool:
        return isinstance(self.declared_at(path).rule, Unordered)


@functools.lru_cache(maxsize=256)
def _shared_policy(annotation: Any, defaults: PolicyDefaults) -> DriftPolicy:
    return DriftPolicy(annotation, defaults)


def _is_closed_choice(annotation: Any) -> bool:
    """A ``Literal`` or an enum: a label from a fixed set, which only an exact match keeps."""
    return _finite(annotation, flags=False)


def has_finite_values(annotation: Any) -> bool:
    """A ``Literal``, an enum or a ``bool`` (optional or not): a field whose answers can be
    counted per value, as a confusion matrix does."""
    return _finite(annotation, flags=True)


def _finite(annotation: Any, *, flags: bool) -> bool:
    if typing.get_origin(annotation) is typing.Annotated:
        return _finite(typing.get_args(annotation)[0], flags=flags)
    if typing.get_origin(annotation) is Literal:
        return True
    if typing.get_origin(annotation) in (Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return bool(options) and all(_finite(option, flags=flags) for option in options)
    if flags and annotation is bool:
        return True
    return isinstance(annotation, type) and issubclass(annotation, enum.Enum)


def _rules_in(metadata: Sequence[Any]) -> Rule | None:
    rules = [item for item in metadata if isinstance(item, Rule)]
    return rules[-1] if rules else None


def _declared_rule(
    annotation: Any, path: list[str | int], inherited: Rule | None, origin: int, depth: int
) -> DeclaredRule:
    """Walk the type along ``path``; the deepest declared rule wins. ``origin`` is the
    depth the inherited rule was declared at, ``depth`` how far along the path we are."""
    if typing.get_origin(annotation) is typing.Annotated:
        base, *metadata = typing.get_args(annotation)
        own = _rules_in(metadata)
        if own is not None:
            inherited, origin = own, depth
        return _declared_rule(base, path, inherited, origin, depth)
    kind = typing.get_origin(annotation)
    if kind in (Union, types.UnionType):
        # Optional[Annotated[str, rule]]: the rule sits inside the union.
        options = [option for option in typing.get_args(annotation) if option is not type(None)]
        found_in = [_declared_rule(option, path, inherited, origin, depth) for option in options]
        declared = [found for found in found_in if found.rule is not inherited]
        if declared:
            return declared[0]
        if len(found_in) == 1:
            return found_in[0]  # Optional[X]: the field is an X, and its leaf type is X's
        return DeclaredRule(inherited, origin, annotation if not path else Any)
    if not path:
        return DeclaredRule(inherited, origin, annotation)
    head, rest = path[0], path[1:]
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        field = _model_field(annotation, str(head))
        if field is None:
            return DeclaredRule(inherited, origin, Any)
        own = _rules_in(field.metadata)
        if own is not None:
            inherited, origin = own, depth + 1
        return _declared_rule(field.annotation, rest, inherited, origin, depth + 1)
    if isinstance(annotation, type) and (
        dataclasses.is_dataclass(annotation) or typing.is_typeddict(annotation)
    ):
        hints = typing.get_type_hints(annotation, include_extras=True)
        if head not in hints:
            return DeclaredRule(inherited, origin, Any)
        return _declared_rule(hints[str(head)], rest, inherited, origin, depth + 1)
    if kind in (list, tuple, set, frozenset, Sequence) and isinstance(head, int):
        arguments = typing.get_args(annotation)
        return _declared_rule(
            arguments[0] if arguments else Any, rest, inherited, origin, depth + 1
        )
    if kind is dict:
        arguments = typing.get_args(annotation)
        return _declared_rule(
            arguments[1] if arguments else Any, rest, inherited, origin, depth + 1
        )
    return DeclaredRule(inherited, origin, Any)


def _model_field(model: type[pydantic.BaseModel], name: str) -> Any:
    """The field a JSON key names: by its name, or by its serialization alias."""
    field = model.model_fields.get(name)
    if field is not None:
        return field
    for candidate in model.model_fields.values():
        if name in (candidate.serialization_alias, candidate.alias):
            return candidate
    return None
