"""A deterministic, rule-based stand-in for the OpenAI chat completions API.

It lets the example chain run end to end with no API key and no network: the
session fixture in ``examples/conftest.py`` serves it from a local
pytest-httpserver, and the OpenAI client is pointed at it.

How it answers:

* The step that is asking is read from the ``Task: <step> - ...`` line of the
  system message (``prompts/system.j2``); the step's inputs are read back from
  the labelled lines of the user message its own template rendered.
* Each step has a small set of keyword rules that compute a plausible answer:
  the product from the known product line, the category and urgency from words
  like "down", "charged twice" or "crash", a playbook of resolution steps per
  category, and a reply that greets the customer and names the product.
* Everything is a pure function of the request body. Ids, timings and the
  ``created`` timestamp are fixed or derived from a hash of the body, so the
  same request always gets the same bytes back, which keeps recordings made
  against this server stable.

Streaming requests (``"stream": true``) get a ``text/event-stream`` body of
``chat.completion.chunk`` events ending with ``data: [DONE]``, like the real API.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from triage.models import PRODUCTS, Category

CHAT_COMPLETIONS_PATH = "/v1/chat/completions"
SERVED_MODEL = "gpt-4o-mini-2024-07-18"
SYSTEM_FINGERPRINT = "fp_acme0triage"
# A fixed "created" time: a real timestamp would change every recording.
CREATED = 1_718_000_000
# How many words go into one streamed delta. The real API streams single tokens;
# a few words per event still splits every reply into several deltas while
# keeping recordings of streamed replies short enough to review.
WORDS_PER_DELTA = 8

JsonObject = dict[str, Any]


class BadRequest(Exception):
    """A request the real API would answer with 400 invalid_request_error."""


def install(httpserver: HTTPServer) -> None:
    """Serve the fake chat completions endpoint on `httpserver`."""
    httpserver.expect_request(CHAT_COMPLETIONS_PATH, method="POST").respond_with_handler(
        handle_chat_completion
    )


def handle_chat_completion(request: Request) -> Response:
    """The werkzeug handler for ``POST /v1/chat/completions``."""
    if not request.headers.get("Authorization", "").startswith("Bearer "):
        return _error_response(
            401, "You didn't provide an API key.", "invalid_request_error", request.data
        )
    try:
        body = json.loads(request.data)
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object.")
        content = answer(body)
    except (ValueError, BadRequest) as error:
        return _error_response(400, str(error), "invalid_request_error", request.data)

    # Hash the canonical form, so that two clients that order keys differently
    # still get the same ids and headers for the same request.
    fingerprint = _fingerprint(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
    )
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = _stream_events(body, content, fingerprint, include_usage=include_usage)
        payload = "".join(f"data: {json.dumps(event, ensure_ascii=False)}\n\n" for event in events)
        payload += "data: [DONE]\n\n"
        return Response(
            payload.encode("utf-8"),
            status=200,
            headers=_response_headers(fingerprint),
            content_type="text/event-stream; charset=utf-8",
        )
    completion = {
        "id": f"chatcmpl-{fingerprint[:24]}",
        "object": "chat.completion",
        "created": CREATED,
        "model": SERVED_MODEL,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(body, content),
    }
    return Response(
        json.dumps(completion, ensure_ascii=False).encode("utf-8"),
        status=200,
        headers=_response_headers(fingerprint),
        content_type="application/json",
    )


def answer(body: JsonObject) -> str:
    """The assistant's reply text (a JSON object) to a chat completions request body."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array.")
    if not all(isinstance(message, dict) for message in messages):
        raise BadRequest("Each entry of 'messages' must be an object.")
    system = "\n".join(_text_of(m) for m in messages if m.get("role") in ("system", "developer"))
    user = "\n".join(_text_of(m) for m in messages if m.get("role") == "user")
    wants_json = (body.get("response_format") or {}).get("type") == "json_object"
    if wants_json and "json" not in (system + user).lower():
        # The real API refuses JSON mode unless the prompt asks for JSON.
        raise BadRequest(
            "'messages' must contain the word 'json' in some form, "
            "to use 'response_format' of type 'json_object'."
        )
    task_match = re.search(r"^Task:\s*([\w-]+)", system, re.MULTILINE)
    if task_match is None or task_match.group(1) not in _ANSWERERS:
        raise BadRequest(
            "This fake model only answers the triage steps: extract, classify, resolve, draft."
        )
    reply = _ANSWERERS[task_match.group(1)](user)
    return json.dumps(reply, ensure_ascii=False)


