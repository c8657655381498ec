"""What each model call cost: tokens read from recorded responses, prices, latency.

Tokens come from what the provider returned, as recorded:

- OpenAI chat completions: ``usage.prompt_tokens`` / ``completion_tokens``, and in a
  stream the final chunk that ``stream_options={"include_usage": True}`` adds;
- OpenAI Responses: ``usage.input_tokens`` / ``output_tokens``, and in a stream the
  ``response.completed`` event's response;
- Anthropic Messages: ``usage.input_tokens`` (plus cache creation and cache reads) and
  ``output_tokens``; in a stream ``message_start`` then the last ``message_delta``;
- Google Gen AI: ``usageMetadata.promptTokenCount`` and ``candidatesTokenCount`` plus
  ``thoughtsTokenCount``; in a stream the last chunk that carries it.

A response that carries no usage (an OpenAI stream without ``stream_options=
{"include_usage": True}``, a provider or an endpoint whose usage is not read) is an
*unmetered* call: its tokens, and so its cost, are unknown, never zero. A failed request
(status 400 or above) is known to have used no tokens: providers do not bill it.

Cost comes only from the prices the project declares (per million tokens, by model);
nothing is looked up. Costs are kept as integers of 1e-9 price units so that sums are
exact and the same in any order (serial, xdist workers, merged CI shards).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_promptflow.cassette.format import AnswerUsage, Interaction, Latency, RecordedResponse
from pytest_promptflow.errors import PromptflowError

NANOS = 1_000_000_000
"""Cost is counted in billionths of a price unit."""
PER_MILLION = 1_000_000
OUTSIDE_STEPS = "(outside steps)"


@dataclass(frozen=True, slots=True)
class Tokens:
    """The tokens of one model call, and the model that answered it."""

    model: str | None
    input_tokens: int
    output_tokens: int

    def __post_init__(self) -> None:
        if self.model is not None:  # one string per model name, however many calls name it
            object.__setattr__(self, "model", sys.intern(self.model))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _from_usage(usage: Any) -> tuple[int, int] | None:
    """Input and output tokens of an OpenAI, Anthropic or Google usage object."""
    if not isinstance(usage, dict):
        return None
    if "prompt_tokens" in usage or "completion_tokens" in usage:  # OpenAI chat completions
        return _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))
    if "promptTokenCount" in usage or "candidatesTokenCount" in usage:  # Google Gen AI
        output = _int(usage.get("candidatesTokenCount")) + _int(usage.get("thoughtsTokenCount"))
        return _int(usage.get("promptTokenCount")), output
    if "input_tokens" in usage or "output_tokens" in usage:  # Anthropic, OpenAI Responses
        inputs = _int(usage.get("input_tokens"))
        # Anthropic counts cached prompt tokens apart; they are input all the same.
        inputs += _int(usage.get("cache_creation_input_tokens"))
        inputs += _int(usage.get("cache_read_input_tokens"))
        return inputs, _int(usage.get("output_tokens"))
    return None


def _model_of(document: Any) -> str | None:
    if isinstance(document, dict):
        model = document.get("model") or document.get("modelVersion")
        if isinstance(model, str):
            return model
    return None


def read_tokens(response: RecordedResponse, request_model: str | None = None) -> Tokens | None:
    """The tokens a recorded response reports, None when it reports none."""
    if response.events is not None:
        return _stream_tokens([event.data for event in response.events], request_model)
    body = response.body
    if not isinstance(body, dict):
        return None
    found = _from_usage(body.get("usage"))
    if found is None:
        found = _from_usage(body.get("usageMetadata"))
    if found is None:
        return None
    return Tokens(_model_of(body) or request_model, *found)


def _stream_tokens(events: list[Any], request_model: str | None) -> Tokens | None:
    model: str | None = None
    inputs: int | None = None
    outputs: int | None = None
    for data in events:
        if not isinstance(data, dict):
            continue
        kind = data.get("type")
        if kind == "message_start":  # Anthropic: input tokens up front
            message = data.get("message")
            model = _model_of(message) or model
            found = _from_usage(message.get("usage") if isinstance(message, dict) else None)
            if found is not None:
                inputs, outputs = found
            continue
        if kind == "message_delta":  # Anthropic: the running count of output tokens
            usage = data.get("usage")
            if isinstance(usage, dict):
                outputs = _int(usage.get("output_tokens"))
                if usage.get("input_tokens"):
                    inputs = _int(usage.get("input_tokens"))
            continue
        # OpenAI Responses stream: the last event holds the whole response.
        response = data.get("response")
        document: dict[str, Any] = response if isinstance(response, dict) else data
        model = _model_of(document) or model
        found = _from_usage(document.get("usage")) or _from_usage(document.get("usageMetadata"))
        if found is not None:
            inputs, outputs = found
    if inputs is None and outputs is None:
        return None
    return Tokens(model or request_model, inputs or 0, outputs or 0)


FAILED_STATUS = 400


def interaction_tokens(interaction: Interaction) -> Tokens | None:
    """The tokens of a recorded exchange; None (unknown) when its successful response
    reported none, zero for a failed request, which is not billed."""
    body = interaction.request.body
    request_model = _model_of(body)
    if request_model is None:
        # Google puts the model in the path: /v1beta/models/gemini-2.0-flash:generateContent
        match = re.search(r"/models/([^/:?]+)", interaction.request.url)
        request_model = match.group(1) if match else None
    tokens = read_tokens(interaction.response, request_model)
    if tokens is None and interaction.response.status >= FAILED_STATUS:
        return Tokens(request_model, 0, 0)
    return tokens


@dataclass(frozen=True, slots=True)
class ModelCall:
    """What the figures read of one interaction, kept instead of the interaction itself:
    the step (or judge) that made it, its tokens and its recorded latency."""

    step: str | None
    judge: str | None
    tokens: Tokens | None
    """None when the response reported no usage: the call is unmetered."""
    latency: tuple[int, int] | None
    """Time to the first byte and in all, in milliseconds."""

    @classmethod
    def of(cls, interaction: Interaction) -> ModelCall:
        tokens = interaction_tokens(interaction)
        latency = interaction.latency
        timing = (latency.first_byte_ms, latency.total_ms) if latency is not None else None
        return cls(interaction.step, interaction.judge, tokens, timing)

    def answer_usage(self) -> AnswerUsage:
        """What a golden step call keeps of this call."""
        tokens = self.tokens
        return AnswerUsage(
            model=tokens.model if tokens is not None else None,
            input_tokens=tokens.input_tokens if tokens is not None else None,
            output_tokens=tokens.output_tokens if tokens is not None else None,
            latency=Latency(first_byte_ms=self.latency[0], total_ms=self.latency[1])
            if self.latency is not None
            else None,
        )

    @classmethod
    def of_golden(cls, step: str, usage: AnswerUsage) -> ModelCall:
        """A golden answer's call, from the figures its golden step call kept."""
        tokens = (
            Tokens(usage.model, usage.input_tokens or 0, usage.output_tokens or 0)
            if usage.input_tokens is not None or usage.output_tokens is not None
            else None
        )
        latency = usage.latency
        timing = (latency.first_byte_ms, latency.total_ms) if latency is not None else None
        return cls(step, None, tokens, timing)


