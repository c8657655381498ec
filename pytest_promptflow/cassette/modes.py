"""Record modes and the recording options a session runs with."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

IGNORED_BODY_FIELDS = ("user", "metadata", "store", "safety_identifier", "prompt_cache_key")


class RecordMode(str, Enum):
    NONE = "none"
    """Replay only: a request without a recording fails the test."""
    NEW = "new"
    """Replay what is recorded, record what is not, keep everything else."""
    ALL = "all"
    """Record every request the test makes; drop the recordings it no longer makes."""


@dataclass(frozen=True)
class RecordingOptions:
    mode: RecordMode = RecordMode.NONE
    accept: bool = False
    """Take this run's step outputs as golden, and drop the recordings it did not use."""
    ignored_body_fields: tuple[str, ...] = IGNORED_BODY_FIELDS
    secret_patterns: tuple[str, ...] = ()
