"""A short fingerprint of a step's output schema: the contract, without its prose.

The fingerprint sees what a consumer of the output depends on: field names, both
aliases (the validation and the serialization one), types, defaults and constraints.
It ignores prose: docstrings, descriptions, titles and examples given as annotations,
and the names of the models themselves (renaming a class changes no contract).

Fingerprints start with ``v2:``. Golden values recorded before that hold the earlier
fingerprint, which dropped every ``title``, ``description`` and ``examples`` key at any
depth, a *field* of that name included; ``legacy_schema_fingerprint`` still computes it
so that those recordings compare as before.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

import pydantic

VERSION_PREFIX = "v2:"
_PROSE_KEYS = frozenset({"title", "description", "examples", "$comment"})
# Keywords whose value maps names (of fields, of definitions) to schemas: the names are
# part of the contract, even a field called "title".
_NAMED_SCHEMAS = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)
_DEFINITION_REF = "#/$defs/"


def schema_fingerprint(adapter: pydantic.TypeAdapter[Any]) -> str:
    """``v2:`` and 12 hex digits naming the output contract of ``adapter``."""
    views = [
        adapter.json_schema(mode="validation", by_alias=False),
        adapter.json_schema(mode="validation", by_alias=True),
        adapter.json_schema(mode="serialization", by_alias=True),
    ]
    canonical = json.dumps(
        [_without_prose(_with_stable_definition_names(view)) for view in views],
        sort_keys=True,
        separators=(",", ":"),
    )
    return VERSION_PREFIX + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


@functools.lru_cache(maxsize=256)
def legacy_fingerprint_of(annotation: Any) -> str:
    """``legacy_schema_fingerprint`` of an output annotation, computed once per type."""
    return legacy_schema_fingerprint(pydantic.TypeAdapter(annotation))


def legacy_schema_fingerprint(adapter: pydantic.TypeAdapter[Any]) -> str:
    """The fingerprint golden values held before ``v2:``."""

    def strip(schema: Any) -> Any:
        if isinstance(schema, dict):
            return {k: strip(v) for k, v in schema.items() if k not in _PROSE_KEYS}
        if isinstance(schema, list):
            return [strip(item) for item in schema]
        return schema

    canonical = json.dumps(strip(adapter.json_schema()), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def is_legacy(fingerprint: str) -> bool:
    return not fingerprint.startswith(VERSION_PREFIX)


def _without_prose(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_without_prose(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    kept: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _PROSE_KEYS:
            continue
        if key in _NAMED_SCHEMAS and isinstance(value, dict):
            kept[key] = {name: _without_prose(item) for name, item in value.items()}
        else:
            kept[key] = _without_prose(value)
    return kept


def _with_stable_definition_names(schema: dict[str, Any]) -> dict[str, Any]:
    """Definitions renamed ``D0``, ``D1``... in the order they are first referred to."""
    definitions: dict[str, Any] = schema.get("$defs", {})
    if not definitions:
        return schema
    names: dict[str, str] = {}

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            for key in sorted(value):
                item = value[key]
                if key == "$ref" and isinstance(item, str) and item.startswith(_DEFINITION_REF):
                    name = item[len(_DEFINITION_REF) :]
                    if name not in names:
                        names[name] = f"D{len(names)}"
                        collect(definitions.get(name))
                elif key != "$defs":
                    collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    collect(schema)
    for name in sorted(definitions):  # definitions nothing refers to, for completeness
        if name not in names:
            names[name] = f"D{len(names)}"
            collect(definitions[name])

    def rename(value: Any) -> Any:
        if isinstance(value, dict):
            result: dict[str, Any] = {}
            for key, item in value.items():
                if key == "$ref" and isinstance(item, str) and item.startswith(_DEFINITION_REF):
                    result[key] = _DEFINITION_REF + names[item[len(_DEFINITION_REF) :]]
                elif key == "$defs":
                    result[key] = {names[name]: rename(d) for name, d in item.items()}
                else:
                    result[key] = rename(item)
            return result
        if isinstance(value, list):
            return [rename(item) for item in value]
        return value

    renamed: dict[str, Any] = rename(schema)
    return renamed