# --- reading the rendered prompts back -------------------------------------


def _text_of(message: JsonObject) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # the "content parts" form
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _field(prompt: str, label: str) -> str:
    """The value of a ``Label: value`` line (optionally a ``- Label: value`` item)."""
    found = re.search(rf"^(?:- )?{re.escape(label)}:[ \t]*(.*)$", prompt, re.MULTILINE)
    if found is None:
        raise BadRequest(f"The prompt has no '{label}:' line.")
    return found.group(1).strip()


def _list_after(prompt: str, label: str) -> list[str]:
    """The ``- item`` or ``1. item`` lines that follow a ``Label:`` line."""
    lines = prompt.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == f"{label}:")
    except StopIteration:
        raise BadRequest(f"The prompt has no '{label}:' list.") from None
    items: list[str] = []
    for line in lines[start + 1 :]:
        item = re.match(r"^\s*(?:-|\d+\.)\s+(.*)$", line)
        if item:
            items.append(item.group(1).strip())
        elif line.strip() or items:
            # A blank line may sit between the label and the list, not inside it.
            break
    return items


def _message_body(prompt: str) -> str:
    found = re.search(r"<message>\n(.*?)\n</message>", prompt, re.DOTALL)
    if found is None:
        raise BadRequest("The extract prompt has no <message> block.")
    return found.group(1).strip()


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


def _contains_any(text: str, words: tuple[str, ...]) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in words)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --- extract -----------------------------------------------------------------

_SYMPTOM_WORDS = (
    "error", "fail", "charged", "twice", " down", "503", "502", "500 ", "429", "crash",
    "can't", "cannot", "can not", "won't", "doesn't", "does not", "isn't", "not ", "never",
    "stopped", "wrong", "invalid", "locked", "timeout", "timed out", "missing", "lost",
    "blank", "freezes", "too many requests", "no longer", "billed", "refund",
)  # fmt: skip
_GOAL_WORDS = (
    "i want", "i'd like", "i would like", "we need", "i need", "we want", "we would like",
    "please", "how do i", "how can i", "how do we", "how can we", "is it possible",
    "is there a way", "can you", "could you",
)  # fmt: skip
_ANGRY_WORDS = (
    "unacceptable", "ridiculous", "furious", "third time", "worst", "lawyer", "!!!", "fed up",
)  # fmt: skip
_FRUSTRATED_WORDS = (
    "frustrat", "again", "still", "annoy", "disappoint", "urgent", "asap", "immediately",
)  # fmt: skip


def _detect_product(selected: str, text: str) -> str:
    if selected in PRODUCTS:
        return selected
    lowered = text.lower()
    positions: list[tuple[int, str]] = []
    for product in PRODUCTS:
        short_name = product.lower().removeprefix("acme ")
        found = re.search(rf"\b(?:acme )?{re.escape(short_name)}\b", lowered)
        if found:
            positions.append((found.start(), product))
    if not positions:
        raise BadRequest("No Acme product is named in the ticket.")
    return min(positions)[1]  # the product mentioned first


