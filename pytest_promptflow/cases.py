"""Cases: the inputs a test is parametrized over, read from JSON Lines or JSON files."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic

from pytest_promptflow.errors import CaseFileError, PromptflowError
from pytest_promptflow.quality.expected import EXPECTED_FIELD, check_expected

ID_FIELD = "id"


@dataclass(frozen=True)
class Case:
    """One input to a chain. ``input`` is validated into the model when one was given."""

    id: str
    input: Any
    data: dict[str, Any]
    source: Path
    line: int
    expected: dict[str, dict[str, Any]] = field(default_factory=dict)
    """What the case expects of each step's output fields, by step name."""

    @property
    def location(self) -> str:
        return f"{self.source}:{self.line}"


def case_id_of(data: dict[str, Any]) -> str:
    """The ``id`` field, or a short hash of the content, stable across machines."""
    if ID_FIELD in data:
        return str(data[ID_FIELD])
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:10]


def load_cases(
    path: Path,
    model: type[pydantic.BaseModel] | None = None,
    output_of: Callable[[str], tuple[Any] | None] | None = None,
) -> list[Case]:
    """Read every case of ``path``; any problem is a CaseFileError naming file and line.

    The ``id`` field names the case and is not part of its input, unless ``model``
    declares a field ``id``: then the model receives it too. So is ``expected``, the
    case's expected step outputs, checked with ``output_of(step name)`` (a step's output
    annotation, in a 1-tuple, or None when no step has that name).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CaseFileError(f"case file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CaseFileError(f"case file {path} cannot be read: {error}") from None
    records = _json_records(path, text) if path.suffix == ".json" else _jsonl_records(path, text)
    if not records:
        raise CaseFileError(f"case file {path} holds no cases")
    cases: list[Case] = []
    first_line_of: dict[str, int] = {}
    for line, record in records:
        if not isinstance(record, dict):
            raise CaseFileError(
                f"{path}:{line}: a case must be a JSON object, not {type(record).__name__}"
            )
        case_id = case_id_of(record)
        if case_id in first_line_of:
            raise CaseFileError(
                f"{path}:{line}: duplicate case id {case_id!r} "
                f"(first at line {first_line_of[case_id]}); give each case a unique 'id'"
            )
        first_line_of[case_id] = line
        left_out = {name for name in (ID_FIELD, EXPECTED_FIELD) if not _declares(model, name)}
        fields = {key: value for key, value in record.items() if key not in left_out}
        expected: dict[str, dict[str, Any]] = {}
        if EXPECTED_FIELD in record and EXPECTED_FIELD in left_out:
            where = f"{path}:{line}: case {case_id!r}"
            try:
                expected = check_expected(
                    record[EXPECTED_FIELD], where, output_of or (lambda name: None)
                )
            except PromptflowError as error:
                raise CaseFileError(str(error)) from None
        cases.append(
            Case(
                case_id,
                _validate(path, line, case_id, fields, model),
                record,
                path,
                line,
                expected,
            )
        )
    return cases


def _declares(model: type[pydantic.BaseModel] | None, name: str) -> bool:
    """Whether the case model has a field named (or aliased) ``name``: then it keeps it."""
    if model is None:
        return False
    return any(
        key == name or field.alias == name or field.validation_alias == name
        for key, field in model.model_fields.items()
    )


def _validate(
    path: Path,
    line: int,
    case_id: str,
    fields: dict[str, Any],
    model: type[pydantic.BaseModel] | None,
) -> Any:
    if model is None:
        return fields
    try:
        return model.model_validate(fields)
    except pydantic.ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in detail['loc']) or '(case)'}: {detail['msg']}"
            for detail in error.errors(include_url=False)
        )
        raise CaseFileError(
            f"{path}:{line}: case {case_id!r} is not a valid {model.__name__}: {problems}"
        ) from None


def _jsonl_records(path: Path, text: str) -> list[tuple[int, Any]]:
    records = []
    # Only "\n" ends a line: JSON strings may hold U+2028 and the like, which
    # str.splitlines() would also split on.
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            records.append((number, json.loads(raw)))
        except json.JSONDecodeError as error:
            raise CaseFileError(
                f"{path}:{number}: not valid JSON ({error.msg} at column {error.colno})"
            ) from None
    return records


def _json_records(path: Path, text: str) -> list[tuple[int, Any]]:
    """The items of a top-level JSON list, each with the line it starts on."""
    decoder = json.JSONDecoder()
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise CaseFileError(
            f"{path}:{error.lineno}: not valid JSON ({error.msg} at column {error.colno})"
        ) from None
    if not isinstance(document, list):
        raise CaseFileError(f"{path}:1: a JSON case file must hold a list of cases")
    records = []
    position = text.index("[") + 1
    for _ in document:
        while text[position] in " \t\r\n,":
            position += 1
        item, end = decoder.raw_decode(text, position)
        records.append((text.count("\n", 0, position) + 1, item))
        position = end
    return records
