"""The exceptions pytest-promptflow raises; every message names the file, step or case."""

from __future__ import annotations

from collections.abc import Sequence


class PromptflowError(Exception):
    """Base class of every error pytest-promptflow raises on purpose."""


class PromptError(PromptflowError):
    """A prompt template could not be loaded or parsed."""


class PromptRenderError(PromptError):
    """Rendering a prompt failed, most often on an undefined variable."""

    def __init__(self, prompt: str, message: str, variable: str | None = None) -> None:
        self.prompt = prompt
        self.variable = variable
        super().__init__(message)


class StepContractError(PromptflowError):
    """A step call broke its contract at a boundary.

    ``boundary`` is ``"input"``, ``"output"`` or ``"check <name>"``; ``problems`` holds
    one readable line per violation.
    """

    def __init__(
        self,
        step: str,
        boundary: str,
        problems: Sequence[str],
        *,
        case: str | None = None,
    ) -> None:
        self.step = step
        self.boundary = boundary
        self.problems = list(problems)
        self.case = case
        where = f"step {step!r}" + (f" (case {case})" if case else "")
        lines = [f"{where} broke its contract at its {boundary}:"]
        lines += [f"  - {problem}" for problem in self.problems]
        super().__init__("\n".join(lines))


class CaseFileError(PromptflowError):
    """A case file is malformed, has a duplicate id or holds a case that fails validation."""


class CassetteError(PromptflowError):
    """A recorded run file cannot be used: unreadable, malformed or of an unknown format."""


class RecordingMissingError(PromptflowError):
    """In replay mode, a request had no recording."""


class SecretLeakError(PromptflowError):
    """A recorded run still looked like it held a secret after scrubbing; nothing was written."""


class JudgeError(PromptflowError):
    """A judged field could not be judged: no judge set, or a malformed verdict."""