def _extract(prompt: str) -> JsonObject:
    subject = _field(prompt, "Subject")
    message = _message_body(prompt)
    product = _detect_product(
        _field(prompt, "Product selected in the form"), f"{subject}\n{message}"
    )
    sentences = _sentences(message)
    symptoms: list[str] = []
    for sentence in sentences:
        if _contains_any(f" {sentence}", _SYMPTOM_WORDS) and sentence not in symptoms:
            symptoms.append(_clip(sentence, 200))
    if not symptoms:
        # Nothing is broken (a question): the first real sentence says what it is
        # about; greetings such as "Hello!" are too short to count.
        substantial = [s for s in sentences if len(s.split()) >= 5] or sentences
        symptoms = [_clip(substantial[0], 200)]
    goal = next((s for s in sentences if _contains_any(s, _GOAL_WORDS)), None)
    if _contains_any(message, _ANGRY_WORDS):
        sentiment = "angry"
    elif _contains_any(message, _FRUSTRATED_WORDS):
        sentiment = "frustrated"
    else:
        sentiment = "calm"
    return {
        "product": product,
        "summary": _clip(f"{product}: {subject.rstrip('.!?')}.", 280),
        "symptoms": symptoms[:4],
        "customer_goal": _clip(goal or f"Get {product} working as expected again.", 300),
        "sentiment": sentiment,
    }


# --- classify ----------------------------------------------------------------

# Checked in this order: the first category whose words appear wins, so an
# outage that also locks people out is still an outage.
_CATEGORY_WORDS: tuple[tuple[Category, tuple[str, ...]], ...] = (
    ("outage", (
        "is down", "are down", "outage", "503", "502", "unreachable", "stopped delivering",
        "for everyone",
    )),
    ("billing", (
        "charged", "refund", "billed", "payment", "credit card", "subscription", "receipt",
    )),
    ("account", (
        "password", "log in", "login", "sign in", "sign-in", "sso", "saml", "2fa", "two-factor",
        "locked out",
    )),
    ("bug", (
        "crash", "error", "bug", "fail", "broken", "wrong", "429", "too many requests",
        "not working",
    )),
)  # fmt: skip
_BASE_LEVEL: dict[Category, int] = {"outage": 5, "bug": 3, "billing": 3, "account": 3, "how-to": 1}
_WIDESPREAD_WORDS = (
    "nobody", "no one", "everyone", "all users", "whole team", "entire company", "all of our",
)  # fmt: skip
# Words by which a question tells of something that went wrong ("never received"); read
# as loosely as a model reads them, so "could not find it" counts too.
_WENT_WRONG_WORDS = ("never", "not ", "n't", "no longer", "stopped", "lost", "missing", "fail")
# The line of an urgency scale that ranks such a question above a plain one.
QUESTION_GONE_WRONG = "a question about something that went wrong"
_CATEGORY_PHRASE: dict[Category, str] = {
    "outage": "an outage",
    "billing": "a billing problem",
    "account": "an account access problem",
    "bug": "a defect",
    "how-to": "a usage question",
}


def _classify(prompt: str) -> JsonObject:
    product = _field(prompt, "Product")
    symptoms = _list_after(prompt, "Symptoms")
    text = " ".join([_field(prompt, "Summary"), *symptoms, _field(prompt, "Customer goal")])
    category: Category = next(
        (name for name, words in _CATEGORY_WORDS if _contains_any(text, words)),
        "how-to",
    )
    level = _BASE_LEVEL[category]
    if category in ("account", "bug") and _contains_any(text, _WIDESPREAD_WORDS):
        level += 1
    # The urgency scale of the prompt decides whether trouble told in a question, and
    # anger alone, raise the level.
    if (
        category == "how-to"
        and QUESTION_GONE_WRONG in prompt
        and _contains_any(text, _WENT_WRONG_WORDS)
    ):
        level = 2
    if _field(prompt, "Customer sentiment") == "angry" and "angry enough to leave" in prompt:
        level += 1
    level = max(1, min(level, 5))
    evidence = symptoms[0] if symptoms else _field(prompt, "Summary")
    reason = f"{product} has {_CATEGORY_PHRASE[category]}."
    # Asked for the symptom that decided the level, the model quotes it.
    if "the symptom that decided the level" in prompt:
        reason = f'{product} has {_CATEGORY_PHRASE[category]}: the customer reports "{evidence}"'
    return {"level": level, "category": category, "reason": _clip(reason, 400)}


