"""Property checks run at each step boundary of the triage chain.

A check is a plain function. It receives, by parameter name, any of the step's
data inputs plus ``output`` (the step's validated result) and returns False to
fail. The first line of its docstring is what a failure reports, so it states
the property. The checks encode what a support lead looks for when reviewing
the chain's work, beyond what the output types already guarantee.
"""

from __future__ import annotations

import re

from triage.models import Classification, Problem, Reply, Resolution, Ticket

# A level-5 problem (an outage, data at risk) always involves engineering.
ESCALATION_LEVEL = 5

# What a draft looks like when the model left the agent something to fill in.
_PLACEHOLDER = re.compile(
    r"\[(?:customer |your |agent )?name\]|\{\{|\}\}|<[A-Z_]{3,}>", re.IGNORECASE
)


def _mentions_product(text: str, product: str) -> bool:
    """True when `text` names `product`, also by its short name ("Vault" for "Acme Vault")."""
    lowered = text.lower()
    short_name = product.lower().removeprefix("acme ").strip()
    if not short_name:
        # A blank product, or the bare brand, names nothing (and \b\b would match anywhere).
        return False
    return product.lower() in lowered or bool(re.search(rf"\b{re.escape(short_name)}\b", lowered))


# --- extract ---------------------------------------------------------------


def problem_names_a_product_from_the_ticket(ticket: Ticket, output: Problem) -> bool:
    """The product was picked in the form or is named in the ticket, never guessed."""
    if ticket.product is not None and output.product.lower() == ticket.product.lower():
        return True
    return _mentions_product(f"{ticket.subject}\n{ticket.body}", output.product)


def symptoms_are_distinct(output: Problem) -> bool:
    """No symptom is listed twice.

    A repeated symptom inflates its weight in the later steps.
    """
    normalised = [symptom.strip().lower() for symptom in output.symptoms]
    return len(normalised) == len(set(normalised))


# --- classify --------------------------------------------------------------


def reason_refers_to_the_problem(problem: Problem, output: Classification) -> bool:
    """The reason names the product or quotes a reported symptom, instead of being generic."""
    if _mentions_product(output.reason, problem.product):
        return True
    reason = output.reason.lower()
    return any(symptom.lower().rstrip(".!? ") in reason for symptom in problem.symptoms)


def outages_are_urgent(output: Classification) -> bool:
    """An outage is urgency level 4 or 5.

    Queued any lower, it would wait behind routine questions.
    """
    return output.category != "outage" or output.level >= 4


# --- resolve ---------------------------------------------------------------


def top_urgency_is_escalated(classification: Classification, output: Resolution) -> bool:
    """A level-5 problem is escalated to engineering."""
    return classification.level < ESCALATION_LEVEL or output.needs_escalation


def steps_are_distinct(output: Resolution) -> bool:
    """No resolution step is listed twice."""
    normalised = [action.strip().lower() for action in output.steps]
    return len(normalised) == len(set(normalised))


# --- draft -----------------------------------------------------------------


def reply_greets_the_customer_by_name(ticket: Ticket, output: Reply) -> bool:
    """The greeting line addresses the customer by (part of) their name."""
    lines = output.body.strip().splitlines()
    greeting = lines[0] if lines else ""
    return any(part in greeting for part in ticket.customer_name.split() if len(part) > 1)


def reply_names_the_product(problem: Problem, output: Reply) -> bool:
    """The reply names the product the problem is about."""
    return _mentions_product(output.body, problem.product)


def escalated_reply_says_so(resolution: Resolution, output: Reply) -> bool:
    """An escalated case says so in the reply.

    A customer whose case went to engineering is told, so they expect a wait.
    """
    return not resolution.needs_escalation or "escalat" in output.body.lower()


def reply_cites_the_kb_article(resolution: Resolution, output: Reply) -> bool:
    """The reply cites the knowledge-base article the resolution chose, if any."""
    return resolution.kb_article is None or resolution.kb_article in output.body


def reply_has_no_placeholders(output: Reply) -> bool:
    """The reply has no placeholder such as [Name] or {{ name }} left to fill in."""
    return _PLACEHOLDER.search(output.body) is None and _PLACEHOLDER.search(output.subject) is None
