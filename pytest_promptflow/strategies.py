"""Hypothesis strategies for step inputs and model replies, and ready-made properties.

Generated inputs respect the constraints the pydantic types declare (patterns, lengths,
bounds, literals, nested models, list sizes, optional fields), and replies come in the
shapes a model really sends: valid JSON, fenced, wrapped in prose, cut short, with a
field of the wrong type or a required field missing. The properties take one line::

    from hypothesis import given
    from pytest_promptflow import strategies

    @given(inputs=strategies.inputs(classify))
    def test_the_prompt_reads_every_field(inputs):
        strategies.assert_prompt_renders(classify, inputs, categories=CATEGORIES)

    @given(inputs=strategies.inputs(classify), reply=strategies.replies(classify))
    def test_any_reply_parses_or_breaks_the_contract(inputs, reply):
        strategies.assert_parses_or_rejects(classify, reply, **inputs, client=CLIENT)

Neither property needs a fixture or the network: the step's model requests are answered
in-process, and any other HTTP request fails with ``NetworkBlockedError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import dataclasses
import datetime
import decimal
import inspect
import json
import math
import threading
import types
import typing
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any

import pydantic
import pydantic_core
from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.errors import FailedHealthCheck
from hypothesis.provisional import urls
from hypothesis.strategies import SearchStrategy
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from pytest_promptflow.cassette.recorder import HttpInterception, HttpTarget
from pytest_promptflow.errors import PromptflowError, PromptRenderError, StepContractError
from pytest_promptflow.steps import Step
from pytest_promptflow.trace import Run, recording_run

__all__ = [
    "ALL_SHAPES",
    "NetworkBlockedError",
    "Reply",
    "UnsatisfiableFieldError",
    "UnsupportedFieldError",
    "assert_parses_or_rejects",
    "assert_prompt_renders",
    "inputs",
    "no_network",
    "replies",
    "values",
]

AnyStep = Step[..., Any]
Overrides = Mapping[str, SearchStrategy[Any]]
_NO_OVERRIDES: Overrides = types.MappingProxyType({})

# How many generated values in a row may fail validation before a field is declared
# impossible to generate. A custom validator that rejects half of what the schema
# allows fails this many times once in 65 000 draws.
ATTEMPTS = 16


class UnsupportedFieldError(PromptflowError):
    """A field's constraints cannot be turned into a strategy; pass one as an override."""

    def __init__(self, message: str, *, type_name: str, field: str | None) -> None:
        self.type_name = type_name
        self.field = field
        super().__init__(message)


class UnsatisfiableFieldError(UnsupportedFieldError, FailedHealthCheck):
    """Generated values of a field keep failing validation.

    Raised while drawing values, it is also a failed health check: hypothesis stops the
    test at once, as it does for a strategy that cannot be used, instead of shrinking it
    as though the code under test had failed.
    """


class NetworkBlockedError(PromptflowError):
    """A property test tried to send an HTTP request to the network."""


# --- values of any annotation -------------------------------------------------------


def values(annotation: Any, *, overrides: Overrides = _NO_OVERRIDES) -> SearchStrategy[Any]:
    """Valid values of ``annotation``, as its ``TypeAdapter`` validates them.

    ``overrides`` replaces the strategy of a field, named by its dotted path in the JSON
    form (``"customer_email"``, ``"problem.symptoms"``; ``[]`` names the items of a
    list: ``"lines[].sku"``). An override may give Python values (models, dates...) or
    their JSON form; either way the whole value is validated.
    """
    adapter = _adapter_of(annotation)
    return _valid_pairs(adapter, _type_name(annotation), "", overrides).map(_second)


def inputs(
    step: AnyStep, *, overrides: Overrides = _NO_OVERRIDES
) -> SearchStrategy[dict[str, Any]]:
    """The step's data parameters (those in ``step.input_types``), valid for their types.

    Override keys are a parameter name or ``parameter.field.path`` (``lines[].sku`` for
    the items of a list). Parameters that are not data, such as the client, are left
    for the test to pass.
    """
    adapters = step.input_types
    per_parameter: dict[str, dict[str, SearchStrategy[Any]]] = {}
    for key, strategy in overrides.items():
        cut = min((i for i in (key.find("."), key.find("[")) if i >= 0), default=len(key))
        parameter, rest = key[:cut], key[cut:].removeprefix(".")
        if parameter not in adapters:
            raise ValueError(
                f"override {key!r}: step {step.name!r} has no data parameter {parameter!r}; "
                f"its data parameters are {', '.join(adapters) or '(none)'}"
            )
        per_parameter.setdefault(parameter, {})[rest] = strategy
    strategies: dict[str, SearchStrategy[Any]] = {}
    for parameter, adapter in adapters.items():
        mine = per_parameter.get(parameter, {})
        owner = f"parameter {parameter!r} of step {step.name!r}"
        if "" in mine and len(mine) > 1:
            raise ValueError(
                f"overrides for {parameter!r} both replace it whole and replace its fields "
                f"{', '.join(sorted(f'{parameter}.{k}' for k in mine if k))}; give one or the other"
            )
        if "" in mine:
            strategies[parameter] = mine[""].map(_validated_override(adapter, parameter, owner))
        else:
            pairs = _valid_pairs(adapter, owner, f"{parameter}.", mine)
            strategies[parameter] = pairs.map(_second)
    return st.fixed_dictionaries(strategies)


def _second(pair: tuple[Any, Any]) -> Any:
    return pair[1]


def _validated_override(
    adapter: pydantic.TypeAdapter[Any], key: str, owner: str
) -> Callable[[Any], Any]:
    def validate(value: Any) -> Any:
        try:
            return adapter.validate_json(_json_text(_jsonable(value)))
        except pydantic.ValidationError as error:
            raise UnsatisfiableFieldError(
                f"the override {key!r} gave a value that is not a valid {owner}: {error}",
                type_name=owner,
                field=None,
            ) from None

    return validate