# --- resolve -----------------------------------------------------------------

_PLAYBOOK: dict[str, tuple[str, ...]] = {
    "outage": (
        "Check the status page and the on-call channel for an open {product} incident",
        "Link this ticket to the incident so the customer receives its updates",
        "Page the {product} on-call engineer with the customer's symptoms and timestamps",
    ),
    "billing": (
        "Open the customer's {product} billing history and find the charges they describe",
        "Refund any duplicate or mistaken charge to the original payment method",
        "Send the refund confirmation and the corrected invoice to the customer",
    ),
    "account": (
        "Verify the customer's identity against the email address on file",
        "Reset the customer's {product} sign-in method and revoke old sessions",
        "Ask the customer to sign in again and confirm they have access",
    ),
    "account/sso": (
        "Compare the {product} SAML settings with the identity provider's metadata",
        "Check that the audience URI and the signing certificate match on both sides",
        "Give an administrator a temporary password sign-in while the fix is applied",
    ),
    "bug": (
        "Reproduce the problem in {product} with the customer's steps, version and device",
        "Collect the error message, logs or crash report from the customer",
        "File a defect for the {product} team and share a workaround if one exists",
    ),
    "bug/rate-limit": (
        "Check the customer's current {product} rate-limit tier and usage graph",
        "Review the request log for bursts above the per-second limit",
        "Recommend retrying 429 responses with exponential backoff and jitter",
    ),
    "how-to": (
        "Find the {product} guide that covers what the customer wants to do",
        "Walk through the guide's steps using the customer's own example",
        "Offer a short call if the guide does not cover their case",
    ),
}
_SSO_WORDS = ("sso", "saml", "single sign-on", "okta", "identity provider")
_RATE_LIMIT_WORDS = ("429", "rate limit", "too many requests")
_KB_BASE: dict[str, int | None] = {
    "outage": None,  # outages are tracked on the status page, not in the KB
    "billing": 2100,
    "account": 3100,
    "account/sso": 3120,
    "bug": 4000,
    "bug/rate-limit": 4410,
    "how-to": 1000,
}


def _resolve(prompt: str) -> JsonObject:
    product = _field(prompt, "Product")
    category = _field(prompt, "Category")
    level = int(_field(prompt, "Urgency level"))
    text = " ".join([_field(prompt, "Summary"), *_list_after(prompt, "Symptoms")])
    playbook = category
    if category == "account" and _contains_any(text, _SSO_WORDS):
        playbook = "account/sso"
    elif category == "bug" and _contains_any(text, _RATE_LIMIT_WORDS):
        playbook = "bug/rate-limit"
    if playbook not in _PLAYBOOK:
        raise BadRequest(f"Unknown category {category!r}.")
    kb_base = _KB_BASE[playbook]
    product_number = PRODUCTS.index(product) if product in PRODUCTS else 0
    return {
        "steps": [action.format(product=product) for action in _PLAYBOOK[playbook]],
        "needs_escalation": level >= 4,
        "kb_article": None if kb_base is None else f"KB-{kb_base + product_number:04d}",
    }


# --- draft -------------------------------------------------------------------

_OPENING = {
    "angry": "I am sorry this has happened, and I understand why you are upset.",
    "frustrated": "I am sorry for the trouble this has caused you.",
    "calm": "Thanks for the clear description, it helps a lot.",
}


