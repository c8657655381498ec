"""Drift rules for output fields, used as ``Annotated`` metadata.

from pytest_promptflow import drift

class Urgency(BaseModel):
    level: Annotated[int, Field(ge=1, le=5), drift.exact()]
    reason: Annotated[str, drift.facts()]
    resolution: Annotated[str, drift.judged("the same resolution is offered")]
"""

from __future__ import annotations

from pytest_promptflow.drift.judging import (
    AnthropicJudge,
    MalformedVerdictError,
    OpenAIJudge,
    parse_verdict,
    use_judge,
)
from pytest_promptflow.drift.policy import (
    Exact,
    Facts,
    Ignore,
    Judge,
    Judged,
    Rule,
    Similar,
    Tolerance,
    Unordered,
    Verdict,
    exact,
    facts,
    ignore,
    judged,
    similar,
    tolerance,
    unordered,
)
from pytest_promptflow.errors import JudgeError

__all__ = [
    "AnthropicJudge",
    "Exact",
    "Facts",
    "Ignore",
    "Judge",
    "JudgeError",
    "Judged",
    "MalformedVerdictError",
    "OpenAIJudge",
    "Rule",
    "Similar",
    "Tolerance",
    "Unordered",
    "Verdict",
    "exact",
    "facts",
    "ignore",
    "judged",
    "parse_verdict",
    "similar",
    "tolerance",
    "unordered",
    "use_judge",
]
