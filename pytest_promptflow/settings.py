"""Configuration objects built from markers, ini keys and options, checked with pydantic."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pydantic

from pytest_promptflow.cassette.modes import RecordMode
from pytest_promptflow.errors import PromptflowError

OptionsT = TypeVar("OptionsT", bound=pydantic.BaseModel)


class CasesMarker(pydantic.BaseModel):
    """Arguments of ``@pytest.mark.promptflow_cases(path, model=None)``."""

    model_config = pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)

    path: Path
    model: type[pydantic.BaseModel] | None = None


def marker_options(
    options: type[OptionsT],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
) -> OptionsT:
    """Build a marker's options; a typo or a wrong type is a readable error."""
    names = list(options.model_fields)
    if len(args) > len(names):
        raise PromptflowError(f"too many arguments to the marker: {args!r}")
    try:
        return options.model_validate({**dict(zip(names, args, strict=False)), **kwargs})
    except pydantic.ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in detail['loc'])}: {detail['msg']}"
            for detail in error.errors(include_url=False)
        )
        raise PromptflowError(f"bad marker arguments: {problems}") from None


CI_VARIABLE = "CI"


def running_in_ci(environ: Mapping[str, str]) -> bool:
    return environ.get(CI_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def resolve_record_mode(
    command_line: str | None, ini_value: str, environ: Mapping[str, str]
) -> RecordMode:
    """The record mode: the command line wins; from ini, recording is refused in CI."""
    if command_line is not None:
        return RecordMode(command_line)
    try:
        mode = RecordMode(ini_value.strip())
    except ValueError:
        choices = ", ".join(m.value for m in RecordMode)
        raise PromptflowError(
            f"promptflow_record = {ini_value!r} is not a record mode; use one of {choices}"
        ) from None
    if mode is not RecordMode.NONE and running_in_ci(environ):
        raise PromptflowError(
            f"promptflow_record = {mode.value} comes from the ini file, but the {CI_VARIABLE} "
            f"environment variable is set ({CI_VARIABLE}={environ[CI_VARIABLE]}), so recording "
            f"is refused; pass --promptflow-record={mode.value} on the command line to record "
            f"in CI anyway"
        )
    return mode
