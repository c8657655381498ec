"""The runtime imports without pytest; the plugin is registered through its entry point."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import entry_points

import pytest

import pytest_promptflow.plugin


def run_python(source: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_importing_the_runtime_does_not_import_pytest() -> None:
    completed = run_python(
        """
        import sys

        import pytest_promptflow

        assert "pytest" not in sys.modules, "pytest was imported"
        assert "_pytest" not in sys.modules, "_pytest was imported"
        """
    )

    assert completed.returncode == 0, completed.stderr


def test_importing_the_runtime_or_the_plugin_imports_no_rapidfuzz_or_deepdiff() -> None:
    # Both are slow to import and only needed once a step output differs from its
    # golden value; every pytest session loads the plugin, most never compare text.
    completed = run_python(
        """
        import sys

        import pytest_promptflow
        from pytest_promptflow import drift
        import pytest_promptflow.plugin

        assert drift.similar(0.8).threshold == 0.8
        slow = ("rapidfuzz", "deepdiff")
        heavy = sorted(name for name in sys.modules if name.split(".")[0] in slow)
        assert heavy == [], heavy
        """
    )

    assert completed.returncode == 0, completed.stderr


def test_using_the_runtime_does_not_import_pytest() -> None:
    # Application code defines prompts and steps and calls them, in and out of a run.
    completed = run_python(
        """
        import sys

        from pydantic import BaseModel
        from pytest_promptflow import Prompt, Run, step, recording_run

        class Problem(BaseModel):
            product: str

        PROMPT = Prompt.from_string("Classify {{ problem.product }}", name="classify")

        @step(prompt=PROMPT, checks=[lambda output: len(output) > 0])
        def classify(problem: Problem) -> str:
            return PROMPT.render(problem=problem)

        assert classify({"product": "Vault"}) == "Classify Vault"
        with recording_run(Run()) as run:
            classify({"product": "Vault"})
        assert run.calls[0].inputs == {"problem": {"product": "Vault"}}
        assert [name for name in sys.modules if name.split(".")[0] in ("pytest", "_pytest")] == []
        """
    )

    assert completed.returncode == 0, completed.stderr


def test_plugin_is_declared_as_a_pytest11_entry_point() -> None:
    (entry_point,) = entry_points(group="pytest11", name="promptflow")

    assert entry_point.value == "pytest_promptflow.plugin"
    assert entry_point.load() is pytest_promptflow.plugin


def test_plugin_is_loaded_by_its_entry_point(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfigure()

    assert config.pluginmanager.get_plugin("promptflow") is pytest_promptflow.plugin


def test_markers_are_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")

    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["@pytest.mark.promptflow_cases(path, model=None): *"])
    result.stdout.fnmatch_lines(["@pytest.mark.promptflow: *"])


def test_markers_are_gone_when_the_plugin_is_disabled(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("-p", "no:promptflow", "--markers")

    assert result.ret == pytest.ExitCode.OK
    result.stdout.no_fnmatch_line("*promptflow_cases*")


def test_help_lists_the_ini_keys(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")

    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*promptflow_cases_dir (string):*"])


def test_markers_are_accepted_under_strict_markers(pytester: pytest.Pytester) -> None:
    (pytester.path / "fixtures").mkdir()
    (pytester.path / "fixtures" / "cases.jsonl").write_text('{"id": "a"}\n')
    pytester.makepyfile(
        test_strict="""
        import pytest

        @pytest.mark.promptflow
        def test_marked():
            pass

        @pytest.mark.promptflow_cases("cases.jsonl")
        def test_cases(chain_case):
            assert chain_case.id == "a"
        """
    )

    result = pytester.runpytest("--strict-markers")

    result.assert_outcomes(passed=2)


def test_a_project_runs_with_the_plugin_from_a_fresh_process(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_chain="""
        from pytest_promptflow import step

        @step
        def double(n: int) -> int:
            return n * 2

        def test_double(chain_run):
            assert double("21") == 42
            assert chain_run.calls[0].output == 42
        """
    )

    result = pytester.runpytest_subprocess("-p", "no:hypothesispytest")

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*promptflow-*", "*= promptflow =*"])


HOOKS_PROBE = """
def pytest_collection_finish(session):
    kept = session.config.pluginmanager.has_plugin("promptflow-test-hooks")
    print(f"per-test hooks kept: {kept}")
"""


def test_a_session_without_promptflow_tests_runs_no_per_test_hook(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(HOOKS_PROBE)
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")

    result = pytester.runpytest("-s")

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["per-test hooks kept: False"])


def test_a_session_with_a_promptflow_test_keeps_the_per_test_hooks(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(HOOKS_PROBE)
    pytester.makepyfile(
        test_mixed="""
        from pytest_promptflow import step

        @step
        def double(n: int) -> int:
            return n * 2

        def test_plain():
            assert True

        def test_chain(chain_run):
            assert double(21) == 42
            assert chain_run.calls[0].output == 42
        """
    )

    result = pytester.runpytest("-s")

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["per-test hooks kept: True"])
