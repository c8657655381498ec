"""Secrets and volatile details out of everything written: recorded runs, golden values,
reports and failure messages.

Headers are kept by allow-list, so credentials (and request ids, dates, timing) never
reach a file. Every value a request authenticates with is *learned*: the values of
credential-named headers, cookies, URL userinfo, query parameters and body or form
fields. Learned values and secret-looking strings are replaced by a marker wherever they
appear, in text and in binary or base64 bodies alike; the result is scanned once more
and any survivor aborts the write, without showing any part of it.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pytest_promptflow.cassette.format import RecordedResponse
from pytest_promptflow.errors import SecretLeakError

REDACTED = "<redacted>"

KEPT_REQUEST_HEADERS = frozenset(
    {"content-type", "anthropic-version", "anthropic-beta", "openai-beta"}
)
KEPT_RESPONSE_HEADERS = frozenset({"content-type"})
CREDENTIAL_WORDS = frozenset(
    {
        "auth",
        "authorization",
        "authentication",
        "key",
        "apikey",
        "token",
        "secret",
        "signature",
        "sig",
        "password",
        "passwd",
        "pwd",
        "session",
        "sessionid",
        "cookie",
        "credential",
        "credentials",
        "jwt",
    }
)
"""A name holding one of these words (``X-My-Token``, ``client_secret``, ``apiKey``) names
a credential; words are split at ``-``, ``_``, ``.``, spaces and lower-to-upper case."""
CREDENTIAL_WORD_ENDINGS = (
    "token",
    "secret",
    "password",
    "passwd",
    "signature",
    "credential",
    "credentials",
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
    "sessionid",
)
"""Words run together end in one of these: ``accesstoken``, ``xapikey``."""
CREDENTIAL_HEADERS = frozenset({"openai-organization", "openai-project"})
"""Headers that name no credential word but identify the account all the same."""
CREDENTIAL_QUERY_PARAMETERS = frozenset({"code"})
"""Query parameters that are credentials by their whole name (Azure Functions' ``code``)."""
HARMLESS_VALUES = frozenset(
    {
        "gzip",
        "deflate",
        "br",
        "zstd",
        "identity",
        "bearer",
        "basic",
        "true",
        "false",
        "null",
        "none",
        "keep-alive",
        "no-cache",
        "httponly",
        "secure",
        "samesite",
        "strict",
        REDACTED,
    }
)
_MIME_TYPE = re.compile(
    r"(application|text|image|audio|video|multipart|message|font|model)/[\w.+-]+(\s*;.*)?",
    re.ASCII | re.IGNORECASE,
)
_PRODUCT = re.compile(r"[A-Za-z][\w.-]*/\d[\w.]*(\s.*)?", re.ASCII)
"""A user agent: ``python-httpx/0.28.1``, ``OpenAI/Python 1.40.0``."""
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
_BASE64 = re.compile(r"(data:[\w.+/-]*;base64,)?([A-Za-z0-9+/]{16,}={0,2})", re.ASCII)
_MULTIPART_FIELD = re.compile(
    rb'(content-disposition:[^\r\n]*\bname="([^"]*)"([^\r\n]*)\r?\n(?:[^\r\n]+\r?\n)*\r?\n)'
    rb"(.*?)(?=\r?\n--)",
    re.IGNORECASE | re.DOTALL,
)
_MEMO_LIMIT = 4096
"""How many header names, headers, URLs a scrubber remembers having judged."""

_Key = TypeVar("_Key", bound=Hashable)
_Value = TypeVar("_Value")


class _Memo(Generic[_Key, _Value]):
    """What a scrubber has already worked out, up to ``_MEMO_LIMIT`` entries: a session's
    requests repeat the same few, and past the limit the rest are worked out each time."""

    def __init__(self) -> None:
        self._entries: dict[_Key, _Value] = {}

    def get(self, key: _Key) -> _Value | None:
        return self._entries.get(key)

    def __contains__(self, key: _Key) -> bool:
        return key in self._entries

    def remember(self, key: _Key, value: _Value) -> None:
        if len(self._entries) < _MEMO_LIMIT:
            self._entries[key] = value


class LiveRequestParts(Protocol):
    """A request as the client sent it (``conversion.LiveRequest``)."""

    @property
    def method(self) -> str: ...
    @property
    def uri(self) -> str: ...
    @property
    def headers(self) -> list[tuple[str, str]]: ...
    @property
    def content_type(self) -> str: ...
    @property
    def body(self) -> Any: ...
    @property
    def text(self) -> str | None: ...
    @property
    def base64(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class ScrubbedRequest:
    """A request with its credentials learned and its secrets redacted: what its key is
    computed from and, with its stored headers, what is stored of it."""

    method: str
    url: str
    body: Any
    text: str | None
    base64: str | None


_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD_SEPARATOR = re.compile(r"[^a-z0-9]+")


def is_credential_name(name: str, extra_names: Iterable[str] = ()) -> bool:
    """Whether a header, parameter or field of this name holds a credential."""
    lowered = name.lower()
    if lowered in CREDENTIAL_HEADERS or lowered in (n.lower() for n in extra_names):
        return True
    words = _WORD_SEPARATOR.split(_WORD_BOUNDARY.sub("_", name).lower())
    return any(word in CREDENTIAL_WORDS or word.endswith(CREDENTIAL_WORD_ENDINGS) for word in words)


def is_harmless(value: str) -> bool:
    """Values that name no secret even under a credential name: ``gzip``, a media type, a
    user agent, a number."""
    value = value.strip()
    return (
        value.lower() in HARMLESS_VALUES
        or value.isdigit()
        or bool(_MIME_TYPE.fullmatch(value))
        or bool(_PRODUCT.fullmatch(value))
    )


class Scrubber:
    """Learns the credentials requests carry, redacts them and secret-looking strings from
    recorded data, and refuses text that still holds one."""

    def __init__(self, extra_patterns: Sequence[str] = (), extra_names: Sequence[str] = ()) -> None:
        self._pattern = re.compile(
            "|".join(f"(?:{p})" for p in (*SECRET_PATTERNS, *extra_patterns))
        )
        self._extra_names = tuple(extra_names)
        # A pattern tied to the start or end of a text is looked for string by string.
        self._anchored_patterns = any(
            marker in pattern for pattern in extra_patterns for marker in ("^", "$", "\\A", "\\Z")
        )
        self._known: set[str] = set()
        self._ordered: list[str] = []
        # Requests of a session repeat the same header names, credentials and URLs:
        # each is judged once.
        self._credential_names: _Memo[str, bool] = _Memo()
        self._learned_headers: _Memo[tuple[str, str], bool] = _Memo()
        self._learned_header_sets: _Memo[tuple[tuple[str, str], ...], bool] = _Memo()
        self._learned_urls: _Memo[str, bool] = _Memo()
        self._stored_urls: _Memo[tuple[str, int], str] = _Memo()

    # -- learning ----------------------------------------------------------------------

    def is_credential_name(self, name: str) -> bool:
        judged = self._credential_names.get(name)
        if judged is None:
            judged = is_credential_name(name, self._extra_names)
            self._credential_names.remember(name, judged)
        return judged

    def learn_secrets(self, headers: Iterable[tuple[str, str]], url: str) -> None:
        """Remember the credential values a request carried, in its headers and its URL."""
        headers = tuple(headers)
        if headers not in self._learned_header_sets:
            self._learn_headers(headers)
            # The same headers again hold nothing new: a new value is learned only once.
            self._learned_header_sets.remember(headers, True)
        self._learn_url(url)

    def _learn_headers(self, headers: Iterable[tuple[str, str]]) -> None:
        learned = self._learned_headers
        for header in headers:
            if header in learned:
                continue
            name, value = header
            lowered = name.lower()
            if lowered == "cookie":
                for pair in value.split(";"):
                    self._learn(pair.partition("=")[2])
            elif lowered == "set-cookie":
                self._learn(value.split(";", 1)[0].partition("=")[2])
            elif self.is_credential_name(name):
                self._learn_header_value(value)
            else:
                continue  # a value under a harmless name is looked at again each time
            learned.remember(header, True)

    def _learn_url(self, url: str) -> None:
        if url in self._learned_urls:
            return
        self._learned_urls.remember(url, True)
        parts = urlsplit(url)
        if parts.username is not None:
            self._learn(parts.username)
        if parts.password is not None:
            self._learn(parts.password)
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if self._is_credential_parameter(name):
                self._learn(value)

    def learn_value(self, value: str) -> None:
        """Remember ``value`` as a secret, as a credential-named field holds it."""
        self._learn(value)

    def _learn_header_value(self, value: str) -> None:
        self._learn(value)
        scheme, _, credentials = value.strip().partition(" ")
        if not credentials:
            return
        self._learn(credentials)
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return
            user, _, password = decoded.partition(":")
            for part in (decoded, user, password):
                self._learn(part)
        for pair in re.split(r"[,\s]+", credentials):
            self._learn(pair.partition("=")[2])

    def _learn(self, value: str) -> None:
        value = value.strip().strip('"')
        known = len(value) < MIN_KNOWN_SECRET_LENGTH or value in self._known
        if not known and not is_harmless(value):
            self._known.add(value)
            # Longer first, so that a secret containing another is replaced whole.
            self._ordered = sorted(self._known, key=len, reverse=True)

    def _is_credential_parameter(self, name: str) -> bool:
        return name.lower() in CREDENTIAL_QUERY_PARAMETERS or self.is_credential_name(name)

    @property
    def knows_secrets(self) -> bool:
        return bool(self._known)

    @property
    def secret_count(self) -> int:
        """How many secret values have been learned: it only grows."""
        return len(self._known)

    # -- redacting ---------------------------------------------------------------------

    def finds_secret(self, text: str) -> bool:
        return any(secret in text for secret in self._ordered) or bool(self._pattern.search(text))

    def text(self, value: str, patterns: bool = True, replacement: str = REDACTED) -> str:
        """``value`` with every secret replaced by ``replacement`` (an HTML page takes the
        marker escaped, or a browser would read it as a tag and show nothing)."""
        for secret in self._ordered:
            if secret in value:
                value = value.replace(secret, replacement)
        return self._pattern.sub(replacement, value) if patterns else value

    def binary(self, raw: bytes, patterns: bool = True) -> bytes:
        """A binary body with the same secrets redacted, found in its raw bytes."""
        text = raw.decode("latin-1")
        for secret in self._ordered:
            encoded = secret.encode("utf-8").decode("latin-1")
            if encoded in text:
                text = text.replace(encoded, REDACTED)
        return (self._pattern.sub(REDACTED, text) if patterns else text).encode("latin-1")

    def base64_body(self, encoded: str, patterns: bool = True) -> str:
        """A base64 body, redacted in its decoded bytes."""
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return self.text(encoded, patterns)
        scrubbed = self.binary(raw, patterns)
        return encoded if scrubbed == raw else base64.b64encode(scrubbed).decode("ascii")

    def json(self, value: Any, patterns: bool = True) -> Any:
        """``value`` with secrets redacted from every string, base64 strings decoded first.
        Without ``patterns``, only the learned credentials are redacted. A value with
        nothing to redact is returned as it is."""
        if self._is_clean(value, names=False):
            return value
        return self._json(value, patterns)

    def _json(self, value: Any, patterns: bool) -> Any:
        if isinstance(value, str):
            return self._string(value, patterns)
        if isinstance(value, list):
            return [self._json(item, patterns) for item in value]
        if isinstance(value, dict):
            return {
                self.text(key, patterns): self._json(item, patterns) for key, item in value.items()
            }
        return value

    def _string(self, value: str, patterns: bool) -> str:
        match = _BASE64.fullmatch(value) if len(value) >= 16 else None
        if match is not None and len(match.group(2)) % 4 == 0:
            prefix, encoded = match.group(1) or "", match.group(2)
            scrubbed = self.base64_body(encoded, patterns)
            if scrubbed != encoded:
                return prefix + scrubbed
        return self.text(value, patterns)

    def fields(self, value: Any) -> Any:
        """JSON data with its credential-named fields learned and redacted, then every
        string scrubbed: for request bodies and the inputs and outputs of steps.

        Data with no credential-named field and no string to scrub, as most request
        bodies are, is returned as it is, after one look at each of its values."""
        if self._is_clean(value, names=True):
            return value
        self._learn_fields(value)
        return self._json(self._redact_fields(value), patterns=True)

    def _is_clean(self, value: Any, *, names: bool) -> bool:
        """No string that ``json`` would change and, with ``names``, no credential-named
        field."""
        strings: list[str] = []
        if not self._gather_strings(value, strings, names):
            return False
        if self._anchored_patterns:
            return not any(self.finds_secret(string) for string in strings)
        # One search through all of them, joined by a character no secret or pattern
        # holds: what it finds in one string, it finds in the joined text.
        return not self.finds_secret("\x00".join(strings))

    def _gather_strings(self, value: Any, strings: list[str], names: bool) -> bool:
        """Collect every key and string of ``value``; False when one needs the slow path
        (a credential-named field, a string that may be base64)."""
        if isinstance(value, str):
            if len(value) >= 16 and _BASE64.fullmatch(value):
                return False  # decoded and looked into by the slow path
            strings.append(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    return False
                if names and isinstance(item, str) and item and self.is_credential_name(key):
                    return False
                strings.append(key)
                if not self._gather_strings(item, strings, names):
                    return False
        elif isinstance(value, list):
            for item in value:
                if not self._gather_strings(item, strings, names):
                    return False
        return True

    def _learn_fields(self, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, str) and self.is_credential_name(str(key)):
                    self._learn(item)
                else:
                    self._learn_fields(item)
        elif isinstance(value, list):
            for item in value:
                self._learn_fields(item)

    def _redact_fields(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: (
                    REDACTED
                    if isinstance(item, str)
                    and item
                    and self.is_credential_name(str(key))
                    and not is_harmless(item)
                    else self._redact_fields(item)
                )
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self._redact_fields(item) for item in value]
        return value

    def form(self, text: str) -> str:
        """An ``application/x-www-form-urlencoded`` body with credential fields redacted."""
        pairs = parse_qsl(text, keep_blank_values=True)
        for name, value in pairs:
            if self.is_credential_name(name):
                self._learn(value)
        redacted = [
            (
                name,
                REDACTED
                if value and self.is_credential_name(name) and not is_harmless(value)
                else value,
            )
            for name, value in pairs
        ]
        return self.text(urlencode(redacted) if redacted else text)

    def multipart(self, raw: bytes) -> bytes:
        """A multipart form with its credential-named fields (not files) learned and
        redacted."""

        def field(match: re.Match[bytes]) -> bytes:
            name = match.group(2).decode("latin-1")
            is_file = b"filename=" in match.group(3).lower()
            if is_file or not self.is_credential_name(name):
                return match.group(0)
            self._learn(match.group(4).decode("utf-8", "replace"))
            return match.group(1) + REDACTED.encode()

        return _MULTIPART_FIELD.sub(field, raw)

    def url(self, url: str) -> str:
        """The URL as stored: no userinfo, no credential query parameters, no secrets."""
        # The same URL is stored the same way until a new secret is learned.
        memo = (url, len(self._known))
        stored = self._stored_urls.get(memo)
        if stored is None:
            stored = self._stored_url(url)
            self._stored_urls.remember(memo, stored)
        return stored

    def _stored_url(self, url: str) -> str:
        parts = urlsplit(url)
        query = [
            (name, value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
            if not self._is_credential_parameter(name)
        ]
        netloc = parts.netloc.rpartition("@")[2]
        return self.text(urlunsplit(parts._replace(netloc=netloc, query=urlencode(query))))

    # -- a request and a response, as stored ---------------------------------------------

    def request(self, live: LiveRequestParts) -> ScrubbedRequest:
        """``live`` with the credentials it carries learned (headers, URL, credential-named
        fields and form fields, before any string is scrubbed) and every secret redacted
        from its URL and body; the stored headers are ``request_headers``, built only for a
        request that is recorded or missed."""
        self.learn_secrets(live.headers, live.uri)
        content_type = live.content_type.lower()
        body, text, encoded = live.body, live.text, live.base64
        if "multipart/" in content_type:  # its credential-named fields, not its files
            if text is not None:
                text = self.multipart(text.encode("utf-8")).decode("utf-8")
            elif encoded is not None:
                raw = self.multipart(base64.b64decode(encoded))
                encoded = base64.b64encode(raw).decode("ascii")
        body = self.fields(body) if body is not None else None
        if text is not None:
            text = self.form(text) if "x-www-form-urlencoded" in content_type else text
            text = self.text(text)
        return ScrubbedRequest(
            live.method,
            self.url(live.uri),
            body,
            text,
            self.base64_body(encoded) if encoded is not None else None,
        )

    def request_headers(self, live: LiveRequestParts) -> dict[str, list[str]]:
        """The headers of ``live`` as stored: only those on the allow-list, redacted."""
        grouped: dict[str, list[str]] = {}
        for name, value in live.headers:
            grouped.setdefault(name.lower(), []).append(value)
        if live.content_type:
            grouped["content-type"] = [live.content_type]
        kept = kept_headers(grouped, KEPT_REQUEST_HEADERS)
        return {name: [self.text(value) for value in values] for name, values in kept.items()}

    def response(
        self, live: RecordedResponse, headers: Mapping[str, Sequence[str]]
    ) -> RecordedResponse:
        """A response the network sent (``conversion.live_response``) as it is stored: the
        credentials its headers carry learned, only the allowed headers kept, every secret
        redacted from its body, text, events and binary body."""
        self.learn_secrets(
            [(name, value) for name, values in headers.items() for value in values], ""
        )
        stored = live.model_copy(update={"headers": kept_headers(headers, KEPT_RESPONSE_HEADERS)})
        if live.body_base64 is not None:
            stored.body_base64 = self.base64_body(live.body_base64)
        stored.body = self.json(live.body)
        if live.body_text is not None:
            stored.body_text = self.text(live.body_text)
        if live.events is not None:
            stored.events = [
                event.model_copy(
                    update={
                        "event": self.text(event.event) if event.event is not None else None,
                        "id": self.text(event.id) if event.id is not None else None,
                        "data": self.json(event.data),
                        "text": self.text(event.text) if event.text is not None else None,
                    }
                )
                for event in live.events
            ]
        return stored

    # -- the final scan ------------------------------------------------------------------

    def leak_in(self, document: Any, path: str = "") -> str | None:
        """Where in a JSON document a secret survived (base64 strings decoded), or None."""
        if isinstance(document, str):
            return path or "(the text)" if self._finds_secret_decoded(document) else None
        if isinstance(document, dict):
            for key, item in document.items():
                if self.finds_secret(str(key)):
                    return f"a key of {path}" if path else "a key"  # not the key itself
                place = f"{path}.{key}" if path else str(key)
                found = self.leak_in(item, place)
                if found is not None:
                    return found
        elif isinstance(document, list):
            for position, item in enumerate(document):
                found = self.leak_in(item, f"{path}[{position}]")
                if found is not None:
                    return found
        return None

    def _finds_secret_decoded(self, value: str) -> bool:
        if self.finds_secret(value):
            return True
        match = _BASE64.fullmatch(value) if len(value) >= 16 else None
        if match is None:
            return False
        try:
            raw = base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError):
            return False
        return self.binary(raw) != raw

    def check(self, text: str, where: str, document: Any = None) -> None:
        """Raise SecretLeakError if ``text`` (or ``document``, the JSON it was made from)
        still holds anything that looks like a secret. Nothing of it is shown."""
        place = self.leak_in(document) if document is not None else None
        if place is None and self.finds_secret(text):
            place = "(the text)"
        if place is not None:
            raise SecretLeakError(
                f"{where} was not written: {place} still holds a value that looks like a "
                "secret after scrubbing; remove it from the request, or add a pattern for it "
                "to the promptflow_secret_patterns ini key"
            )


def kept_headers(
    headers: Mapping[str, Sequence[str]], allowed: frozenset[str]
) -> dict[str, list[str]]:
    kept = {
        name.lower(): list(values) for name, values in headers.items() if name.lower() in allowed
    }
    return dict(sorted(kept.items()))
