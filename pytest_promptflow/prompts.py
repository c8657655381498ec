"""Prompt templates: loading, strict rendering and content-hash versions."""

from __future__ import annotations

import hashlib
import sys
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

from pytest_promptflow.errors import PromptError, PromptRenderError

_ENVIRONMENT = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)

VERSION_LENGTH = 12


def prompt_version(source: str) -> str:
    """A short hash of the template source, the same whatever its line endings."""
    normalized = source.replace("\r\n", "\n").replace("\r", "\n")
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()[:VERSION_LENGTH]


class Prompt:
    """A jinja2 template that refuses undefined variables and knows its version.

    ``version`` changes with any edit of the source, so a recording made with one
    prompt is never replayed for another.
    """

    def __init__(self, source: str, *, name: str, path: Path | None = None) -> None:
        self.source = source
        self.name = name
        self.path = path
        self.version = prompt_version(source)
        try:
            self._template = _ENVIRONMENT.from_string(source)
        except jinja2.TemplateSyntaxError as error:
            raise PromptError(
                f"prompt {self.label}: syntax error at line {error.lineno}: {error.message}"
            ) from None

    @classmethod
    def load(cls, path: str | Path, *, name: str | None = None) -> Prompt:
        """Load a template file; a relative path is taken from the caller's directory."""
        resolved = Path(path)
        if not resolved.is_absolute():
            resolved = _caller_directory() / resolved
        try:
            source = resolved.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PromptError(f"prompt file {resolved} does not exist") from None
        except (OSError, UnicodeDecodeError) as error:
            raise PromptError(f"prompt file {resolved} cannot be read: {error}") from None
        return cls(source, name=name or resolved.stem, path=resolved)

    @classmethod
    def from_string(cls, source: str, *, name: str) -> Prompt:
        return cls(source, name=name)

    @property
    def label(self) -> str:
        """How messages refer to this prompt: its file when it has one."""
        return str(self.path) if self.path is not None else repr(self.name)

    @cached_property
    def variables(self) -> frozenset[str]:
        """The top-level variables the template reads."""
        return frozenset(jinja2.meta.find_undeclared_variables(_ENVIRONMENT.parse(self.source)))

    def render(self, **variables: Any) -> str:
        try:
            return self._template.render(**variables)
        except jinja2.UndefinedError as error:
            missing = sorted(self.variables - variables.keys())
            detail = f"undefined variable {', '.join(missing)}" if missing else str(error.message)
            raise PromptRenderError(
                self.label,
                f"prompt {self.label}: {detail}; pass it to render()",
                variable=missing[0] if missing else None,
            ) from None

    def __repr__(self) -> str:
        return f"Prompt(name={self.name!r}, version={self.version!r})"


def _caller_directory() -> Path:
    # Two frames up: the caller of Prompt.load, not this module.
    frame = sys._getframe(2)
    module_file = frame.f_globals.get("__file__")
    return Path(module_file).resolve().parent if module_file else Path.cwd()
