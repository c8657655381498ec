"""JSON schema -> hypothesis strategy: the values a pydantic type accepts, in JSON form.

pydantic describes a type as a JSON schema; ``SchemaConverter`` turns that schema into
a strategy of JSON values, which ``values.valid_pairs`` validates with the type's own
``TypeAdapter``. The converter exists because hypothesis-jsonschema, the library that
would do this, does not work with current hypothesis: version 0.23.1 fails with
``'many' object has no attribute 'more'``. It also covers what JSON schema leaves out
and a pydantic type needs (dict keys that are not strings, the digits of decimals), and
names the field, with the override to pass, when a constraint has no strategy.
"""

from __future__ import annotations

import datetime
import decimal
import json
import math
import types
from collections.abc import Callable, Mapping
from typing import Any

import pydantic
import pydantic_core
from hypothesis import strategies as st
from hypothesis.errors import FailedHealthCheck
from hypothesis.provisional import urls
from hypothesis.strategies import SearchStrategy
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from pytest_promptflow.errors import PromptflowError

Overrides = Mapping[str, SearchStrategy[Any]]
"""Strategies that replace a field's, by the field's dotted path in the JSON form."""
NO_OVERRIDES: Overrides = types.MappingProxyType({})


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


class StrategySchema(GenerateJsonSchema):
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


class SchemaConverter:
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
            return self.overrides[path].map(jsonable)
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
        unique = canonical if schema.get("uniqueItems") else None
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
            return self.convert(schema["contentSchema"], "").map(json_text)
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


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def jsonable(value: Any) -> Any:
    return pydantic_core.to_jsonable_python(value, by_alias=True)


def json_text(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)
