"""The ``promptflow`` section of the terminal summary: calls and broken contracts per step."""

from __future__ import annotations

import pytest

CASES = "\n".join(
    [
        '{"id": "login", "text": "cannot log in", "level": 2}',
        '{"id": "export", "text": "export is slow", "level": 3}',
        '{"id": "outage", "text": "vault is down", "level": 9}',
        '{"id": "billing", "text": "charged twice", "level": 4}',
    ]
)

CHAIN_TEST = """
import pytest
from pydantic import BaseModel, Field
from pytest_promptflow import step


class Ticket(BaseModel):
    text: str
    level: int


class Urgency(BaseModel):
    level: int = Field(ge=1, le=5)


@step
def extract(ticket: Ticket) -> str:
    return ticket.text


@step
def classify(text: str, level: int) -> Urgency:
    return {"level": level}


@pytest.mark.promptflow_cases("tickets.jsonl", model=Ticket)
def test_chain(chain_case):
    text = extract(chain_case.input)
    classify(text, chain_case.input.level)
"""


# The generated projects do not use hypothesis, whose plugin imports it at the end of
# every session: well over a second in each of the three processes of an xdist run.
WITHOUT_HYPOTHESIS = ("-p", "no:hypothesispytest")


def make_project(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    (pytester.path / "fixtures").mkdir()
    (pytester.path / "fixtures" / "tickets.jsonl").write_text(CASES + "\n")
    pytester.makepyfile(test_chain=CHAIN_TEST)


def assert_summary(result: pytest.RunResult) -> None:
    result.stdout.re_match_lines(
        [
            r"^=+ promptflow =+$",
            r"^step +calls +compared +tolerated +drift +contract broken$",
            r"^classify +4 +0 +0 +0 +1$",
            r"^extract +4 +0 +0 +0 +0$",
        ]
    )


def test_summary_lists_calls_and_broken_contracts_per_step(pytester: pytest.Pytester) -> None:
    make_project(pytester)

    result = pytester.runpytest()

    result.assert_outcomes(passed=3, failed=1)
    assert_summary(result)


def test_summary_merges_the_counts_of_xdist_workers(pytester: pytest.Pytester) -> None:
    make_project(pytester)

    result = pytester.runpytest_subprocess(*WITHOUT_HYPOTHESIS, "-p", "xdist", "-n", "2", "-v")

    result.assert_outcomes(passed=3, failed=1)
    # Both workers ran cases, so the counts below come from both.
    result.stdout.fnmatch_lines(["*[[]gw0[]]*"])
    result.stdout.fnmatch_lines(["*[[]gw1[]]*"])
    assert_summary(result)


def test_summary_adds_up_calls_across_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_counts="""
        import pytest
        from pytest_promptflow import step

        @step
        def double(n: int) -> int:
            if n < 0:
                raise ValueError("negative")
            return n * 2

        @step
        def halve(n: int) -> int:
            return n // 2

        def test_first(chain_run):
            halve(double(1))

        @pytest.mark.promptflow
        def test_second():
            double(2)
            with pytest.raises(ValueError):
                double(-1)

        def test_unrecorded():
            double(3)
            halve(3)
        """
    )

    result = pytester.runpytest()

    result.assert_outcomes(passed=3)
    # An ordinary exception is a call, not a broken contract; calls made in a test
    # that is not recorded are not counted.
    result.stdout.re_match_lines([r"^double +3 +0 +0 +0 +0$", r"^halve +1 +0 +0 +0 +0$"])


def test_no_section_when_no_step_ran(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
        from pytest_promptflow import step

        @step
        def double(n: int) -> int:
            return n * 2

        def test_plain():
            assert 1 + 1 == 2

        def test_recorded_but_no_step(chain_run):
            assert chain_run.calls == []

        def test_step_outside_a_recorded_test():
            assert double(2) == 4
        """
    )

    result = pytester.runpytest()

    result.assert_outcomes(passed=3)
    result.stdout.no_fnmatch_line("*= promptflow =*")
    result.stdout.no_fnmatch_line("*contract broken*")
