"""Configuration objects built from markers, ini keys and options, checked with pydantic."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import pydantic

from pytest_promptflow.cassette.modes import RecordMode
from pytest_promptflow.drift.policy import PolicyDefaults
from pytest_promptflow.errors import PromptflowError

OptionsT = TypeVar("OptionsT", bound=pydantic.BaseModel)


Samples = Annotated[int, pydantic.Field(ge=1, le=1000)]
PassRate = Annotated[float, pydantic.Field(ge=0.0, le=1.0)]


class PromptflowMarker(pydantic.BaseModel):
    """Arguments of ``@pytest.mark.promptflow(samples=None, min_pass_rate=None)``."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    samples: Samples | None = None
    min_pass_rate: PassRate | None = None


class CasesMarker(PromptflowMarker):
    """Arguments of ``@pytest.mark.promptflow_cases(path, model=None, samples=None,
    min_pass_rate=None)``."""

    model_config = pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)

    path: Path
    model: type[pydantic.BaseModel] | None = None


class StepMarker(PromptflowMarker):
    """Arguments of ``@pytest.mark.promptflow_step(step, samples=None, min_pass_rate=None)``."""

    model_config = pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)

    step: object


def marker_options(
    options: type[OptionsT],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
) -> OptionsT:
    """Build a marker's options; a typo or a wrong type is a readable error. Positional
    arguments fill the marker's own fields (``path``, ``model``; ``step``)."""
    # samples= and min_pass_rate= are given by name only.
    names = [name for name in options.model_fields if name not in PromptflowMarker.model_fields]
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
    option: str | None, explicit: bool, ini_value: str, environ: Mapping[str, str]
) -> RecordMode:
    """The record mode, from the option or else the ini key.

    In CI, recording is refused unless the option was typed on the command line itself:
    a mode from the ini file or from addopts is a setting someone forgot to revert.
    """
    value = option if option is not None else ini_value.strip()
    try:
        mode = RecordMode(value)
    except ValueError:
        choices = ", ".join(m.value for m in RecordMode)
        raise PromptflowError(
            f"promptflow_record = {value!r} is not a record mode; use one of {choices}"
        ) from None
    if mode is not RecordMode.NONE and not explicit and running_in_ci(environ):
        origin = "addopts" if option is not None else "the ini file (promptflow_record)"
        raise PromptflowError(
            f"record mode {mode.value!r} comes from {origin}, but the {CI_VARIABLE} environment "
            f"variable is set ({CI_VARIABLE}={environ[CI_VARIABLE]}), so recording is refused; "
            f"pass --promptflow-record={mode.value} on the command line to record in CI anyway"
        )
    return mode


def resolve_accept(option: bool, explicit: bool, environ: Mapping[str, str]) -> bool:
    """Whether to accept; in CI only when typed on the command line itself."""
    if option and not explicit and running_in_ci(environ):
        raise PromptflowError(
            f"--promptflow-accept comes from addopts, but the {CI_VARIABLE} environment "
            f"variable is set ({CI_VARIABLE}={environ[CI_VARIABLE]}), so accepting is refused; "
            "pass --promptflow-accept on the command line to accept in CI anyway"
        )
    return option


def given_on_command_line(arguments: Sequence[str], option: str) -> bool:
    return any(arg == option or arg.startswith(option + "=") for arg in arguments)


def policy_defaults(
    similarity: str, structure_changes: str, text_rule: str = "facts"
) -> PolicyDefaults:
    """The project's drift defaults from the ini keys, checked."""
    try:
        threshold = float(similarity)
    except ValueError:
        threshold = -1.0
    if not 0.0 <= threshold <= 1.0:
        raise PromptflowError(
            f"promptflow_similarity = {similarity!r} must be a number from 0 to 1"
        )
    if structure_changes not in ("fail", "tolerate"):
        raise PromptflowError(
            f"promptflow_structure_changes = {structure_changes!r} must be fail or tolerate"
        )
    if text_rule not in ("facts", "similar"):
        raise PromptflowError(f"promptflow_text_rule = {text_rule!r} must be facts or similar")
    return PolicyDefaults(
        similarity=threshold,
        structure_changes_fail=structure_changes == "fail",
        text_rule="facts" if text_rule == "facts" else "similar",
    )


def without_options(
    arguments: Sequence[str], options: Sequence[str], flags: Sequence[str] = ()
) -> list[str]:
    """``arguments`` less ``options`` (as ``--opt=value`` or ``--opt value``) and ``flags``."""
    kept: list[str] = []
    skip_value = False
    for argument in arguments:
        if skip_value:
            skip_value = False
        elif argument in options:
            skip_value = True
        elif argument not in flags and not any(argument.startswith(o + "=") for o in options):
            kept.append(argument)
    return kept


def resolve_samples(option: int | None, marker: int | None, ini_value: str) -> int:
    """How many samples a test runs: the command line, else its marker, else the ini key."""
    if option is not None:
        return option
    if marker is not None:
        return marker
    return _positive_int("promptflow_samples", ini_value)


def _positive_int(key: str, value: str) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        number = 0
    if number < 1:
        raise PromptflowError(f"{key} = {value!r} must be a whole number of 1 or more")
    return number


def fraction(key: str, value: str) -> float:
    """An ini key's value that must be a number from 0 to 1."""
    try:
        number = float(value.strip())
    except ValueError:
        number = -1.0
    if not 0.0 <= number <= 1.0:
        raise PromptflowError(f"{key} = {value!r} must be a number from 0 to 1")
    return number


def samples_option(value: str) -> int:
    """``--promptflow-samples=N``, checked as argparse reads it."""
    import argparse

    try:
        return _positive_int("--promptflow-samples", value)
    except PromptflowError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
