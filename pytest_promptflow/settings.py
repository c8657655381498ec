"""Configuration objects built from markers, ini keys and options, checked with pydantic."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pydantic

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
    where: str,
) -> OptionsT:
    """Build a marker's options; a typo or wrong type is an error naming the test."""
    names = list(options.model_fields)
    if len(args) > len(names):
        raise PromptflowError(f"{where}: too many arguments to the marker: {args!r}")
    try:
        return options.model_validate({**dict(zip(names, args, strict=False)), **kwargs})
    except pydantic.ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in detail['loc'])}: {detail['msg']}"
            for detail in error.errors(include_url=False)
        )
        raise PromptflowError(f"{where}: bad marker arguments: {problems}") from None
