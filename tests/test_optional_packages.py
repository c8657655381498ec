"""A package the test extra installs: a missing one skips the test saying what to
install, except in CI, where it fails."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from optional_packages import require

MISSING = "pytest_promptflow_no_such_package"


def test_an_installed_package_is_imported() -> None:
    assert require("json", in_ci=True) is json


def test_a_missing_package_skips_the_test_saying_what_to_install() -> None:
    with pytest.raises(pytest.skip.Exception, match=rf"^{MISSING} is not installed \(.*\); "):
        require(MISSING, in_ci=False)

    with pytest.raises(
        pytest.skip.Exception, match=r"^the-framework is not installed .*\.\[frameworks\]'$"
    ):
        require(MISSING, "the-framework", extra="frameworks", module_level=True, in_ci=False)


def test_a_missing_package_fails_the_test_in_ci() -> None:
    # A skip would leave this test skipped, not failed: both are caught, to tell them apart.
    with pytest.raises((pytest.fail.Exception, pytest.skip.Exception)) as outcome:
        require(MISSING, in_ci=True)

    assert outcome.type is pytest.fail.Exception
    assert re.fullmatch(
        rf"CI runs every test, so it installs every extra: {MISSING} is not installed .*"
        r"install the test extra: python -m pip install -e '\.\[test\]'",
        str(outcome.value),
    )


def test_no_test_imports_an_optional_package_any_other_way() -> None:
    # pytest's importorskip skips in CI too, where nothing may be skipped for want of a
    # package: every optional import goes through require().
    root = Path(__file__).resolve().parents[1]
    found = [
        str(path.relative_to(root))
        for folder in ("tests", "examples")
        for path in sorted((root / folder).rglob("*.py"))
        if re.search(r"importorskip\(", path.read_text(encoding="utf-8"))
    ]
    assert found == []
