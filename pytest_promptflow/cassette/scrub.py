"""Secrets and volatile details out of every interaction before anything is written.

Headers are kept by allow-list, so credentials (and request ids, dates, timing) never
reach a file; secret-looking strings anywhere are replaced by a marker; the serialized
text is scanned once more and any survivor aborts the write.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pytest_promptflow.errors import SecretLeakError

REDACTED = "<redacted>"

KEPT_REQUEST_HEADERS = frozenset(
    {"content-type", "anthropic-version", "anthropic-beta", "openai-beta"}
)
KEPT_RESPONSE_HEADERS = frozenset({"content-type"})
CREDENTIAL_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "cookie",
        "set-cookie",
        "openai-organization",
        "openai-project",
        "x-goog-api-key",
        "ocp-apim-subscription-key",
    }
)
SECRET_QUERY_PARAMETERS = frozenset(
    {"key", "api_key", "api-key", "apikey", "access_token", "token"}
)
SECRET_PATTERNS = (
    r"sk-ant-[A-Za-z0-9_\-]{8,}",
    r"sk-[A-Za-z0-9_\-]{16,}",
    r"Bearer\s+[A-Za-z0-9._~+/=\-]{8,}",
    r"AIza[0-9A-Za-z_\-]{20,}",
    r"gsk_[A-Za-z0-9]{20,}",
    r"xai-[A-Za-z0-9]{20,}",
    r"hf_[A-Za-z0-9]{20,}",
)
# Shorter values are too likely to occur by chance to scan for.
MIN_KNOWN_SECRET_LENGTH = 8


class Scrubber:
    """Replaces secrets in recorded data and refuses text that still holds one."""

    def __init__(self, extra_patterns: Sequence[str] = ()) -> None:
        self._pattern = re.compile(
            "|".join(f"(?:{p})" for p in (*SECRET_PATTERNS, *extra_patterns))
        )
        self._known: set[str] = set()

    def learn_secrets(self, headers: Iterable[tuple[str, str]], url: str) -> None:
        """Remember credential values a request carried, to scan for them verbatim."""
        for name, value in headers:
            if name.lower() in CREDENTIAL_HEADERS:
                self._learn(value)
                self._learn(value.split(" ", 1)[-1])
        for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
            if name.lower() in SECRET_QUERY_PARAMETERS:
                self._learn(value)

    def _learn(self, value: str) -> None:
        value = value.strip()
        if len(value) >= MIN_KNOWN_SECRET_LENGTH:
            self._known.add(value)

    def finds_secret(self, text: str) -> bool:
        return any(secret in text for secret in self._known) or bool(self._pattern.search(text))

    def text(self, value: str) -> str:
        for secret in self._known:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return self._pattern.sub(REDACTED, value)

    def json(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.json(item) for item in value]
        if isinstance(value, dict):
            return {self.text(key): self.json(item) for key, item in value.items()}
        return value

    def url(self, url: str) -> str:
        parts = urlsplit(url)
        query = [
            (name, value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
            if name.lower() not in SECRET_QUERY_PARAMETERS
        ]
        return self.text(urlunsplit(parts._replace(query=urlencode(query))))

    def check(self, text: str, where: str) -> None:
        """Raise SecretLeakError if ``text`` still holds anything that looks like a secret."""
        if self.finds_secret(text):
            leaked = next((s for s in self._known if s in text), None)
            match = self._pattern.search(text)
            sample = (leaked or (match.group(0) if match else ""))[:6]
            raise SecretLeakError(
                f"{where} was not written: it still holds a value that looks like a secret "
                f"(starting {sample!r}) after scrubbing; remove it from the request, or add "
                f"a pattern for it to the promptflow_secret_patterns ini key"
            )


def kept_headers(
    headers: Mapping[str, Sequence[str]], allowed: frozenset[str]
) -> dict[str, list[str]]:
    kept = {
        name.lower(): list(values) for name, values in headers.items() if name.lower() in allowed
    }
    return dict(sorted(kept.items()))
