"""An example support-triage chain tested with pytest-promptflow."""

from triage.chain import classify, draft, extract, resolve, triage
from triage.models import (
    CATEGORIES,
    PRODUCTS,
    Category,
    Classification,
    Problem,
    Reply,
    Resolution,
    Ticket,
    TriageResult,
)

__all__ = [
    "CATEGORIES",
    "PRODUCTS",
    "Category",
    "Classification",
    "Problem",
    "Reply",
    "Resolution",
    "Ticket",
    "TriageResult",
    "classify",
    "draft",
    "extract",
    "resolve",
    "triage",
]
