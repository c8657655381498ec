"""Packages some tests need that the ``test`` extra installs, imported by one rule.

Without such a package the test that needs it is skipped, saying what to install; in CI
(the ``CI`` variable set) it fails instead, since CI installs every extra and a test that
skips there silently tests nothing.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

from pytest_promptflow.settings import running_in_ci

IN_CI = running_in_ci(os.environ)
"""Read as the tests are first imported: the fixtures of generated projects drop ``CI``
for the runs they make, which must not turn a missing package into a skip."""


def require(
    module: str,
    distribution: str | None = None,
    *,
    extra: str = "test",
    module_level: bool = False,
    in_ci: bool = IN_CI,
) -> ModuleType:
    """``module`` imported; else the test (or with ``module_level``, the whole test
    module) skipped naming the distribution and the extra, or failed in CI."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        reason = (
            f"{distribution or module} is not installed ({error}); install the {extra} "
            f"extra: python -m pip install -e '.[{extra}]'"
        )
        if in_ci:
            pytest.fail(f"CI runs every test, so it installs every extra: {reason}", pytrace=False)
        pytest.skip(reason, allow_module_level=module_level)
