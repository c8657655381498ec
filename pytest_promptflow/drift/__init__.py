"""Drift rules for output fields, used as ``Annotated`` metadata.

from pytest_promptflow import drift

class Urgency(BaseModel):
    level: Annotated[int, Field(ge=1, le=5), drift.exact()]
    reason: Annotated[str, drift.similar(0.8)]
"""

from __future__ import annotations

from pytest_promptflow.drift.policy import (
    Exact,
    Ignore,
    Rule,
    Similar,
    Tolerance,
    Unordered,
    exact,
    ignore,
    similar,
    tolerance,
    unordered,
)

__all__ = [
    "Exact",
    "Ignore",
    "Rule",
    "Similar",
    "Tolerance",
    "Unordered",
    "exact",
    "ignore",
    "similar",
    "tolerance",
    "unordered",
]
