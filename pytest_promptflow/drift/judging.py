"""Judges: a model decides whether a field's new value means the same as its golden one.

A field declared ``drift.judged(criteria)`` is judged by a callable
``(old, new, criteria) -> Verdict``: one of the user's own, passed as ``judge=``, or the
project's, set once with ``drift.use_judge(...)`` in ``conftest.py``. ``OpenAIJudge`` and
``AnthropicJudge`` are ready-made judges for the user's own clients, with the prompt
below and a strict parser of the JSON verdict.

The judge's HTTP calls are made while its ``JudgeTag`` is current, so the cassette layer
records them in the case's recorded run tagged with the step and the field, and replays
them offline like any step's calls. A ``JudgeSession`` lives for one case: it asks each
(old, new, criteria) once, and turns a judge that fails or answers out of shape into a
``JudgeError`` naming the step and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from pytest_promptflow.drift.policy import Judge, Judged, Judgement, Verdict
from pytest_promptflow.errors import JudgeError, PromptflowError
from pytest_promptflow.trace import JudgeTag, judging

JUDGE_PROMPT = """\
You compare two values produced by one step of an LLM application: the golden value, \
reviewed and accepted earlier, and the new value the step produces now.

Criteria: {criteria}

Golden value:
{old}

New value:
{new}

Does the new value mean the same as the golden value under the criteria? Wording, \
order and style do not matter; only what the criteria name does.
Answer with a JSON object and nothing else, of the form \
{{"equivalent": true or false, "reason": "one short sentence"}}."""
"""The prompt of the ready-made judges; ``{criteria}``, ``{old}`` and ``{new}`` (JSON)."""

DEFAULT_JUDGE_MODEL = "gpt-4o-mini"
DEFAULT_ANTHROPIC_JUDGE_MODEL = "claude-haiku-4-5"

_project_judge: Judge | None = None


def use_judge(judge: Judge | None) -> None:
    """Set the project's judge, used by every ``drift.judged`` rule without ``judge=``.
    Call it once, in ``conftest.py``; ``None`` removes it."""
    global _project_judge
    if judge is not None and not callable(judge):
        raise TypeError(f"use_judge takes a callable (old, new, criteria) -> Verdict: {judge!r}")
    _project_judge = judge


def project_judge() -> Judge | None:
    return _project_judge


def judge_prompt(old: Any, new: Any, criteria: str) -> str:
    """The ready-made judges' prompt for one pair of values."""
    return JUDGE_PROMPT.format(
        criteria=criteria,
        old=json.dumps(old, ensure_ascii=False, indent=2),
        new=json.dumps(new, ensure_ascii=False, indent=2),
    )


class MalformedVerdictError(ValueError):
    """A judge's reply that is not exactly a verdict."""


def parse_verdict(text: str) -> Verdict:
    """The verdict in a judge's reply: exactly ``{"equivalent": bool, "reason": str}``."""
    try:
        document = json.loads(text)
    except ValueError:
        raise MalformedVerdictError(f"the reply is not a JSON object: {text[:200]!r}") from None
    if not isinstance(document, dict) or set(document) != {"equivalent", "reason"}:
        raise MalformedVerdictError(
            'the reply must be a JSON object with exactly "equivalent" and "reason", '
            f"not {text[:200]!r}"
        )
    equivalent, reason = document["equivalent"], document["reason"]
    if not isinstance(equivalent, bool):
        raise MalformedVerdictError(f'"equivalent" must be true or false, not {equivalent!r}')
    if not isinstance(reason, str) or not reason.strip():
        raise MalformedVerdictError(f'"reason" must be a non-empty string, not {reason!r}')
    return Verdict(equivalent, reason.strip())


class _ChatCompletions(Protocol):
    def create(self, **arguments: Any) -> Any: ...


@dataclass(frozen=True)
class OpenAIJudge:
    """A judge on an OpenAI client (or any OpenAI-compatible endpoint it points at)."""

    client: Any
    model: str = DEFAULT_JUDGE_MODEL

    def __call__(self, old: Any, new: Any, criteria: str) -> Verdict:
        reply = self.client.chat.completions.create(
            model=self.model,
            messages=[{"role": "user", "content": judge_prompt(old, new, criteria)}],
            response_format={"type": "json_object"},
            temperature=0,
        )
        return parse_verdict(reply.choices[0].message.content or "")


@dataclass(frozen=True)
class AnthropicJudge:
    """A judge on an Anthropic client."""

    client: Any
    model: str = DEFAULT_ANTHROPIC_JUDGE_MODEL
    max_tokens: int = 300

    def __call__(self, old: Any, new: Any, criteria: str) -> Verdict:
        reply = self.client.messages.create(
            model=self.model,
            max_tokens=self.max_tokens,
            messages=[{"role": "user", "content": judge_prompt(old, new, criteria)}],
            # anthropic 1.0 dropped the ``temperature`` argument; the API still reads the
            # field, which ``extra_body`` sends with every version of the SDK.
            extra_body={"temperature": 0},
        )
        text = "".join(getattr(block, "text", "") for block in reply.content)
        return parse_verdict(text)


@dataclass
class JudgeSession:
    """The judgements of one case: each (old, new, criteria) is asked once."""

    case: str | None = None
    asked: dict[tuple[str, str, str], Verdict] = field(default_factory=dict)

    def judge(self, rule: Judged, step: str, path: str, old: Any, new: Any) -> Judgement:
        key = (
            rule.criteria,
            json.dumps(old, sort_keys=True, ensure_ascii=False),
            json.dumps(new, sort_keys=True, ensure_ascii=False),
        )
        verdict = self.asked.get(key)
        if verdict is None:
            verdict = self.asked[key] = self._ask(rule, step, path, old, new)
        return Judgement(tolerated=verdict.equivalent, score=verdict.reason)

    def _ask(self, rule: Judged, step: str, path: str, old: Any, new: Any) -> Verdict:
        judge = rule.judge_with or project_judge()
        where = f"the judge of step {step!r}, field {path}" + (
            f", in case {self.case}" if self.case else ""
        )
        if judge is None:
            raise JudgeError(
                f"{where}: the field is drift.judged({rule.criteria!r}) but no judge is set; "
                "call pytest_promptflow.drift.use_judge(...) in conftest.py, or pass "
                "judge= to drift.judged"
            )
        problem: str | None = None
        try:
            with judging(JudgeTag(step, path)):
                verdict = judge(old, new, rule.criteria)
        except PromptflowError:
            raise
        except MalformedVerdictError as error:
            problem = f"malformed verdict: {error}"
        except Exception as error:
            problem = f"{type(error).__name__}: {error}"
        if problem is not None:
            raise JudgeError(f"{where} failed: {problem}")
        if not isinstance(verdict, Verdict):
            raise JudgeError(
                f"{where} returned {verdict!r}; a judge returns "
                "drift.Verdict(equivalent=..., reason=...)"
            )
        return verdict
