"""Model replies aimed at a step's parser, in the shapes a model really sends."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import pydantic
from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from pytest_promptflow.steps import Step
from pytest_promptflow.strategies.schema import NO_OVERRIDES, Overrides, StrategySchema, json_text
from pytest_promptflow.strategies.values import AnyStep, adapter_of, annotation_name, valid_pairs


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
    overrides: Overrides = NO_OVERRIDES,
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
        adapter = adapter_of(step_or_annotation)
        owner = annotation_name(step_or_annotation)
    chosen = list(dict.fromkeys(shapes))
    unknown = [shape for shape in chosen if shape not in ALL_SHAPES]
    if unknown or not chosen:
        raise ValueError(
            f"unknown reply shape {unknown[0]!r}" if unknown else "no reply shape asked for"
        )
    schema = adapter.json_schema(schema_generator=StrategySchema)
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
    pairs = valid_pairs(adapter, owner, "", overrides)

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
    return json_text(raw, indent)


def _fenced_text(
    draw: st.DrawFn, adapter: pydantic.TypeAdapter[Any], raw: Any, indent: int | None
) -> str:
    return f"```json\n{json_text(raw, indent)}\n```"


def _prose_text(
    draw: st.DrawFn, adapter: pydantic.TypeAdapter[Any], raw: Any, indent: int | None
) -> str:
    before = draw(st.sampled_from(PROSE_BEFORE))
    after = draw(st.sampled_from(PROSE_AFTER))
    separator = draw(st.sampled_from(("\n\n", "\n", " ")))
    return f"{before}{separator}{json_text(raw, indent)}{separator}{after}"


def _truncated_text(
    draw: st.DrawFn, adapter: pydantic.TypeAdapter[Any], raw: Any, indent: int | None
) -> str:
    text = json_text(raw, indent)
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
            text = json_text(_replaced(raw, path, wrong), indent)
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
        text = json_text(changed, indent)
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
