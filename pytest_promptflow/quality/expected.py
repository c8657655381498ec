"""Expected values: what a case says each step should answer, checked when it is read.

A case may carry ``"expected"``, keyed by step name, each an object of that step's
output fields (any subset)::

    {"id": "T-1001", "subject": "...", "expected": {"classify": {"category": "billing"}}}

It is not part of the case's input (unless the case model declares a field of that
name). A step name that no ``@step`` declares, a field the step's output lacks, or a
value the field's type rejects is an error naming the file and the line.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import typing
from collections.abc import Callable, Mapping
from typing import Any

import pydantic

from pytest_promptflow.errors import PromptflowError

EXPECTED_FIELD = "expected"

ExpectedValues = Mapping[str, Mapping[str, Any]]
"""Expected output fields (JSON values) by step name, then by field name."""


def output_fields(annotation: Any) -> dict[str, Any] | None:
    """The fields of a step's output type by their JSON name (a pydantic model's alias
    when it serializes by alias), or None when the output is not an object with fields."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return {
            (field.serialization_alias or field.alias or name): _with_metadata(
                field.annotation, field.metadata
            )
            for name, field in annotation.model_fields.items()
        }
    if isinstance(annotation, type) and (
        dataclasses.is_dataclass(annotation) or typing.is_typeddict(annotation)
    ):
        return dict(typing.get_type_hints(annotation, include_extras=True))
    return None


def _with_metadata(annotation: Any, metadata: list[Any]) -> Any:
    """A model field's annotation with the constraints pydantic keeps apart from it."""
    if not metadata:
        return annotation
    return typing.Annotated.__class_getitem__((annotation, *metadata))  # type: ignore[attr-defined]


def check_expected(
    value: object,
    where: str,
    output_of: Callable[[str], tuple[Any] | None],
) -> dict[str, dict[str, Any]]:
    """The ``expected`` object of one case, checked; ``where`` names the case
    (``fixtures/tickets.jsonl:3: case 'T-1003'``) and ``output_of(name)`` gives the
    output annotation of the step called ``name`` (in a 1-tuple), None when there is none.

    Raises PromptflowError naming the step, the field and what to write instead.
    """
    if not isinstance(value, dict):
        raise PromptflowError(
            f"{where}: {EXPECTED_FIELD!r} must be an object of expected outputs keyed by "
            f"step name, not {type(value).__name__}"
        )
    checked: dict[str, dict[str, Any]] = {}
    for step_name, fields in value.items():
        found = output_of(step_name)
        if found is None:
            raise PromptflowError(
                f"{where}: expects values of step {step_name!r}, but no @step is named so; "
                "expected values are keyed by the name of a step the test module imports"
            )
        (annotation,) = found
        if not isinstance(fields, dict):
            raise PromptflowError(
                f"{where}: the expected value of step {step_name!r} must be an object of its "
                f"output fields, not {type(fields).__name__}"
            )
        known = output_fields(annotation)
        if known is None:
            raise PromptflowError(
                f"{where}: step {step_name!r} returns {_type_name(annotation)}, which has no "
                "fields to expect values of; expected values need a step whose output is a "
                "pydantic model, a dataclass or a TypedDict"
            )
        for field_name, expected in fields.items():
            if field_name not in known:
                raise PromptflowError(
                    f"{where}: step {step_name!r} has no output field {field_name!r}; its "
                    f"fields are {', '.join(sorted(known))}"
                )
            problem = _rejected(known[field_name], expected)
            if problem is not None:
                raise PromptflowError(
                    f"{where}: the expected {step_name}.{field_name} = "
                    f"{json.dumps(expected, ensure_ascii=False)[:80]} is not a valid "
                    f"{_type_name(known[field_name])}: {problem}"
                )
        checked[step_name] = dict(fields)
    return checked


def _rejected(annotation: Any, value: object) -> str | None:
    """Why the field's type rejects ``value`` (a JSON value), or None."""
    try:
        _validator(annotation).validate_json(json.dumps(value))
    except pydantic.ValidationError as error:
        return "; ".join(detail["msg"] for detail in error.errors(include_url=False))
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError):
        return None  # a type pydantic cannot check is not checked
    return None


def _validator(annotation: Any) -> pydantic.TypeAdapter[Any]:
    """The validator of a field's type, built once per type: building one costs about a
    hundred times what validating a value does, and every case checks the same fields."""
    try:
        return _shared_validator(annotation)
    except TypeError:  # an annotation that cannot be hashed
        return pydantic.TypeAdapter(annotation)


@functools.lru_cache(maxsize=1024)
def _shared_validator(annotation: Any) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(annotation)


def _type_name(annotation: Any) -> str:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return getattr(annotation, "__name__", None) or repr(annotation)
