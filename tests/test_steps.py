"""@step: boundary validation, property checks, the current-step context, recording."""

from __future__ import annotations

import asyncio

import pytest
from llm_fakes import Project
from pydantic import BaseModel, Field

from pytest_promptflow import (
    Run,
    Step,
    StepContractError,
    active_run,
    current_step,
    recording_run,
    step,
)

# The models and steps the generated projects share: a ticket is extracted into a
# problem, and a problem classified into an urgency.
CHAIN = '''
from __future__ import annotations

from pydantic import BaseModel, Field

from pytest_promptflow import Prompt, step


class Problem(BaseModel):
    product: str
    symptoms: list[str]


class Urgency(BaseModel):
    level: int = Field(ge=1, le=5)
    reason: str


CLASSIFY = Prompt.from_string(
    "Classify {{ problem.product }}: {{ problem.symptoms }}",
    name="classify",
)
SYSTEM = Prompt.from_string("You are a support engineer.", name="system")


def outages_are_urgent(problem: Problem, output: Urgency) -> bool:
    """An outage must be level 4 or more."""
    return "down" not in problem.symptoms or output.level >= 4


def reason_names_the_product(problem: Problem, output: Urgency) -> None:
    assert problem.product in output.reason, f"reason {output.reason!r} omits {problem.product}"


@step(prompt=[SYSTEM, CLASSIFY], checks=[outages_are_urgent, reason_names_the_product])
def classify(problem: Problem, level: int) -> Urgency:
    return {"level": level, "reason": f"{problem.product}: {len(problem.symptoms)} symptoms"}


@step
def extract(ticket: str) -> Problem:
    product, _, symptoms = ticket.partition(":")
    return Problem(product=product.strip(), symptoms=symptoms.split())


@step(name="triage.pipeline")
def triage(ticket: str, level: int) -> Urgency:
    return classify(extract(ticket), level)
'''


class Problem(BaseModel):
    product: str


class Urgency(BaseModel):
    level: int = Field(ge=1, le=5)


def make_project(pytester: pytest.Pytester, test_source: str) -> None:
    pytester.makepyfile(chain=CHAIN, test_chain=test_source)


# --- contract violations, as the user sees them ------------------------------


def test_input_violation_names_step_boundary_field_and_error(pytester: pytest.Pytester) -> None:
    make_project(
        pytester,
        """
        from chain import classify

        def test_classify():
            classify({"product": "Vault", "symptoms": "down"}, level="high")
        """,
    )

    result = pytester.runpytest()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E *StepContractError: step 'classify' broke its contract at its input:",
            "E *- problem.symptoms: Input should be a valid list (got 'down')",
            "E *- level: Input should be a valid integer, unable to parse string as an integer"
            " (got 'high')",
        ]
    )


def test_output_violation_names_the_output_field(pytester: pytest.Pytester) -> None:
    make_project(
        pytester,
        """
        from chain import classify

        def test_classify():
            classify({"product": "Vault", "symptoms": ["down"]}, level=9)
        """,
    )

    result = pytester.runpytest()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E *StepContractError: step 'classify' broke its contract at its output:",
            "E *- output.level: Input should be less than or equal to 5 (got 9)",
        ]
    )


def test_check_returning_false_breaks_the_contract(pytester: pytest.Pytester) -> None:
    make_project(
        pytester,
        """
        from chain import classify

        def test_classify():
            classify({"product": "Vault", "symptoms": ["down"]}, level=2)
        """,
    )

    result = pytester.runpytest()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E *StepContractError: step 'classify' broke its contract at its"
            " check outages_are_urgent:",
            "E *- An outage must be level 4 or more*: returned False",
        ]
    )