def _adapter_of(annotation: Any) -> pydantic.TypeAdapter[Any]:
    try:
        adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(annotation)
        adapter.json_schema(schema_generator=_StrategySchema)
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError) as error:
        field = _field_without_schema(annotation)
        where = f"field {field!r} of " if field else ""
        name = _type_name(annotation)
        raise UnsupportedFieldError(
            f"cannot generate values of {where}{name}: it has no JSON form "
            f"({str(error).splitlines()[0]}); pass a strategy for it"
            + (f": overrides={{{field!r}: ...}}" if field else ""),
            type_name=name,
            field=field,
        ) from None
    return adapter


def _field_without_schema(annotation: Any, prefix: str = "", depth: int = 0) -> str | None:
    """The dotted path of the first field of a model that has no JSON schema."""
    if depth > 8 or not (
        isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel)
    ):
        return None
    for name, field in annotation.model_fields.items():
        try:
            pydantic.TypeAdapter(field.annotation or Any).json_schema()
        except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError):
            return _field_without_schema(field.annotation, f"{prefix}{name}.", depth + 1) or (
                prefix + name
            )
    return None


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return repr(annotation).replace("typing.", "")


# --- JSON schema -> strategy --------------------------------------------------------

KEYS = "x-promptflow-keys"
DECIMAL = "x-promptflow-decimal"

# Keywords that constrain a value in ways this converter does not generate for.
UNSUPPORTED_KEYWORDS = frozenset(
    {
        "not",
        "if",
        "then",
        "else",
        "contains",
        "minContains",
        "maxContains",
        "dependentRequired",
        "dependentSchemas",
        "unevaluatedItems",
        "unevaluatedProperties",
        "$dynamicRef",
    }
)


class _StrategySchema(GenerateJsonSchema):
    """Pydantic's JSON schema, plus what generating values needs and JSON schema leaves
    out: the type of dict keys that are not strings, and the digits of decimals."""

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        json_schema = super().dict_schema(schema)
        keys = schema.get("keys_schema")
        if keys is not None and not {"propertyNames", "patternProperties"} & json_schema.keys():
            key_schema = {k: v for k, v in self.generate_inner(keys).items() if k != "title"}
            if key_schema not in ({}, {"type": "string"}):
                json_schema[KEYS] = key_schema
        return json_schema

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        constraints = ("max_digits", "decimal_places", "ge", "gt", "le", "lt")
        return {DECIMAL: {k: str(schema[k]) for k in constraints if schema.get(k) is not None}}  # type: ignore[literal-required]


def _any_json() -> SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text()
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=6,
    )


def _iso(value: datetime.date | datetime.time) -> str:
    return value.isoformat()


def _duration(value: datetime.timedelta) -> str:
    text: str = pydantic.TypeAdapter(datetime.timedelta).dump_python(value, mode="json")
    return text


STRING_FORMATS: Mapping[str, Callable[[], SearchStrategy[str]]] = {
    "date-time": lambda: st.datetimes(timezones=st.none() | st.just(datetime.timezone.utc)).map(
        _iso
    ),
    "date": lambda: st.dates().map(_iso),
    "time": lambda: st.times().map(_iso),
    "duration": lambda: st.timedeltas(
        min_value=datetime.timedelta(days=-9999), max_value=datetime.timedelta(days=9999)
    ).map(_duration),
    "uuid": lambda: st.uuids().map(str),
    "email": lambda: st.emails(),
    "uri": lambda: urls(),
    "ipv4": lambda: st.ip_addresses(v=4).map(str),
    "ipv6": lambda: st.ip_addresses(v=6).map(str),
    "ipvanyaddress": lambda: st.ip_addresses().map(str),
    "ipvanyinterface": lambda: st.ip_addresses().map(str),
    "ipvanynetwork": lambda: st.ip_addresses().map(str),
    "ipv4interface": lambda: st.ip_addresses(v=4).map(str),
    "ipv6interface": lambda: st.ip_addresses(v=6).map(str),
    "ipv4network": lambda: st.ip_addresses(v=4).map(str),
    "ipv6network": lambda: st.ip_addresses(v=6).map(str),
}


