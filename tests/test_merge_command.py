"""``python -m pytest_promptflow.report merge``: what it refuses, and that a refusal
writes nothing.

Every refusal exits with status 2 and names the file at fault on stderr; the merged
report is not written, and one already there is left as it was.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from llm_fakes import run_merge_command

from pytest_promptflow.report.render import REPORT_SCHEMA_VERSION

PROJECT = """
import pytest

from pytest_promptflow import step


@step
def double(n: int) -> int:
    return 2 * n


@pytest.mark.promptflow
def test_double():
    assert double(2) == 4
"""


@pytest.fixture(scope="module")
def report_of_a_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The JSON report of a real run, written once for the module."""
    folder = tmp_path_factory.mktemp("run")
    (folder / "test_double.py").write_text(PROJECT)
    environment = {name: value for name, value in os.environ.items() if name != "CI"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--promptflow-report=report.json",
        ],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return folder / "report.json"


@pytest.fixture
def folder(tmp_path: Path, report_of_a_run: Path) -> Path:
    """A folder holding ``good.json``, a report of the current schema."""
    shutil.copy(report_of_a_run, tmp_path / "good.json")
    return tmp_path


def assert_refused(
    folder: Path, reports: list[str], *messages: str, out: str = "merged.md"
) -> subprocess.CompletedProcess[str]:
    """``merge reports --out out`` exits with status 2, says each message, writes nothing."""
    before = {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}

    done = run_merge_command(*reports, "--out", out, cwd=folder)

    assert done.returncode == 2, done.stdout + done.stderr
    for message in messages:
        assert message in done.stderr
    assert done.stdout == ""
    after = {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    assert after == before, "a refused merge writes nothing"
    return done


def test_a_report_of_the_current_schema_merges(folder: Path) -> None:
    done = run_merge_command("good.json", "good.json", "--out", "merged.json", cwd=folder)

    assert done.returncode == 0, done.stderr
    assert "merged 2 report(s) into merged.json" in done.stdout
    merged = json.loads((folder / "merged.json").read_text(encoding="utf-8"))
    assert merged["schema"] == REPORT_SCHEMA_VERSION
    assert merged["steps"]["double"]["calls"] == 2


def test_without_any_report_named_nothing_is_written(folder: Path) -> None:
    done = assert_refused(folder, [])

    # The command line's own check, or the merge's, names what is missing.
    assert re.search(r"required: reports|name at least one JSON report", done.stderr)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("report.md", "# not JSON\n", "merge: report.md is not a JSON report (.json)"),
        ("broken.json", '{"schema": 2, "steps": ', "merge: broken.json cannot be read"),
        ("latin-1.json", b'{"schema": 2, "caf\xe9": 1}', "merge: latin-1.json cannot be read"),
        ("list.json", "[1, 2]", "merge: list.json is not a pytest-promptflow report"),
        ("other.json", '{"schema": 2}', "merge: other.json is not a pytest-promptflow report"),
    ],
    ids=["not-json-suffix", "not-json", "not-utf-8", "a-list", "no-steps"],
)
def test_a_file_that_is_not_a_report_is_refused_naming_it(
    folder: Path, name: str, content: str | bytes, message: str
) -> None:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")

    assert_refused(folder, ["good.json", name], message)


def test_a_missing_file_is_refused_naming_it(folder: Path) -> None:
    assert_refused(folder, ["good.json", "absent.json"], "merge: absent.json cannot be read")


def test_a_directory_is_refused_naming_it(folder: Path) -> None:
    (folder / "shards.json").mkdir()

    assert_refused(folder, ["shards.json", "good.json"], "merge: shards.json cannot be read")


def test_reports_of_another_schema_version_are_refused_naming_each(folder: Path) -> None:
    report = json.loads((folder / "good.json").read_text(encoding="utf-8"))
    (folder / "old.json").write_text(json.dumps(report | {"schema": 1}), encoding="utf-8")

    assert_refused(
        folder,
        ["good.json", "old.json"],
        "merge: cannot join reports of different schema versions",
        f"good.json has schema {REPORT_SCHEMA_VERSION}",
        "old.json has schema 1",
    )


def test_a_refusal_leaves_an_earlier_merged_report_as_it_was(folder: Path) -> None:
    (folder / "merged.html").write_text("<p>the last merge</p>", encoding="utf-8")
    (folder / "other.json").write_text('{"cases": []}', encoding="utf-8")

    assert_refused(
        folder,
        ["good.json", "other.json"],
        "merge: other.json is not a pytest-promptflow report",
        out="merged.html",
    )