def test_check_raising_assertion_error_breaks_the_contract_with_its_message(
    pytester: pytest.Pytester,
) -> None:
    # The checks live in application code, which pytest does not rewrite.
    pytester.makepyfile(
        checks='''
        def ends_with_a_question(output: str) -> None:
            assert output.endswith("?"), f"{output!r} asks nothing"

        def is_short(output: str) -> None:
            """A reply fits on one screen."""
            assert len(output) < 10

        def is_not_empty(output: str) -> None:
            assert output
        ''',
        test_chain="""
        from pytest_promptflow import step
        from checks import ends_with_a_question, is_not_empty, is_short

        @step(checks=[ends_with_a_question])
        def ask(topic: str) -> str:
            return f"Tell me about {topic}."

        @step(checks=[is_short])
        def reply(topic: str) -> str:
            return topic * 20

        @step(checks=[is_not_empty])
        def nothing(topic: str) -> str:
            return ""

        def test_ask():
            ask("vaults")

        def test_reply():
            reply("vaults")

        def test_nothing():
            nothing("vaults")
        """,
    )

    result = pytester.runpytest()

    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "E *StepContractError: step 'ask' broke its contract at its check"
            " ends_with_a_question:",
            "E *- AssertionError: 'Tell me about vaults.' asks nothing",
        ]
    )
    # An assertion without a message is described by the check's docstring...
    result.stdout.fnmatch_lines(
        [
            "E *StepContractError: step 'reply' broke its contract at its check is_short:",
            "E *- AssertionError: A reply fits on one screen*",
        ]
    )
    # ...or, without one, by the check's name.
    result.stdout.fnmatch_lines(
        [
            "E *StepContractError: step 'nothing' broke its contract at its check is_not_empty:",
            "E *- AssertionError: is_not_empty",
        ]
    )


def test_passing_checks_let_the_validated_output_through(pytester: pytest.Pytester) -> None:
    make_project(
        pytester,
        """
        from chain import Urgency, classify

        def test_classify():
            urgency = classify({"product": "Vault", "symptoms": ["down"]}, level="5")
            assert urgency == Urgency(level=5, reason="Vault: 1 symptoms")
        """,
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_contract_error_carries_step_boundary_and_problems() -> None:
    @step
    def count(words: list[str]) -> int:
        return len(words)

    with pytest.raises(StepContractError) as info:
        count(words=[1, "two"])

    assert info.value.step == "count"
    assert info.value.boundary == "input"
    assert info.value.problems == ["words.0: Input should be a valid string (got 1)"]
    assert info.value.case is None


# --- checks ------------------------------------------------------------------


def test_check_asking_for_an_unknown_parameter_fails_at_decoration() -> None:
    def cites_the_ticket(ticket: str, output: str) -> bool:
        return ticket in output

    with pytest.raises(TypeError) as info:

        @step(checks=[cites_the_ticket])
        def summarize(text: str) -> str:
            return text

    message = str(info.value)
    assert "check cites_the_ticket of step 'summarize' asks for ticket" in message
    assert "the step only has output, text" in message


def test_check_asking_for_an_unknown_parameter_fails_the_import(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_chain="""
        from pytest_promptflow import step

        def cites_the_ticket(ticket: str, output: str) -> bool:
            return ticket in output

        @step(checks=[cites_the_ticket])
        def summarize(text: str) -> str:
            return text

        def test_never_runs():
            pass
        """
    )

    result = pytester.runpytest()

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["E *TypeError: check cites_the_ticket of step 'summarize' asks for ticket, *"]
    )


def test_checks_receive_inputs_by_name_and_the_validated_output() -> None:
    seen: dict[str, object] = {}

    def only_output(output: Urgency) -> bool:
        seen["only_output"] = output
        return True

    def output_then_input(output: Urgency, problem: Problem) -> bool:
        seen["output_then_input"] = (output, problem)
        return True

    def everything(**values: object) -> bool:
        seen["everything"] = values
        return True

    client = object()

    @step(checks=[only_output, output_then_input, everything])
    def classify(problem: Problem, client: object, hint: str = "none") -> Urgency:
        return {"level": "3"}  # type: ignore[return-value]

    result = classify({"product": "Vault"}, client)

    assert result == Urgency(level=3)
    assert seen["only_output"] == Urgency(level=3)
    output, problem = seen["output_then_input"]  # type: ignore[misc]
    assert isinstance(output, Urgency)
    assert isinstance(problem, Problem)
    assert problem.product == "Vault"
    assert seen["everything"] == {
        "problem": Problem(product="Vault"),
        "client": client,
        "hint": "none",
        "output": Urgency(level=3),
    }


