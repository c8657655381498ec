"""The data that crosses each boundary of the support-triage chain.

The constraints are deliberately strict: they are the contract every step's
output is validated against, so a model reply that drifts out of shape fails
at the step that produced it instead of three steps later.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from pytest_promptflow import drift

# The fictional product line the support team answers for. The extract step
# must name one of these, spelled exactly like this.
PRODUCTS: tuple[str, ...] = (
    "Acme Ledger",
    "Acme Pulse",
    "Acme Vault",
    "Acme Relay",
    "Acme Canvas",
)

Channel = Literal["email", "web", "chat", "phone"]
Plan = Literal["free", "team", "business", "enterprise"]
Sentiment = Literal["calm", "frustrated", "angry"]
Category = Literal["billing", "bug", "account", "how-to", "outage"]
Tone = Literal["friendly", "apologetic", "neutral"]

CATEGORIES: tuple[Category, ...] = ("billing", "bug", "account", "how-to", "outage")

NonEmptyLine = Annotated[str, Field(min_length=3, max_length=300)]


class Ticket(BaseModel):
    """A support request as it arrives, before anyone has read it."""

    # Unknown fields are an error so that a typo in a fixture file is caught
    # instead of silently dropped.
    model_config = ConfigDict(extra="forbid")

    customer_name: str = Field(min_length=1, max_length=120)
    customer_email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    # What the customer picked in the web form; email and phone tickets
    # usually have none, and the product has to be read from the text.
    product: str | None = None
    plan: Plan = "team"
    channel: Channel
    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=10, max_length=5000)


class Problem(BaseModel):
    """What the customer's problem is, in the support team's words."""

    product: str = Field(min_length=1)
    summary: str = Field(min_length=10, max_length=280)
    # The same symptoms listed in another order are the same problem.
    symptoms: Annotated[list[NonEmptyLine], Field(min_length=1, max_length=8), drift.unordered()]
    customer_goal: str = Field(min_length=5, max_length=300)
    sentiment: Sentiment


class Classification(BaseModel):
    """How urgent the problem is and which queue it belongs to."""

    level: Annotated[int, Field(ge=1, le=5), drift.exact()]
    category: Category
    # Reworded is fine; a reason that drops the product or the quoted symptom is not.
    reason: Annotated[str, Field(min_length=15, max_length=400), drift.facts()]


class Resolution(BaseModel):
    """The plan the support agent follows to solve the problem."""

    steps: list[NonEmptyLine] = Field(min_length=1, max_length=6)
    needs_escalation: bool
    kb_article: str | None = Field(default=None, pattern=r"^KB-\d{4}$")


class Reply(BaseModel):
    """The answer drafted for the customer, reviewed by an agent before sending."""

    subject: str = Field(min_length=3, max_length=120)
    # A reply is reviewed by an agent before sending: rewording is tolerated, but not a
    # changed name, amount, date, article number or negation.
    body: Annotated[str, Field(min_length=40, max_length=4000), drift.facts()]
    tone: Annotated[Tone, drift.exact()]


class TriageResult(BaseModel):
    """Everything the chain produced for one ticket."""

    problem: Problem
    classification: Classification
    resolution: Resolution
    reply: Reply
