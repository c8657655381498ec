"""Strategies of valid values: of any annotation, and of a step's data inputs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pydantic
from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from pytest_promptflow.steps import Step
from pytest_promptflow.strategies.schema import (
    NO_OVERRIDES,
    Overrides,
    SchemaConverter,
    StrategySchema,
    UnsatisfiableFieldError,
    UnsupportedFieldError,
    canonical,
    json_text,
    jsonable,
)

AnyStep = Step[..., Any]

# How many generated values in a row may fail validation before a field is declared
# impossible to generate. A custom validator that rejects half of what the schema
# allows fails this many times once in 65 000 draws.
ATTEMPTS = 16


def values(annotation: Any, *, overrides: Overrides = NO_OVERRIDES) -> SearchStrategy[Any]:
    """Valid values of ``annotation``, as its ``TypeAdapter`` validates them.

    ``overrides`` replaces the strategy of a field, named by its dotted path in the JSON
    form (``"customer_email"``, ``"problem.symptoms"``; ``[]`` names the items of a
    list: ``"lines[].sku"``). An override may give Python values (models, dates...) or
    their JSON form; either way the whole value is validated.
    """
    adapter = adapter_of(annotation)
    return valid_pairs(adapter, annotation_name(annotation), "", overrides).map(_second)


def inputs(step: AnyStep, *, overrides: Overrides = NO_OVERRIDES) -> SearchStrategy[dict[str, Any]]:
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
            pairs = valid_pairs(adapter, owner, f"{parameter}.", mine)
            strategies[parameter] = pairs.map(_second)
    return st.fixed_dictionaries(strategies)


def _second(pair: tuple[Any, Any]) -> Any:
    return pair[1]


def _validated_override(
    adapter: pydantic.TypeAdapter[Any], key: str, owner: str
) -> Callable[[Any], Any]:
    def validate(value: Any) -> Any:
        try:
            return adapter.validate_json(json_text(jsonable(value)))
        except pydantic.ValidationError as error:
            raise UnsatisfiableFieldError(
                f"the override {key!r} gave a value that is not a valid {owner}: {error}",
                type_name=owner,
                field=None,
            ) from None

    return validate


def adapter_of(annotation: Any) -> pydantic.TypeAdapter[Any]:
    try:
        adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(annotation)
        adapter.json_schema(schema_generator=StrategySchema)
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError) as error:
        field = _field_without_schema(annotation)
        where = f"field {field!r} of " if field else ""
        name = annotation_name(annotation)
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


def annotation_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return repr(annotation).replace("typing.", "")


def valid_pairs(
    adapter: pydantic.TypeAdapter[Any], owner: str, key_prefix: str, overrides: Overrides
) -> SearchStrategy[tuple[Any, Any]]:
    """(JSON form, validated value) pairs: the JSON is what a model would send."""
    schema = adapter.json_schema(schema_generator=StrategySchema)
    converter = SchemaConverter(schema, owner, key_prefix, overrides)
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
                return value, adapter.validate_json(json_text(value))
            except pydantic.ValidationError as error:
                failures.append((value, error))
        if len({canonical(value) for value, _ in failures}) > ATTEMPTS // 2:
            raise _impossible(converter, failures[-1])
        reject()

    return valid()


def _impossible(
    converter: SchemaConverter, failure: tuple[Any, pydantic.ValidationError]
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