def _draft(prompt: str) -> JsonObject:
    name = _field(prompt, "Customer name")
    product = _field(prompt, "Product")
    sentiment = _field(prompt, "Customer sentiment")
    escalated = _field(prompt, "Escalated to engineering") == "yes"
    kb_article = _field(prompt, "Knowledge-base article")
    actions = _list_after(prompt, "Agreed resolution steps")
    # Greet with the first part of the name, as agents do in practice.
    greeting_name = name.split()[0]
    paragraphs = [
        f"Hi {greeting_name},",
        f"Thank you for contacting us about {product}. {_OPENING.get(sentiment, _OPENING['calm'])}",
        "Here is what we are doing next:\n"
        + "\n".join(f"{number}. {action}." for number, action in enumerate(actions, 1)),
    ]
    if escalated:
        paragraphs.append(
            f"I have escalated your case to our {product} engineering team, "
            "and we will update you as soon as we hear back from them."
        )
    if kb_article != "none":
        paragraphs.append(f"In the meantime, our help article {kb_article} has more background.")
    paragraphs.append("Best regards,\nAcme Support")
    return {
        "subject": _clip(f"Re: {_field(prompt, 'Original subject')}", 120),
        "body": "\n\n".join(paragraphs),
        "tone": "apologetic" if escalated or sentiment != "calm" else "friendly",
    }


_ANSWERERS: dict[str, Callable[[str], JsonObject]] = {
    "extract": _extract,
    "classify": _classify,
    "resolve": _resolve,
    "draft": _draft,
}


# --- the HTTP envelope -------------------------------------------------------


def _fingerprint(raw_body: bytes) -> str:
    return hashlib.sha256(raw_body).hexdigest()


def _response_headers(fingerprint: str) -> dict[str, str]:
    # The same headers a real deployment sends, with values derived from the
    # request so that they look volatile but never change between runs.
    return {
        "x-request-id": f"req_{fingerprint[:32]}",
        "openai-processing-ms": str(180 + int(fingerprint[:4], 16) % 900),
        "openai-version": "2020-10-01",
        "openai-organization": "acme-support-example",
        "openai-model": SERVED_MODEL,
        "x-ratelimit-limit-requests": "10000",
        "x-ratelimit-remaining-requests": "9999",
        "x-ratelimit-limit-tokens": "2000000",
        "x-ratelimit-remaining-tokens": "1999000",
        "x-ratelimit-reset-requests": "6ms",
        "x-ratelimit-reset-tokens": "30ms",
    }


def _count_tokens(text: str) -> int:
    # Roughly four characters per token, which is close enough for usage figures.
    return max(1, len(text) // 4)


def _usage(body: JsonObject, content: str) -> JsonObject:
    prompt_tokens = sum(_count_tokens(_text_of(m)) for m in body.get("messages", []))
    completion_tokens = _count_tokens(content)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _deltas(content: str) -> list[str]:
    words = re.findall(r"\S+\s*|\s+", content)
    return ["".join(words[i : i + WORDS_PER_DELTA]) for i in range(0, len(words), WORDS_PER_DELTA)]


def _stream_events(
    body: JsonObject, content: str, fingerprint: str, *, include_usage: bool
) -> Iterator[JsonObject]:
    def chunk(delta: JsonObject, finish_reason: str | None = None) -> JsonObject:
        event: JsonObject = {
            "id": f"chatcmpl-{fingerprint[:24]}",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": SERVED_MODEL,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if include_usage:
            event["usage"] = None
        return event

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    for piece in _deltas(content):
        yield chunk({"content": piece})
    yield chunk({}, finish_reason="stop")
    if include_usage:
        final = chunk({})
        final["choices"] = []
        final["usage"] = _usage(body, content)
        yield final


def _error_response(status: int, message: str, error_type: str, raw_body: bytes) -> Response:
    error = {"error": {"message": message, "type": error_type, "param": None, "code": None}}
    return Response(
        json.dumps(error).encode("utf-8"),
        status=status,
        headers=_response_headers(_fingerprint(raw_body)),
        content_type="application/json",
    )