def test_checks_run_in_order_and_stop_at_the_first_broken_one() -> None:
    ran: list[str] = []

    def first(output: int) -> bool:
        ran.append("first")
        return output > 10

    def second(output: int) -> bool:
        ran.append("second")
        return True

    @step(checks=[first, second])
    def double(n: int) -> int:
        return n * 2

    assert double(6) == 12
    assert ran == ["first", "second"]
    ran.clear()
    with pytest.raises(StepContractError, match="check first"):
        double(1)
    assert ran == ["first"]


def test_a_check_returning_none_or_a_truthy_value_passes() -> None:
    @step(checks=[lambda output: None, lambda output: "yes"])
    def echo(text: str) -> str:
        return text

    assert echo("hello") == "hello"


# --- async steps ---------------------------------------------------------------


def test_async_steps_are_checked_and_recorded(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_chain="""
        import asyncio

        import pytest
        from pytest_promptflow import StepContractError, current_step, step

        @step
        async def fetch(topic: str) -> str:
            await asyncio.sleep(0)
            assert current_step().step == "fetch"
            return topic.upper()

        @step
        async def score(text: str) -> int:
            await asyncio.sleep(0)
            return len(text) if text != "BAD" else -1

        def at_least_one(output: int) -> bool:
            return output >= 1

        checked_score = step(name="checked_score", checks=[at_least_one])(score.function)

        @step
        async def pipeline(topic: str) -> int:
            text = await fetch(topic)
            first, second = await asyncio.gather(score(text), score(text + "!"))
            return first + second

        def test_pipeline(chain_run):
            assert asyncio.run(pipeline("vault")) == 11
            assert [(c.index, c.step, c.parent) for c in chain_run.calls] == [
                (0, "pipeline", None),
                (1, "fetch", 0),
                (2, "score", 0),
                (3, "score", 0),
            ]
            assert chain_run.calls[0].inputs == {"topic": "vault"}
            assert chain_run.calls[0].output == 11
            assert chain_run.calls[1].output == "VAULT"
            assert current_step() is None

        def test_async_contract(chain_run):
            with pytest.raises(StepContractError, match="check at_least_one"):
                asyncio.run(checked_score("BAD"))
            with pytest.raises(StepContractError, match="input"):
                asyncio.run(fetch(["not", "text"]))
            assert [c.contract_broken for c in chain_run.calls] == [True, True]
        """
    )

    pytester.runpytest().assert_outcomes(passed=2)


def test_async_step_is_a_coroutine_function_call() -> None:
    @step
    async def shout(text: str) -> str:
        return text.upper()

    assert shout.is_async
    with recording_run(Run()) as run:
        assert asyncio.run(shout("hi")) == "HI"
    assert [call.output for call in run.calls] == ["HI"]


# --- nested steps and the current-step context -------------------------------


