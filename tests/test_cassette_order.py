"""The stored order of a run's calls, and how a run's calls are paired with golden ones:
functions of what the calls are, never of which thread or task ran first."""

from __future__ import annotations

import asyncio
import contextvars
import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_promptflow import Run, recording_run, step
from pytest_promptflow.cassette.format import GoldenStep, RecordedRun, golden_steps
from pytest_promptflow.cassette.order import renumbered, stable_order
from pytest_promptflow.drift.classify import judge_case
from pytest_promptflow.trace import StepCall


def pause() -> None:
    time.sleep(random.uniform(0, 0.003))


@step
def zeta_first(n: int) -> int:
    return n


@step
def alpha_fanned(n: int) -> int:
    pause()
    return middle_nested(n) * 10


@step
def middle_nested(n: int) -> int:
    pause()
    return n


@step
def aaa_after_the_pool(values: list[int]) -> int:
    return sum(values)


@step
async def alpha_async(n: int) -> int:
    await asyncio.sleep(random.uniform(0, 0.003))
    return n


def chain_with_a_pool() -> None:
    zeta_first(1)
    with ThreadPoolExecutor(8) as pool:
        numbers = [7, 3, 11, 5, 2, 9, 3, 8, 1, 6, 4, 10]
        futures = [pool.submit(contextvars.copy_context().run, alpha_fanned, n) for n in numbers]
        values = [future.result() for future in futures]
    aaa_after_the_pool(values)
    zeta_first(2)


def chain_with_gather() -> None:
    zeta_first(1)

    async def fan_out() -> list[int]:
        return await asyncio.gather(*(alpha_async(n) for n in [5, 2, 9, 2, 7]))

    aaa_after_the_pool(asyncio.run(fan_out()))


def chain_starting_with_gather() -> None:
    async def fan_out() -> list[int]:
        return await asyncio.gather(*(alpha_async(n) for n in [5, 2, 9]))

    aaa_after_the_pool(asyncio.run(fan_out()))


def test_a_run_is_stored_alike_in_a_fresh_context_and_after_other_runs() -> None:
    fresh = contextvars.Context().run(stored, chain_starting_with_gather)
    stored(chain_with_a_pool)
    after_another = stored(chain_starting_with_gather)

    assert fresh == after_another
    assert [step for step, _, _ in fresh] == ["alpha_async"] * 3 + ["aaa_after_the_pool"]


def chain_in_copies_of_its_context() -> None:
    # As LangGraph runs a graph's nodes: each in a copy of the context, one after another.
    for n in (3, 1, 2):
        contextvars.copy_context().run(zeta_first, n)
    contextvars.copy_context().run(aaa_after_the_pool, [3, 1, 2])


def test_calls_run_one_after_another_in_copies_of_the_context_keep_their_order() -> None:
    order = stored(chain_in_copies_of_its_context)

    assert [(step, inputs) for step, inputs, _ in order] == [
        ("zeta_first", {"n": 3}),
        ("zeta_first", {"n": 1}),
        ("zeta_first", {"n": 2}),
        ("aaa_after_the_pool", {"values": [3, 1, 2]}),
    ]


def stored(chain: Any) -> list[tuple[str, Any, int | None]]:
    run = Run()
    with recording_run(run):
        chain()
    order, _ = stable_order(run, [])
    return [(call.step, call.inputs, call.parent) for call in renumbered(run, order)]


@pytest.mark.parametrize("chain", [chain_with_a_pool, chain_with_gather])
def test_the_stored_order_of_calls_does_not_depend_on_timing(chain: Any) -> None:
    orders = [stored(chain) for _ in range(5)]

    assert all(order == orders[0] for order in orders)


def test_sequential_calls_keep_their_order_and_forked_ones_are_sorted() -> None:
    order = stored(chain_with_a_pool)

    steps = [step for step, _, _ in order]
    assert steps[0] == "zeta_first", "sequential calls stay in the order they ran"
    assert steps[-2:] == ["aaa_after_the_pool", "zeta_first"], "after the forks, as they ran"
    fanned = [(inputs, position) for position, (step, inputs, _) in enumerate(order)]
    pool = [
        (inputs["n"], position)
        for inputs, position in fanned
        if order[position][0] == "alpha_fanned"
    ]
    # Sorted by their inputs' canonical JSON: {"n": 10} before {"n": 1}.
    assert [n for n, _ in pool] == sorted((n for n, _ in pool), key=lambda n: json.dumps({"n": n}))
    for n, position in pool:
        # Each forked call is followed by the call it made, its parent renumbered.
        assert order[position + 1] == ("middle_nested", {"n": n}, position)


def golden_of(run: Run) -> RecordedRun:
    return RecordedRun(test="t", steps=golden_steps(run))


def call(index: int, step: str, n: int, output: Any, responses: list[str]) -> StepCall:
    return StepCall(index, step, None, {"n": n}, {}, output=output, responses=responses)


CALLS = st.lists(
    st.tuples(st.sampled_from(["ask", "tell"]), st.integers(0, 3), st.integers(0, 2)),
    min_size=1,
    max_size=8,
)


@given(calls=CALLS, data=st.data())
def test_calls_are_paired_with_golden_calls_whatever_order_either_is_in(
    calls: list[tuple[str, int, int]], data: st.DataObject
) -> None:
    # The output depends on the input and on which answer the call got.
    golden = Run(
        calls=[call(i, s, n, [s, n, a], [f"{s}{n}{a}"]) for i, (s, n, a) in enumerate(calls)]
    )
    shuffled = data.draw(st.permutations(golden.calls))
    run = Run(
        calls=[
            call(i, c.step, c.inputs["n"], c.output, c.responses) for i, c in enumerate(shuffled)
        ]
    )
    golden_order = data.draw(st.permutations(golden_steps(golden)))
    recorded = RecordedRun(
        test="t", steps=[GoldenStep.model_validate(g.model_dump()) for g in golden_order]
    )

    verdict = judge_case(recorded, run)

    assert verdict is not None
    assert verdict.steps == []
    assert sorted(verdict.compared) == sorted(step for step, _, _ in calls)


def test_a_call_with_other_inputs_is_paired_by_occurrence_and_drifts_as_propagated() -> None:
    golden = Run(calls=[call(0, "ask", 1, "one", ["a"]), call(1, "ask", 2, "two", ["b"])])
    run = Run(calls=[call(0, "ask", 5, "five", ["c"]), call(1, "ask", 2, "two", ["b"])])

    verdict = judge_case(golden_of(golden), run)

    assert verdict is not None
    assert [(d.step, d.occurrence, d.cause) for d in verdict.steps] == [("ask", 0, "propagated")]


def test_a_golden_call_left_over_is_missing_and_an_extra_call_is_new() -> None:
    golden = Run(calls=[call(0, "ask", 1, "one", ["a"]), call(1, "ask", 2, "two", ["b"])])
    fewer = Run(calls=[call(0, "ask", 2, "two", ["b"])])
    more = Run(calls=[*golden.calls, call(2, "ask", 3, "three", ["c"])])

    missing = judge_case(golden_of(golden), fewer)
    new = judge_case(golden_of(golden), more)

    assert missing is not None
    assert [(d.step, d.occurrence, d.cause) for d in missing.steps] == [("ask", 0, "missing call")]
    assert new is not None
    assert [(d.step, d.occurrence, d.cause) for d in new.steps] == [("ask", 2, "new call")]