class _Converter:
    """Turns one JSON schema (with its ``$defs``) into a strategy of JSON values."""

    def __init__(self, root: JsonSchemaValue, owner: str, key_prefix: str, overrides: Overrides):
        self.defs: dict[str, JsonSchemaValue] = root.get("$defs", {})
        self.owner = owner
        self.key_prefix = key_prefix
        self.overrides = dict(overrides)
        self.used: set[str] = set()
        self.paths: set[str] = set()
        self._generic: dict[str, SearchStrategy[Any]] = {}
        self._building: set[str] = set()

    def unsupported(
        self, path: str, reason: str, error: type[UnsupportedFieldError] = UnsupportedFieldError
    ) -> UnsupportedFieldError:
        key = self.key_prefix + path
        where = f"field {path!r} of {self.owner}" if path else self.owner
        suggestion = f"overrides={{{key.rstrip('.')!r}: ...}}" if key else "an explicit strategy"
        return error(
            f"cannot generate values of {where}: {reason}; pass a strategy for it: {suggestion}",
            type_name=self.owner,
            field=path or None,
        )

    def _overridden_below(self, path: str) -> bool:
        if not path:
            return bool(self.overrides)
        return any(key.startswith((f"{path}.", f"{path}[]")) for key in self.overrides)

    def convert(self, schema: JsonSchemaValue, path: str) -> SearchStrategy[Any]:
        if path:
            self.paths.add(path)
        if path in self.overrides:
            self.used.add(path)
            return self.overrides[path].map(_jsonable)
        if not isinstance(schema, dict):
            return _any_json() if schema else st.nothing()
        unsupported = sorted(UNSUPPORTED_KEYWORDS & schema.keys())
        if unsupported:
            return self._raise(path, f"the JSON-schema keyword {unsupported[0]!r} has no strategy")
        if "$ref" in schema:
            return self._ref(schema["$ref"], path)
        if "const" in schema:
            return st.just(schema["const"])
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        if DECIMAL in schema:
            return _decimals(schema[DECIMAL])
        for union in ("anyOf", "oneOf"):
            if union in schema:
                return st.one_of([self.convert(branch, path) for branch in schema[union]])
        if "allOf" in schema:
            parts = schema["allOf"]
            if len(parts) != 1:
                return self._raise(path, "'allOf' with several schemas has no strategy")
            return self.convert(parts[0], path)
        kind = schema.get("type")
        if isinstance(kind, list):
            return st.one_of([self.convert({**schema, "type": k}, path) for k in kind])
        if kind is None:
            if "properties" in schema or "additionalProperties" in schema:
                kind = "object"
            elif "items" in schema or "prefixItems" in schema:
                kind = "array"
            else:
                return _any_json()
        if kind == "object":
            return self._object(schema, path)
        if kind == "array":
            return self._array(schema, path)
        if kind == "string":
            return self._string(schema)
        if kind == "integer":
            return self._integer(schema, path)
        if kind == "number":
            return self._number(schema, path)
        if kind == "boolean":
            return st.booleans()
        if kind == "null":
            return st.none()
        return self._raise(path, f"the JSON type {kind!r} has no strategy")

    def _raise(self, path: str, reason: str) -> SearchStrategy[Any]:
        raise self.unsupported(path, reason)

    def _ref(self, ref: str, path: str) -> SearchStrategy[Any]:
        name = ref.rsplit("/", 1)[-1]
        if name not in self.defs:
            return self._raise(path, f"its schema refers to {ref!r}, which it does not define")
        if self._overridden_below(path):
            return self.convert(self.defs[name], path)
        if name in self._generic:
            return self._generic[name]
        if name in self._building:
            # A recursive model: drawn lazily, once the strategy being built exists.
            return st.deferred(lambda: self._generic[name])
        self._building.add(name)
        try:
            strategy = self.convert(self.defs[name], path)
        finally:
            self._building.discard(name)
        self._generic[name] = strategy
        return strategy

    def _object(self, schema: JsonSchemaValue, path: str) -> SearchStrategy[Any]:
        properties: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", ()))
        prefix = f"{path}." if path else ""
        fields = {name: self.convert(sub, prefix + name) for name, sub in properties.items()}
        if properties:
            return st.fixed_dictionaries(
                {name: s for name, s in fields.items() if name in required},
                optional={name: s for name, s in fields.items() if name not in required},
            )
        values_schema = schema.get("additionalProperties", True)
        keys: SearchStrategy[str]
        if "patternProperties" in schema:
            patterns = schema["patternProperties"]
            if len(patterns) != 1:
                return self._raise(path, "'patternProperties' with several patterns")
            pattern, values_schema = next(iter(patterns.items()))
            keys = st.from_regex(str(pattern), fullmatch=True)
        elif "propertyNames" in schema:
            keys = self.convert({"type": "string", **schema["propertyNames"]}, f"{path}{{}}")
        elif KEYS in schema:
            keys = self.convert(schema[KEYS], f"{path}{{}}").map(_key_text)
        else:
            keys = st.text()
        if values_schema is False:
            return st.just({})
        return st.dictionaries(
            keys,
            self.convert(values_schema, f"{path}[]"),
            min_size=schema.get("minProperties", 0),
            max_size=schema.get("maxProperties"),
        )

    def _array(self, schema: JsonSchemaValue, path: str) -> SearchStrategy[Any]:
        low = schema.get("minItems", 0)
        high = schema.get("maxItems")
        items = schema.get("items", {} if "prefixItems" not in schema else False)
        item_path = f"{path}[]"
        if "prefixItems" in schema:
            head = st.tuples(*(self.convert(s, item_path) for s in schema["prefixItems"]))
            fixed = len(schema["prefixItems"])
            if items is False:
                return head.map(list)
            rest = st.lists(
                self.convert(items, item_path),
                min_size=max(0, low - fixed),
                max_size=None if high is None else max(0, high - fixed),
            )
            return st.tuples(head, rest).map(lambda parts: [*parts[0], *parts[1]])
        element = self.convert(items, item_path)
        unique = _canonical if schema.get("uniqueItems") else None
        return st.lists(element, min_size=low, max_size=high, unique_by=unique)

    def _string(self, schema: JsonSchemaValue) -> SearchStrategy[Any]:
        low = schema.get("minLength", 0)
        high = schema.get("maxLength")
        strategy: SearchStrategy[str]
        if "pattern" in schema:
            strategy = st.from_regex(str(schema["pattern"]), fullmatch=True)
            if low or high is not None:
                strategy = strategy.filter(
                    lambda s: low <= len(s) and (high is None or len(s) <= high)
                )
            return strategy
        if "contentSchema" in schema:
            return self.convert(schema["contentSchema"], "").map(_json_text)
        format_ = STRING_FORMATS.get(schema.get("format", ""))
        if format_ is not None:
            strategy = format_()
            if low or high is not None:
                strategy = strategy.filter(
                    lambda s: low <= len(s) and (high is None or len(s) <= high)
                )
            return strategy
        return st.text(min_size=low, max_size=high)

    def _integer(self, schema: JsonSchemaValue, path: str) -> SearchStrategy[Any]:
        low, high = _int_bounds(schema)
        step = schema.get("multipleOf")
        if step is not None:
            if step <= 0 or step != int(step):
                return self._raise(path, f"an integer 'multipleOf' of {step!r}")
            step = int(step)
            return st.integers(
                None if low is None else -(-low // step), None if high is None else high // step
            ).map(lambda n: n * step)
        return st.integers(low, high)

    def _number(self, schema: JsonSchemaValue, path: str) -> SearchStrategy[Any]:
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        step = schema.get("multipleOf")
        if step is not None:
            if step <= 0:
                return self._raise(path, f"a 'multipleOf' of {step!r}")
            return st.integers(
                None if low is None else math.ceil(low / step),
                None if high is None else math.floor(high / step),
            ).map(lambda n: n * step)
        return st.floats(
            min_value=low,
            max_value=high,
            exclude_min="exclusiveMinimum" in schema and "minimum" not in schema,
            exclude_max="exclusiveMaximum" in schema and "maximum" not in schema,
            allow_nan=False,
            allow_infinity=False,
        )


def _int_bounds(schema: JsonSchemaValue) -> tuple[int | None, int | None]:
    lows = [math.ceil(schema["minimum"])] if "minimum" in schema else []
    if "exclusiveMinimum" in schema:
        lows.append(math.floor(schema["exclusiveMinimum"]) + 1)
    highs = [math.floor(schema["maximum"])] if "maximum" in schema else []
    if "exclusiveMaximum" in schema:
        highs.append(math.ceil(schema["exclusiveMaximum"]) - 1)
    return (max(lows) if lows else None, min(highs) if highs else None)


def _decimals(constraints: Mapping[str, str]) -> SearchStrategy[str]:
    def bound(*names: str) -> decimal.Decimal | None:
        found = [decimal.Decimal(constraints[n]) for n in names if n in constraints]
        return found[0] if found else None

    low, high = bound("ge", "gt"), bound("le", "lt")
    digits = int(constraints["max_digits"]) if "max_digits" in constraints else None
    fixed_places = int(constraints["decimal_places"]) if "decimal_places" in constraints else None

    def with_places(places: int | None) -> SearchStrategy[decimal.Decimal]:
        lo, hi = low, high
        if digits is not None and places is not None:
            limit = decimal.Decimal(10) ** (digits - places) - decimal.Decimal(10) ** -places
            lo = -limit if lo is None else max(lo, -limit)
            hi = limit if hi is None else min(hi, limit)
        return st.decimals(
            min_value=lo, max_value=hi, places=places, allow_nan=False, allow_infinity=False
        )

    if fixed_places is None and digits is not None:
        strategy = st.integers(0, digits).flatmap(with_places)
    else:
        strategy = with_places(fixed_places)
    return strategy.filter(
        lambda d: (
            ("gt" not in constraints or d > decimal.Decimal(constraints["gt"]))
            and ("lt" not in constraints or d < decimal.Decimal(constraints["lt"]))
        )
    ).map(str)


def _key_text(key: Any) -> str:
    return key if isinstance(key, str) else json.dumps(key)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _jsonable(value: Any) -> Any:
    return pydantic_core.to_jsonable_python(value, by_alias=True)


def _json_text(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


def _valid_pairs(
    adapter: pydantic.TypeAdapter[Any], owner: str, key_prefix: str, overrides: Overrides
) -> SearchStrategy[tuple[Any, Any]]:
    """(JSON form, validated value) pairs: the JSON is what a model would send."""
    schema = adapter.json_schema(schema_generator=_StrategySchema)
    converter = _Converter(schema, owner, key_prefix, overrides)
    raw = converter.convert(schema, "")
    unknown = sorted(set(overrides) - converter.used)
    if unknown:
        known = ", ".join(sorted(key_prefix + p for p in converter.paths)) or "(none)"
        raise ValueError(
            f"override {key_prefix + unknown[0]!r} names no field of {owner}; "
            f"its fields are: {known}"
        )

    @st.composite
    def valid(draw: st.DrawFn) -> tuple[Any, Any]:
        failures: list[tuple[Any, pydantic.ValidationError]] = []
        for _ in range(ATTEMPTS):
            value = draw(raw)
            try:
                return value, adapter.validate_json(_json_text(value))
            except pydantic.ValidationError as error:
                failures.append((value, error))
        if len({_canonical(value) for value, _ in failures}) > ATTEMPTS // 2:
            raise _impossible(converter, failures[-1])
        reject()

    return valid()


def _impossible(
    converter: _Converter, failure: tuple[Any, pydantic.ValidationError]
) -> UnsupportedFieldError:
    value, error = failure
    detail = error.errors(include_url=False)[0]
    path = _field_path(value, detail["loc"])
    reason = (
        f"{ATTEMPTS} values in a row that its JSON schema allows failed validation "
        f"({detail['msg']}); its constraints cannot all be expressed as a strategy "
        "(a custom validator, or a pattern Python's re reads differently)"
    )
    if path in converter.used:
        reason = f"its override gives values that fail validation ({detail['msg']})"
    elif not path:
        reason += ", and the validator that rejects them is on the whole value"
    return converter.unsupported(path, reason, UnsatisfiableFieldError)


def _field_path(value: Any, location: Iterable[int | str]) -> str:
    """The dotted override path of a validation error's location, union tags left out."""
    parts: list[str] = []
    for part in location:
        if isinstance(value, dict) and part in value:
            parts.append(f".{part}" if parts else str(part))
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            parts.append("[]")
            value = value[part]
    return "".join(parts)


# --- replies ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Reply:
    """A model's reply text, and the shape it was generated in."""

    text: str
    shape: str


ALL_SHAPES: tuple[str, ...] = (
    "valid",
    "fenced",
    "prose",
    "truncated",
    "wrong_type",
    "missing_field",
)

PROSE_BEFORE = (
    "Here is the JSON you asked for:",
    "Sure! Based on the information provided, here is my answer.",
    "I have analysed the request; the result follows.",
)
PROSE_AFTER = (
    "Let me know if you need anything else.",
    "I hope this helps!",
    "This answer follows the requested format.",
)
WRONG_VALUES: Mapping[type, tuple[Any, ...]] = {
    str: (12345, ["a", "list"], {"unexpected": "object"}),
    int: ("not a number", ["a", "list"], {"unexpected": "object"}),
    float: ("not a number", ["a", "list"], {"unexpected": "object"}),
    bool: ("maybe", ["a", "list"], {"unexpected": "object"}),
    type(None): (["a", "list"], {"unexpected": "object"}, 12345, "text"),
    list: ({"unexpected": "object"}, "text", 12345),
    dict: (["a", "list"], "text", 12345),
}


def replies(
    step_or_annotation: AnyStep | Any,
    *,
    shapes: Iterable[str] = ALL_SHAPES,
    overrides: Overrides = _NO_OVERRIDES,
) -> SearchStrategy[Reply]:
    """Reply texts aimed at a step's parser, in the shapes a model sends.

    ``valid`` is the JSON of a valid output; ``fenced`` the same in a json code fence;
    ``prose`` the same between two sentences; ``truncated`` the valid JSON cut short;
    ``wrong_type`` a field given a value of another JSON type; ``missing_field`` a
    required field removed. With every shape asked for, shapes an output cannot have
    (no required field to remove) are left out; asked for alone, they are an error.
    """
    if isinstance(step_or_annotation, Step):
        adapter = step_or_annotation.output_type
        owner = f"the output of step {step_or_annotation.name!r}"
        if adapter is None:
            raise ValueError(f"{owner} has no JSON type to generate replies for")
    else:
        adapter = _adapter_of(step_or_annotation)
        owner = _type_name(step_or_annotation)
    chosen = list(dict.fromkeys(shapes))
    unknown = [shape for shape in chosen if shape not in ALL_SHAPES]
    if unknown or not chosen:
        raise ValueError(
            f"unknown reply shape {unknown[0]!r}" if unknown else "no reply shape asked for"
        )
    schema = adapter.json_schema(schema_generator=_StrategySchema)
    impossible = {
        "missing_field": "it has no required field",
        "wrong_type": "it accepts any JSON value",
    }
    possible = {
        "missing_field": _has_required(schema, schema.get("$defs", {}), set()),
        "wrong_type": bool(_resolve(schema, schema.get("$defs", {}))),
    }
    every = set(chosen) == set(ALL_SHAPES)
    for shape, reason in impossible.items():
        if shape in chosen and not possible[shape]:
            if not every:
                raise ValueError(f"replies of {owner} cannot have the shape {shape!r}: {reason}")
            chosen.remove(shape)
    pairs = _valid_pairs(adapter, owner, "", overrides)

    @st.composite
    def reply(draw: st.DrawFn) -> Reply:
        shape = draw(st.sampled_from(chosen))
        raw, _ = draw(pairs)
        indent = draw(st.sampled_from((None, 2)))
        return Reply(_SHAPERS[shape](draw, adapter, raw, indent), shape)

    return reply()


def _resolve(schema: Any, defs: Mapping[str, Any]) -> Any:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = defs.get(schema["$ref"].rsplit("/", 1)[-1], {})
    return schema


def _has_required(schema: Any, defs: Mapping[str, Any], seen: set[str]) -> bool:
    if isinstance(schema, dict) and "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return False
        seen.add(name)
        return _has_required(defs.get(name, {}), defs, seen)
    if not isinstance(schema, dict):
        return False
    if schema.get("required"):
        return True
    children: list[Any] = [
        *schema.get("properties", {}).values(),
        *schema.get("anyOf", ()),
        *schema.get("oneOf", ()),
        *schema.get("allOf", ()),
        *schema.get("prefixItems", ()),
        schema.get("items"),
        schema.get("additionalProperties"),
    ]
    return any(_has_required(child, defs, seen) for child in children)


def _fails(adapter: pydantic.TypeAdapter[Any], text: str) -> bool:
    try:
        adapter.validate_json(text)
    except pydantic.ValidationError:
        return True
    return False


Shaper = Callable[[st.DrawFn, pydantic.TypeAdapter[Any], Any, "int | None"], str]


def _valid_text(
    draw: st.DrawFn, adapter: pydantic.TypeAdapter[Any], raw: Any, indent: int | None
) -> str:
    return _json_text(raw, indent)


def _fenced_text(
    draw: st.DrawFn, adapter: pydantic.TypeAdapter[Any], raw: Any, indent: int | None
) -> str:
    return f"```json\n{_json_text(raw, indent)}\n```"


def _prose_text(
    draw: st.DrawFn, adapter: pydantic.TypeAdapter[Any], raw: Any, indent: int | None
) -> str:
    before = draw(st.sampled_from(PROSE_BEFORE))
    after = draw(st.sampled_from(PROSE_AFTER))
    separator = draw(st.sampled_from(("\n\n", "\n", " ")))
    return f"{before}{separator}{_json_text(raw, indent)}{separator}{after}"


def _truncated_text(
    draw: st.DrawFn, adapter: pydantic.TypeAdapter[Any], raw: Any, indent: int | None
) -> str:
    text = _json_text(raw, indent)
    if len(text) < 2:
        reject()
    cut = draw(st.integers(1, len(text) - 1))
    for end in [*range(cut, 0, -1), *range(cut + 1, len(text))]:
        if _fails(adapter, text[:end]):
            return text[:end]
    reject()


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _nodes(item, (*path, key))
    elif isinstance(value, list):
        for position, item in enumerate(value):
            yield from _nodes(item, (*path, position))


def _replaced(raw: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    changed = copy.deepcopy(raw)
    parent = changed
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = new
    return changed


def _rotated(draw: st.DrawFn, items: list[Any]) -> list[Any]:
    if not items:
        reject()
    start = draw(st.integers(0, len(items) - 1))
    return items[start:] + items[:start]


def _wrong_type_text(
    draw: st.DrawFn, adapter: pydantic.TypeAdapter[Any], raw: Any, indent: int | None
) -> str:
    nodes = list(_nodes(raw))
    fields = [node for node in nodes if node[0]]
    for path, value in _rotated(draw, fields or nodes):
        for wrong in WRONG_VALUES[type(value)]:
            text = _json_text(_replaced(raw, path, wrong), indent)
            if _fails(adapter, text):
                return text
    reject()


def _missing_field_text(
    draw: st.DrawFn, adapter: pydantic.TypeAdapter[Any], raw: Any, indent: int | None
) -> str:
    keys = [(path, key) for path, value in _nodes(raw) if isinstance(value, dict) for key in value]
    for path, key in _rotated(draw, keys):
        changed = copy.deepcopy(raw)
        parent = changed
        for part in path:
            parent = parent[part]
        del parent[key]
        text = _json_text(changed, indent)
        if _fails(adapter, text):
            return text
    reject()


_SHAPERS: Mapping[str, Shaper] = {
    "valid": _valid_text,
    "fenced": _fenced_text,
    "prose": _prose_text,
    "truncated": _truncated_text,
    "wrong_type": _wrong_type_text,
    "missing_field": _missing_field_text,
}


# --- no network ---------------------------------------------------------------------


class _NetworkBlock:
    """An HTTP target that refuses every request."""

    def __init__(self) -> None:
        self.blocked: list[str] = []

    def block(self, request: Any, why: str = "") -> NetworkBlockedError:
        message = (
            f"a property test tried to reach the network: {request.method.upper()} "
            f"{request.uri}; property tests make no model call{why}"
        )
        self.blocked.append(message)
        return NetworkBlockedError(message)

    def can_play(self, request: Any) -> bool:
        raise self.block(request)

    def play(self, request: Any) -> dict[str, Any]:
        raise self.block(request)

    def record(self, request: Any, response: dict[str, Any]) -> None:
        """Nothing reaches the network, so nothing comes back to keep."""


@contextlib.contextmanager
def _intercepted(target: HttpTarget) -> Iterator[None]:
    interception = HttpInterception()
    interception.attach(target)
    try:
        yield
    finally:
        interception.close()


def _blocked_in(error: BaseException) -> NetworkBlockedError | None:
    """The NetworkBlockedError an SDK wrapped (as cause or context) into ``error``."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, NetworkBlockedError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@contextlib.contextmanager
def no_network() -> Iterator[None]:
    """Fail any HTTP request made in the block with ``NetworkBlockedError``.

    SDKs wrap transport errors in their own (``openai.APIConnectionError``); the block
    raises the ``NetworkBlockedError`` instead, and raises it on leaving the block when
    the code swallowed it. Requests go through vcrpy's patches (httpx, requests,
    urllib3, aiohttp), which answer before any connection is opened.
    """
    block = _NetworkBlock()
    with _intercepted(block):
        try:
            yield
        except Exception as error:
            blocked = _blocked_in(error)
            if blocked is not None and blocked is not error:
                raise NetworkBlockedError(str(blocked)) from error
            raise
    if block.blocked:
        raise NetworkBlockedError(block.blocked[0])


# --- assert_prompt_renders ----------------------------------------------------------


class _Reads:
    """The field paths a template read, and those it read whole (printed, dumped...)."""

    def __init__(self) -> None:
        self.fields: set[str] = set()
        self.whole: set[str] = set()


class _ModelProxy:
    """A pydantic model as a template sees it, noting every field the template reads."""

    __slots__ = ("_pf_model", "_pf_path", "_pf_reads")

    _pf_model: pydantic.BaseModel
    _pf_path: str
    _pf_reads: _Reads

    def __init__(self, model: pydantic.BaseModel, path: str, reads: _Reads) -> None:
        object.__setattr__(self, "_pf_model", model)
        object.__setattr__(self, "_pf_path", path)
        object.__setattr__(self, "_pf_reads", reads)

    def __getattr__(self, name: str) -> Any:
        model, path, reads = self._pf_model, self._pf_path, self._pf_reads
        if name in type(model).model_fields:
            reads.fields.add(f"{path}.{name}")
            return _watched(getattr(model, name), f"{path}.{name}", reads)
        if name.startswith("__"):
            raise AttributeError(name)
        descriptor = inspect.getattr_static(type(model), name, None)
        if isinstance(descriptor, property) and descriptor.fget is not None:
            # A property reads fields too: let it read them through this proxy.
            with contextlib.suppress(Exception):
                return descriptor.fget(self)
        found = getattr(model, name)
        reads.whole.add(path)
        return found

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str) and key in type(self._pf_model).model_fields:
            return self.__getattr__(key)
        raise TypeError(f"{type(self._pf_model).__name__!r} object is not subscriptable")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a template cannot set {name}")

    def _pf_whole(self) -> pydantic.BaseModel:
        self._pf_reads.whole.add(self._pf_path)
        return self._pf_model

    def __str__(self) -> str:
        return str(self._pf_whole())

    def __repr__(self) -> str:
        return repr(self._pf_whole())

    def __format__(self, spec: str) -> str:
        return format(self._pf_whole(), spec)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._pf_whole())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _ModelProxy):
            other = other._pf_whole()
        return self._pf_whole() == other

    def __hash__(self) -> int:
        return hash(self._pf_whole())


_PROXY_CLASSES: dict[type[pydantic.BaseModel], type[_ModelProxy]] = {}


def _proxy_class(model: type[pydantic.BaseModel]) -> type[_ModelProxy]:
    """A proxy class named like the model, so that jinja's messages name the model."""
    if model not in _PROXY_CLASSES:
        _PROXY_CLASSES[model] = type(
            model.__name__, (_ModelProxy,), {"__slots__": (), "__module__": model.__module__}
        )
    return _PROXY_CLASSES[model]


class _ListProxy(list[Any]):
    """A list whose model items note what a template reads of them."""


class _TupleProxy(tuple[Any, ...]):
    """A tuple whose model items note what a template reads of them."""


def _watched(value: Any, path: str, reads: _Reads) -> Any:
    if isinstance(value, pydantic.BaseModel):
        return _proxy_class(type(value))(value, path, reads)
    if isinstance(value, list):
        return _ListProxy(_watched(item, f"{path}[]", reads) for item in value)
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return _TupleProxy(_watched(item, f"{path}[]", reads) for item in value)
    return value


def _leaves(value: Any, path: str) -> set[str]:
    """The field paths of a value that a prompt should read: every field of its models."""
    if isinstance(value, pydantic.BaseModel):
        names = list(type(value).model_fields)
        if not names:
            return {path}
        return set().union(*(_leaves(getattr(value, name), f"{path}.{name}") for name in names))
    if isinstance(value, (list, tuple)) and any(isinstance(v, pydantic.BaseModel) for v in value):
        return set().union(*(_leaves(item, f"{path}[]") for item in value))
    return {path}


def _prefixes(path: str) -> Iterator[str]:
    """``a.b[].c`` -> ``a``, ``a.b``, ``a.b[]``, ``a.b[].c``."""
    for position, character in enumerate(path):
        if character == "." or path.startswith("[]", position):
            yield path[:position]
    yield path
    if path.endswith("[]"):
        yield path[:-2]


def _plain(path: str) -> str:
    return path.replace("[]", "")


def _type_paths(annotation: Any, path: str, depth: int = 0) -> set[str]:
    """Every field path an annotation can have, for checking ``unused_ok``."""
    found = {path}
    if depth > 8:
        return found
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_paths(typing.get_args(annotation)[0], path, depth)
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        for name, field in annotation.model_fields.items():
            found |= _type_paths(field.annotation, f"{path}.{name}", depth + 1)
        return found
    for argument in typing.get_args(annotation):
        found |= _type_paths(argument, path, depth + 1)
    return found


def assert_prompt_renders(
    step: AnyStep,
    inputs: Mapping[str, Any],
    /,
    *,
    unused_ok: Iterable[str] = (),
    **extra_variables: Any,
) -> None:
    """Render every prompt of ``step`` with its inputs; each must render, and together
    they must read every field of every data input.

    The data inputs are passed as variables of the same names, plus ``extra_variables``
    (the constants the step gives its template, such as ``categories=CATEGORIES``). A
    field the prompts are meant to leave out is named in ``unused_ok``
    (``{"problem.sentiment"}``; a parameter or a model field covers what is below it).
    """
    if not step.prompts:
        raise ValueError(f"step {step.name!r} declares no prompt; pass prompt= to @step")
    adapters = step.input_types
    allowed = {_plain(path) for path in unused_ok}
    hints = _annotations(step)
    known = {_plain(path) for name in adapters for path in _type_paths(hints.get(name), name)}
    for path in sorted(allowed - known):
        raise ValueError(
            f"unused_ok names {path!r}, which is not a data input of step {step.name!r} "
            f"or one of their fields; they are: {', '.join(sorted(known))}"
        )
    data = {
        name: adapter.validate_python(inputs[name])
        for name, adapter in adapters.items()
        if name in inputs
    }
    variables = {**inputs, **extra_variables, **data}
    reads = _Reads()
    labels = [prompt.name for prompt in step.prompts]
    with no_network():
        for prompt in step.prompts:
            rendered = _render(step, prompt.name, prompt.render, variables)
            watched = {name: _watched(value, name, reads) for name, value in data.items()}
            try:
                tracked = prompt.render(**{**variables, **watched})
            except Exception:
                tracked = None
            if tracked != rendered:
                # The template does something the proxies do not copy: trust it to
                # read all it was given rather than report false omissions.
                reads.whole.update(data.keys() & prompt.variables)
    used = set().union(*(prompt.variables for prompt in step.prompts))
    never = [name for name in data if name not in used and name not in allowed]
    unread = [
        leaf
        for name in data
        if name in used
        for leaf in sorted(_leaves(data[name], name))
        if leaf != name
        and leaf not in reads.fields
        and not any(p in reads.whole for p in _prefixes(leaf))
        and not any(_plain(p) in allowed for p in _prefixes(leaf))
    ]
    if never or unread:
        problems = [f"input {name!r} is never read" for name in never]
        problems += [f"field {leaf!r} is never read" for leaf in unread]
        missing = ", ".join(repr(_plain(path)) for path in dict.fromkeys(never + unread))
        raise AssertionError(
            f"step {step.name!r}: its prompts ({', '.join(labels)}) do not show the model "
            "all of its inputs:\n  - "
            + "\n  - ".join(problems)
            + "\nIf the model needs it, use it in a template; if it is left out on purpose, "
            f"say so: assert_prompt_renders(..., unused_ok={{{missing}}})"
        )


def _annotations(step: AnyStep) -> dict[str, Any]:
    try:
        return typing.get_type_hints(step.function, include_extras=True)
    except Exception:
        return {}


def _render(
    step: AnyStep, prompt: str, render: Callable[..., str], variables: Mapping[str, Any]
) -> str:
    try:
        return render(**variables)
    except PromptRenderError as error:
        hint = ""
        if error.variable is not None and error.variable not in step.input_types:
            hint = (
                f"\nIf {error.variable!r} is a constant the step passes to its template, pass "
                f"it too: assert_prompt_renders(step, inputs, {error.variable}=...)"
            )
        raise AssertionError(
            f"step {step.name!r}: prompt {prompt!r} does not render: {error}{hint}"
        ) from error
    except Exception as error:
        raise AssertionError(
            f"step {step.name!r}: prompt {prompt!r} does not render: "
            f"{type(error).__name__}: {error}"
        ) from error


# --- assert_parses_or_rejects -------------------------------------------------------

OPENAI_PATH = "/chat/completions"
ANTHROPIC_PATH = "/messages"
CREATED = 1_700_000_000
PIECE = 8
"""Characters per streamed delta: small, so that a parser sees the reply in many parts."""


class _ModelReplies(_NetworkBlock):
    """Answers every model request with one reply text, and refuses anything else."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.answered = 0

    def can_play(self, request: Any) -> bool:
        path = request.path.rstrip("/")
        if request.method.upper() == "POST" and path.endswith((OPENAI_PATH, ANTHROPIC_PATH)):
            return True
        raise self.block(
            request,
            "; only OpenAI chat completions and Anthropic messages requests are answered",
        )

    def play(self, request: Any) -> dict[str, Any]:
        self.answered += 1
        try:
            body = json.loads(request.body or b"{}")
        except (TypeError, ValueError):
            body = {}
        if not isinstance(body, dict):
            body = {}
        if request.path.rstrip("/").endswith(OPENAI_PATH):
            return _openai_response(self.text, body)
        return _anthropic_response(self.text, body)


def _pieces(text: str) -> list[str]:
    return [text[start : start + PIECE] for start in range(0, len(text), PIECE)]


def _vcr_json(body: Any) -> dict[str, Any]:
    return {
        "status": {"code": 200, "message": "OK"},
        "headers": {"content-type": ["application/json"]},
        "body": {"string": json.dumps(body).encode("utf-8")},
    }


def _vcr_events(events: Iterable[tuple[str | None, Any]]) -> dict[str, Any]:
    blocks = [
        (f"event: {name}\n" if name else "")
        + f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"
        for name, data in events
    ]
    return {
        "status": {"code": 200, "message": "OK"},
        "headers": {"content-type": ["text/event-stream; charset=utf-8"]},
        "body": {"string": "".join(blocks).encode("utf-8")},
    }


def _openai_response(text: str, request: Mapping[str, Any]) -> dict[str, Any]:
    model = request.get("model") or "gpt-4o-mini"
    count = request.get("n") or 1
    tokens = max(1, len(text.split()))
    usage = {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": 10 + tokens}
    base = {"id": "chatcmpl-promptflow", "created": CREATED, "model": model}
    if not request.get("stream"):
        message = {"role": "assistant", "content": text, "refusal": None}
        choices = [
            {"index": i, "message": message, "logprobs": None, "finish_reason": "stop"}
            for i in range(count)
        ]
        return _vcr_json({**base, "object": "chat.completion", "choices": choices, "usage": usage})

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choices = [
            {"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}
            for i in range(count)
        ]
        return {**base, "object": "chat.completion.chunk", "choices": choices}

    events: list[tuple[str | None, Any]] = [
        (None, chunk({"role": "assistant", "content": "", "refusal": None}))
    ]
    events += [(None, chunk({"content": piece})) for piece in _pieces(text)]
    events.append((None, chunk({}, "stop")))
    options = request.get("stream_options") or {}
    if isinstance(options, dict) and options.get("include_usage"):
        events.append(
            (None, {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        )
    events.append((None, "[DONE]"))
    return _vcr_events(events)


def _anthropic_response(text: str, request: Mapping[str, Any]) -> dict[str, Any]:
    usage = {"input_tokens": 10, "output_tokens": max(1, len(text.split()))}
    message = {
        "id": "msg_promptflow",
        "type": "message",
        "role": "assistant",
        "model": request.get("model") or "claude-haiku-4-5",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }
    if not request.get("stream"):
        return _vcr_json(message)
    started = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {**usage, "output_tokens": 1},
    }
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"message": started}),
        ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        ("ping", {}),
    ]
    events += [
        ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
        for piece in _pieces(text)
    ]
    events += [
        ("content_block_stop", {"index": 0}),
        (
            "message_delta",
            {
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        ),
        ("message_stop", {}),
    ]
    return _vcr_events((name, {"type": name, **data}) for name, data in events)


def _finish(result: object) -> object:
    """The result of a step call, awaited when the step is async."""
    if not inspect.isawaitable(result):
        return result
    awaitable: Awaitable[object] = result

    async def wait() -> object:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wait())
    # Called from async code: the step runs on its own loop, in a thread of its own.
    context = contextvars.copy_context()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = context.run(asyncio.run, wait())
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=target, name="promptflow-async-step")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


def _shown(text: str, limit: int = 400) -> str:
    shown = repr(text[:limit])
    return shown + (f" ... ({len(text) - limit} more characters)" if len(text) > limit else "")


def assert_parses_or_rejects(step: AnyStep, reply: Reply | str, /, **arguments: Any) -> object:
    """Run the real ``step`` with ``arguments``, every model request answered with ``reply``.

    OpenAI chat completions and Anthropic messages requests get the reply in their
    wire format (streamed when the request asks for it); any other request fails with
    ``NetworkBlockedError``. The property holds when the step returns a valid output
    or raises ``StepContractError``; any other exception, such as a parser's
    ``KeyError``, fails it with an ``AssertionError``. Returns the step's output, or
    None when the step rejected the reply.
    """
    text, shape = (reply.text, reply.shape) if isinstance(reply, Reply) else (reply, "given")
    replies_ = _ModelReplies(text)
    what = f"the {shape} reply {_shown(text)}"
    with (
        _intercepted(replies_),
        recording_run(Run(test_id=f"assert_parses_or_rejects:{step.name}")),
    ):
        output: object = None
        try:
            output = _finish(step(**arguments))
        except StepContractError as error:
            if error.boundary == "input":
                raise AssertionError(
                    f"the arguments given to step {step.name!r} break its input contract, so "
                    f"no reply was tried; pass valid inputs, e.g. from inputs(step):\n{error}"
                ) from error
        except Exception as error:
            blocked = _blocked_in(error)
            if blocked is not None:
                raise NetworkBlockedError(str(blocked)) from error
            raise AssertionError(
                f"step {step.name!r} raised {type(error).__name__}: {error} on {what}; "
                "given any reply, a step must return a valid output or raise "
                "StepContractError (let pydantic parse the reply, e.g. with "
                "model_validate_json, or turn the parser's error into a ValidationError)"
            ) from error
    if replies_.blocked:
        raise NetworkBlockedError(replies_.blocked[0])
    if not replies_.answered:
        raise AssertionError(
            f"step {step.name!r} made no model request that could be answered, so "
            f"{what} was never parsed; its client must send OpenAI chat completions or "
            "Anthropic messages requests through httpx, requests or aiohttp"
        )
    return output