def test_nested_steps_record_their_parent(pytester: pytest.Pytester) -> None:
    make_project(
        pytester,
        """
        from chain import CLASSIFY, SYSTEM

        def test_triage(chain_run):
            from chain import triage

            urgency = triage("Vault: down slow", level=4)

            assert urgency.level == 4
            calls = [(c.index, c.step, c.parent) for c in chain_run.calls]
            assert calls == [
                (0, "triage.pipeline", None),
                (1, "extract", 0),
                (2, "classify", 0),
            ]
            extract, classify = chain_run.calls[1:]
            assert extract.output == {"product": "Vault", "symptoms": ["down", "slow"]}
            assert classify.inputs["problem"] == extract.output
            assert classify.prompts == {"system": SYSTEM.version, "classify": CLASSIFY.version}
            assert chain_run.calls_of("classify") == [classify]
        """,
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_inner_step_sees_the_outer_step_as_its_parent(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_chain="""
        from pytest_promptflow import Prompt, current_step, step

        PROMPT = Prompt.from_string("{{ x }}", name="inner_prompt")
        seen = []

        @step(prompt=PROMPT)
        def inner(x: int) -> int:
            seen.append(current_step())
            return x + 1

        @step
        def outer(x: int) -> int:
            seen.append(current_step())
            first = inner(x)
            seen.append(current_step())
            return inner(first)

        def test_context(chain_run):
            assert current_step() is None
            assert outer(1) == 3
            assert current_step() is None

            outer_context, first_inner, back_in_outer, second_inner = seen
            assert outer_context.step == "outer"
            assert outer_context.parent is None
            assert outer_context.call_index == 0
            assert first_inner.step == "inner"
            assert first_inner.parent is outer_context
            assert first_inner.call_index == 1
            assert dict(first_inner.prompts) == {"inner_prompt": PROMPT.version}
            assert back_in_outer is outer_context
            assert second_inner.parent is outer_context
            assert second_inner.call_index == 2
            assert [c.parent for c in chain_run.calls] == [None, 0, 0]
        """
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_current_step_is_reset_when_the_step_raises() -> None:
    @step
    def explode(text: str) -> str:
        assert current_step() is not None
        raise RuntimeError(text)

    with pytest.raises(RuntimeError, match="boom"):
        explode("boom")
    assert current_step() is None


def test_variadic_parameters_are_validated_item_by_item() -> None:
    # ``*parts: str`` annotates each positional argument, not the tuple of them.
    @step
    def join(*parts: str) -> str:
        return "-".join(parts)

    @step
    def total(**counts: int) -> int:
        return sum(counts.values())

    with recording_run(Run()) as run:
        assert join("login", "fails") == "login-fails"
        assert total(errors=2, warnings=3) == 5
        with pytest.raises(StepContractError, match="parts"):
            join("login", 401)  # type: ignore[arg-type]

    assert [call.contract_broken for call in run.calls] == [False, False, True]


# --- what is recorded ----------------------------------------------------------


def test_non_data_parameters_are_passed_through_and_not_recorded(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_chain="""
        from __future__ import annotations

        from collections.abc import Callable

        from pydantic import BaseModel
        from pytest_promptflow import step

        class FakeClient:
            def complete(self, text: str) -> str:
                return text[::-1]

        class Problem(BaseModel):
            product: str

        received = {}

        @step
        def classify(
            problem: Problem,
            client: FakeClient,
            render: Callable[[str], str],
            tag,
            retries: int = 2,
        ) -> str:
            received.update(client=client, render=render, tag=tag)
            return render(client.complete(problem.product))

        def test_classify(chain_run):
            client = FakeClient()
            tag = object()
            assert classify({"product": "Vault"}, client, str.upper, tag) == "TLUAV"
            assert received["client"] is client
            assert received["render"] is str.upper
            assert received["tag"] is tag
            (call,) = chain_run.calls
            assert call.inputs == {"problem": {"product": "Vault"}, "retries": 2}
            assert call.output == "TLUAV"
        """
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_parameter_annotated_object_is_not_recorded() -> None:
    # ``client: object`` is how code that accepts any SDK client is often typed. It
    # has no JSON form, so like ``Any`` it is not data: it must not be recorded,
    # where its repr (with a memory address) would differ on every run.
    @step
    def classify(text: str, client: object) -> str:
        return text

    with recording_run(Run()) as run:
        classify("login fails", object())

    assert run.calls[0].inputs == {"text": "login fails"}


def test_data_inputs_are_coerced_and_recorded_in_json_form(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_chain="""
        import datetime
        from dataclasses import dataclass
        from typing import Literal

        from pydantic import BaseModel
        from pytest_promptflow import step

        class Problem(BaseModel):
            product: str
            opened: datetime.date

        @dataclass
        class Window:
            days: int

        @step
        def classify(
            problem: Problem, window: Window, tone: Literal["plain", "warm"], ids: set[int]
        ) -> Problem:
            assert isinstance(problem, Problem)
            assert isinstance(window, Window)
            return problem

        def test_classify(chain_run):
            result = classify(
                {"product": "Vault", "opened": "2024-05-01"}, {"days": "7"}, "warm", [3]
            )
            assert result.opened == datetime.date(2024, 5, 1)
            (call,) = chain_run.calls
            assert call.inputs == {
                "problem": {"product": "Vault", "opened": "2024-05-01"},
                "window": {"days": 7},
                "tone": "warm",
                "ids": [3],
            }
            assert call.output == {"product": "Vault", "opened": "2024-05-01"}
            assert call.prompts == {}
            assert call.error is None
            assert not call.contract_broken
            assert call.duration_s >= 0
        """
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_prompt_versions_are_recorded_with_each_call(pytester: pytest.Pytester) -> None:
    pytester.mkdir("prompts")
    (pytester.path / "prompts" / "classify.j2").write_text("Classify {{ text }}\n")
    pytester.makepyfile(
        test_chain="""
        from pytest_promptflow import Prompt, step

        CLASSIFY = Prompt.load("prompts/classify.j2")
        SYSTEM = Prompt.from_string("Be brief.", name="system")

        @step(prompt=CLASSIFY)
        def classify(text: str) -> str:
            return CLASSIFY.render(text=text)

        @step(prompt=[SYSTEM, CLASSIFY])
        def both(text: str) -> str:
            return text

        def test_versions(chain_run):
            classify("login")
            both("login")
            assert chain_run.calls[0].prompts == {"classify": CLASSIFY.version}
            assert chain_run.calls[1].prompts == {
                "system": SYSTEM.version,
                "classify": CLASSIFY.version,
            }
            assert len(CLASSIFY.version) == 12
        """
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_errors_are_recorded_in_the_run(pytester: pytest.Pytester) -> None:
    make_project(
        pytester,
        """
        import pytest
        from pytest_promptflow import StepContractError, step
        from chain import classify

        @step
        def flaky(text: str) -> str:
            raise ConnectionError("the model did not answer")

        def test_errors(chain_run):
            with pytest.raises(ConnectionError):
                flaky("hello")
            with pytest.raises(StepContractError):
                classify({"product": "Vault"}, level=3)
            with pytest.raises(StepContractError):
                classify({"product": "Vault", "symptoms": []}, level=7)
            with pytest.raises(StepContractError):
                classify({"product": "Vault", "symptoms": ["down"]}, level=1)

            failed, bad_input, bad_output, bad_check = chain_run.calls
            assert failed.error == "ConnectionError: the model did not answer"
            assert not failed.contract_broken
            assert failed.output is None

            assert bad_input.contract_broken
            assert bad_input.error.startswith(
                "step 'classify' broke its contract at its input:"
            )
            assert "problem.symptoms: Field required" in bad_input.error

            assert bad_output.contract_broken
            assert "at its output" in bad_output.error
            # The invalid output is kept, so a report can show what was returned.
            assert bad_output.output == {"level": 7, "reason": "Vault: 0 symptoms"}

            assert bad_check.contract_broken
            assert "at its check outages_are_urgent" in bad_check.error
            assert bad_check.output == {"level": 1, "reason": "Vault: 1 symptoms"}
        """,
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_contract_broken_in_an_inner_step_is_recorded_on_the_inner_call() -> None:
    @step
    def inner(n: int) -> int:
        return n

    @step
    def outer(n: int) -> int:
        return inner(str(n) + "x")  # type: ignore[arg-type]

    with recording_run(Run()) as run, pytest.raises(StepContractError, match="'inner'"):
        outer(1)

    outer_call, inner_call = run.calls
    assert inner_call.contract_broken
    assert inner_call.parent == 0
    assert not outer_call.contract_broken
    assert outer_call.error is not None
    assert outer_call.error.startswith("StepContractError: step 'inner'")


# --- names, methods, no run --------------------------------------------------


def test_step_name_defaults_to_the_function_name_and_can_be_overridden(
    pytester: pytest.Pytester,
) -> None:
    make_project(
        pytester,
        """
        from chain import extract, triage

        def test_names(chain_run):
            assert extract.name == "extract"
            assert triage.name == "triage.pipeline"
            assert triage.__name__ == "triage"
            assert repr(triage) == "<step 'triage.pipeline'>"
            triage("Vault: slow", level=9)
        """,
    )

    result = pytester.runpytest()

    result.assert_outcomes(failed=1)
    # The inner classify breaks its contract; the error names that step.
    result.stdout.fnmatch_lines(["E *StepContractError: step 'classify' broke its contract*"])


def test_step_keeps_the_wrapped_function_metadata() -> None:
    def summarize(text: str) -> str:
        """Summarize a ticket."""
        return text

    stepped = step(summarize)

    assert isinstance(stepped, Step)
    assert stepped.__name__ == "summarize"
    assert stepped.__doc__ == "Summarize a ticket."
    assert stepped.__wrapped__ is summarize
    assert stepped.function is summarize


def test_steps_can_be_methods(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_chain="""
        import pytest
        from pytest_promptflow import StepContractError, step

        def polite(output: str) -> bool:
            return output.startswith("Dear")

        class Drafter:
            def __init__(self, greeting):
                self.greeting = greeting

            @step(checks=[polite])
            def draft(self, name: str, length: int) -> str:
                return f"{self.greeting} {name}" + "." * length

        def test_method(chain_run):
            drafter = Drafter("Dear")
            assert drafter.draft("Ada", "2") == "Dear Ada.."
            assert Drafter.draft.name == "draft"
            with pytest.raises(StepContractError, match="check polite"):
                Drafter("Hi").draft("Ada", 1)
            with pytest.raises(StepContractError, match="length"):
                drafter.draft("Ada", "long")
            first = chain_run.calls[0]
            assert first.step == "draft"
            assert first.inputs == {"name": "Ada", "length": 2}
            assert first.output == "Dear Ada.."
            assert [c.contract_broken for c in chain_run.calls] == [False, True, True]
        """
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_without_an_active_run_steps_work_and_record_nothing() -> None:
    @step(checks=[lambda output: output.level < 5])
    def classify(text: str) -> Urgency:
        return {"level": len(text)}  # type: ignore[return-value]

    assert active_run() is None
    assert classify("abc") == Urgency(level=3)
    with pytest.raises(StepContractError, match="check <lambda>") as info:
        classify("abcde")
    assert info.value.case is None
    with pytest.raises(StepContractError, match=r"output\.level"):
        classify("abcdefg")
    assert active_run() is None
    assert current_step() is None


def test_a_test_without_the_plugin_fixtures_or_markers_records_nothing(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_chain="""
        import pytest
        from pytest_promptflow import active_run, current_step, step

        indexes = []

        @step
        def double(n: int) -> int:
            indexes.append(current_step().call_index)
            return n * 2

        def test_plain():
            assert active_run() is None
            assert double("2") == 4
            assert indexes == [None]

        def test_recorded(chain_run):
            assert active_run() is chain_run
            double(2)
            assert indexes == [None, 0]
            assert len(chain_run.calls) == 1

        @pytest.mark.promptflow
        def test_marked():
            run = active_run()
            double(2)
            assert [c.step for c in run.calls] == ["double"]
        """
    )

    pytester.runpytest().assert_outcomes(passed=3)


def test_the_run_ends_with_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_chain="""
        from pytest_promptflow import active_run, step

        runs = []

        @step
        def double(n: int) -> int:
            return n * 2

        def test_first(chain_run):
            runs.append(chain_run)
            double(1)

        def test_second(chain_run):
            runs.append(chain_run)
            double(2)
            double(3)

        def test_after():
            assert active_run() is None
            first, second = runs
            assert first is not second
            assert [c.inputs for c in first.calls] == [{"n": 1}]
            assert [c.inputs for c in second.calls] == [{"n": 2}, {"n": 3}]
            assert first.test_id == "test_chain.py::test_first"
        """
    )

    pytester.runpytest().assert_outcomes(passed=3)


def test_generators_cannot_be_steps() -> None:
    def tokens(text: str):  # type: ignore[no-untyped-def]
        yield from text.split()

    with pytest.raises(TypeError, match=r"cannot wrap the generator .*tokens"):
        step(tokens)


def test_an_unresolvable_annotation_on_data_names_the_parameter_and_the_fix() -> None:
    @step
    def classify(problem: NotDefinedAnywhere) -> str:  # type: ignore[name-defined]  # noqa: F821
        return "x"

    with pytest.raises(Exception, match="step 'classify': the parameter 'problem'") as caught:
        classify("x")
    message = str(caught.value)
    assert "'NotDefinedAnywhere' cannot be resolved" in message
    assert "name 'NotDefinedAnywhere' is not defined" in message
    assert "Import the names it uses at module level" in message


def test_an_unresolvable_annotation_on_a_client_passes_it_through() -> None:
    class Client:
        def complete(self, text: str) -> str:
            return text.upper()

    @step
    def shout(text: str, client: NotDefinedAnywhere) -> str:  # type: ignore[name-defined]  # noqa: F821
        return str(client.complete(text))

    run = Run()
    with recording_run(run):
        assert shout("hi", Client()) == "HI"
    assert run.calls[0].inputs == {"text": "hi"}
    assert run.calls[0].output == "HI"
    # The other annotations are still resolved and enforced.
    with pytest.raises(StepContractError, match="text: Input should be a valid string"):
        shout(3, Client())


def test_an_unresolvable_return_annotation_on_data_is_an_error() -> None:
    @step
    def classify(text: str) -> NotDefinedAnywhere:  # type: ignore[name-defined]  # noqa: F821
        return {"level": 1}

    with pytest.raises(Exception, match="step 'classify': the return annotation"):
        classify("x")


LIBRARY_WITH_A_STRING_ALIAS = """
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class BaseProvider(Generic[T]):
    def __init__(self, client):
        self.client = client

    def ask(self, prompt):
        reply = self.client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
        )
        return reply.choices[0].message.content


# Like mirascope's llm.Provider: a public alias spelled as a string of a name the
# user's module never imports.
Provider = "BaseProvider[Any]"
"""


def test_a_client_annotated_with_a_library_string_alias_records_and_replays(
    project: Project,
) -> None:
    project.pytester.makepyfile(provider_sdk=LIBRARY_WITH_A_STRING_ALIAS)
    project.write(
        """
        from __future__ import annotations

        import provider_sdk
        import pytest
        from pydantic import BaseModel

        from endpoint import openai_client, save
        from pytest_promptflow import Prompt, step

        ASK = Prompt.from_string("Summarize: {{ text }}", name="summarize")


        class Summary(BaseModel):
            text: str


        @step(prompt=ASK)
        def summarize(text: str, llm: provider_sdk.Provider) -> Summary:
            return Summary(text=llm.ask(ASK.render(text=text)))


        @pytest.mark.promptflow
        def test_summarize(chain_run):
            summary = summarize("the comet", provider_sdk.BaseProvider(openai_client()))
            save("summary", summary.text)
            assert chain_run.calls[0].inputs == {"text": "the comet"}
        """
    )

    project.record().assert_outcomes(passed=1)
    recorded = project.results()["summary"]
    assert "Summarize: the comet" in recorded
    with project.llm.offline():
        project.run().assert_outcomes(passed=1)
    assert project.results()["summary"] == recorded
    assert project.cassette("test_chain/test_summarize.json")["interactions"][0]["step"] == (
        "summarize"
    )


def test_a_step_binds_its_arguments_as_the_function_would() -> None:
    @step
    def greet(name: str, greeting: str = "Hello", *, punctuation: str = "!") -> str:
        return f"{greeting}, {name}{punctuation}"

    @step
    def plain(name: str, greeting: str = "Hello") -> str:
        return f"{greeting}, {name}"

    for function in (greet, plain):
        assert function("Ada").startswith("Hello, Ada")
        assert function("Ada", "Hi").startswith("Hi, Ada")
        assert function(greeting="Hey", name="Ada").startswith("Hey, Ada")
        with pytest.raises(TypeError):
            function("Ada", name="Bob")
        with pytest.raises(TypeError):
            function()
        with pytest.raises(TypeError):
            function("Ada", "Hi", "extra", "more")
        with pytest.raises(TypeError):
            function("Ada", colour="blue")
    assert greet("Ada", punctuation="?") == "Hello, Ada?"
    with recording_run(Run()) as run:
        plain("Ada", greeting="Yo")
    assert run.calls[0].inputs == {"name": "Ada", "greeting": "Yo"}
