"""pytest-promptflow: test, replay and regression-gate multi-step LLM prompt chains.

The names here are the runtime surface that application code imports. Importing them
never imports pytest.
"""

from __future__ import annotations

from pytest_promptflow import drift
from pytest_promptflow.errors import (
    CaseFileError,
    CassetteError,
    JudgeError,
    PromptError,
    PromptflowError,
    PromptRenderError,
    RecordingMissingError,
    SecretLeakError,
    StepContractError,
)
from pytest_promptflow.prompts import Prompt
from pytest_promptflow.steps import Step, UntaggedRequestWarning, current_step, step
from pytest_promptflow.trace import Run, StepCall, StepContext, active_run, recording_run

__all__ = [
    "CaseFileError",
    "CassetteError",
    "JudgeError",
    "Prompt",
    "PromptError",
    "PromptRenderError",
    "PromptflowError",
    "RecordingMissingError",
    "Run",
    "SecretLeakError",
    "Step",
    "StepCall",
    "StepContext",
    "StepContractError",
    "UntaggedRequestWarning",
    "active_run",
    "current_step",
    "drift",
    "recording_run",
    "step",
]