# -- prices ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    """Price units per million input and output tokens."""

    input: float
    output: float


@dataclass(frozen=True)
class Prices:
    """The prices a project declares, by model name; nothing else is known."""

    models: Mapping[str, Price] = field(default_factory=dict)
    currency: str = ""

    def price_of(self, model: str | None) -> Price | None:
        """The declared price of ``model``: its exact name, else the longest declared name
        it starts with (``gpt-4o-mini`` prices ``gpt-4o-mini-2024-07-18``)."""
        if model is None:
            return None
        if model in self.models:
            return self.models[model]
        prefixes = [name for name in self.models if model.startswith(name)]
        return self.models[max(prefixes, key=len)] if prefixes else None

    def cost_nanos(self, tokens: Tokens) -> int | None:
        price = self.price_of(tokens.model)
        if price is None:
            return None
        # Per million tokens, in billionths of a unit: tokens * price * 1000.
        return round(tokens.input_tokens * price.input * 1000) + round(
            tokens.output_tokens * price.output * 1000
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "models": {
                name: {"input": price.input, "output": price.output}
                for name, price in sorted(self.models.items())
            },
        }


NO_PRICES = Prices()
PRICES_TABLE = "tool.promptflow.prices"


def load_prices(pyproject: Path) -> Prices:
    """``[tool.promptflow.prices]`` of ``pyproject``; no file or no table is no price.

    ```toml
    [tool.promptflow.prices]
    currency = "USD"
    "gpt-4o-mini" = { input = 0.15, output = 0.60 }
    ```
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    try:
        document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return NO_PRICES
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise PromptflowError(f"{pyproject} cannot be read for prices: {error}") from None
    table = document.get("tool", {}).get("promptflow", {}).get("prices")
    if table is None:
        return NO_PRICES
    if not isinstance(table, dict):
        raise PromptflowError(f"{pyproject}: [{PRICES_TABLE}] must be a table")
    currency = table.get("currency", "")
    if not isinstance(currency, str):
        raise PromptflowError(f"{pyproject}: [{PRICES_TABLE}] currency must be a string")
    models: dict[str, Price] = {}
    for name, entry in table.items():
        if name == "currency":
            continue
        where = f'{pyproject}: [{PRICES_TABLE}] "{name}"'
        if not isinstance(entry, dict) or set(entry) != {"input", "output"}:
            raise PromptflowError(
                f"{where} must be {{ input = N, output = N }}: prices per million tokens"
            )
        values = [entry["input"], entry["output"]]
        if not all(
            isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in values
        ):
            raise PromptflowError(f"{where}: input and output must be numbers, 0 or more")
        models[name] = Price(float(values[0]), float(values[1]))
    return Prices(models, currency)


# -- figures ---------------------------------------------------------------------------


@dataclass
class Figures:
    """Usage summed over model calls: tokens, cost, latency. Sums merge in any order."""

    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_nanos: int = 0
    unpriced_calls: int = 0
    """Calls whose model has no declared price, or that are unmetered: not in the cost."""
    unmetered_calls: int = 0
    """Calls whose response reported no usage: not in the tokens, which are unknown when
    every call is unmetered."""
    timed_calls: int = 0
    first_byte_ms: int = 0
    total_ms: int = 0
    """Latency summed over the timed calls (those recorded with their timing)."""

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def cost(self) -> float:
        return round(self.cost_nanos / NANOS, 9)

    @property
    def tokens_unknown(self) -> bool:
        """Every call is unmetered: the token figures are unknown, not zero."""
        return self.model_calls > 0 and self.unmetered_calls == self.model_calls

    def add_call(self, call: ModelCall, prices: Prices) -> None:
        self.model_calls += 1
        tokens = call.tokens
        cost = prices.cost_nanos(tokens) if tokens is not None else None
        if tokens is None:
            self.unmetered_calls += 1
        else:
            self.input_tokens += tokens.input_tokens
            self.output_tokens += tokens.output_tokens
        if cost is None:
            self.unpriced_calls += 1
        else:
            self.cost_nanos += cost
        if call.latency is not None:
            self.timed_calls += 1
            self.first_byte_ms += call.latency[0]
            self.total_ms += call.latency[1]

    def mean_of(self, samples: int) -> Figures:
        """These figures, summed over ``samples`` samples, per sample: each count divided
        by their number and rounded to the nearest whole (cost to the nearest 1e-9); calls
        left out of a sum are rounded up, so that a mean never hides them."""
        if samples <= 1:
            return self
        left_out = ("unpriced_calls", "unmetered_calls")
        return Figures(
            **{
                name: -(-getattr(self, name) // samples)
                if name in left_out
                else round(getattr(self, name) / samples)
                for name in self.__dataclass_fields__
            }
        )

    def add(self, other: Figures) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def value(self, metric: str) -> float:
        """``tokens``, ``input_tokens``, ``output_tokens`` or ``cost``."""
        return self.cost if metric == "cost" else float(getattr(self, metric))

    def to_json(self) -> dict[str, Any]:
        unknown = self.tokens_unknown
        return {
            "model_calls": self.model_calls,
            "input_tokens": None if unknown else self.input_tokens,
            "output_tokens": None if unknown else self.output_tokens,
            "tokens": None if unknown else self.tokens,
            "cost": self.cost,
            "unpriced_calls": self.unpriced_calls,
            "unmetered_calls": self.unmetered_calls,
            "timed_calls": self.timed_calls,
            "first_byte_ms": self.first_byte_ms,
            "total_ms": self.total_ms,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Figures:
        # Unknown tokens (null) are the sum of no metered call; reports written before
        # calls were told apart as unmetered have none.
        return cls(
            model_calls=data["model_calls"],
            input_tokens=data["input_tokens"] or 0,
            output_tokens=data["output_tokens"] or 0,
            cost_nanos=round(data["cost"] * NANOS),
            unpriced_calls=data["unpriced_calls"],
            unmetered_calls=data.get("unmetered_calls", 0),
            timed_calls=data["timed_calls"],
            first_byte_ms=data["first_byte_ms"],
            total_ms=data["total_ms"],
        )


def figures_by_step(calls: Iterable[tuple[str, ModelCall]], prices: Prices) -> dict[str, Figures]:
    """Figures per step name from (step, model call) pairs."""
    by_step: dict[str, Figures] = {}
    for step, call in calls:
        by_step.setdefault(step, Figures()).add_call(call, prices)
    return by_step


def format_cost(value: float, currency: str = "") -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".") if value else "0"
    return f"{text} {currency}".strip()
