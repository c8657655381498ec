"""Requests from threads that do not share the step's context: tagged, or warned about."""

from __future__ import annotations

import sys
import threading
import warnings

import pytest
from llm_fakes import Project

from pytest_promptflow import Run, recording_run, step
from pytest_promptflow.steps import request_step
from pytest_promptflow.trace import StepContext

FAN_OUT = """
import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from endpoint import openai_client, save
from pytest_promptflow import Prompt, step

ASK = Prompt.from_string("PROMPT_SOURCE {{ topic }}", name="ask")


def ask(topic):
    reply = openai_client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": ASK.render(topic=topic)}]
    )
    return reply.choices[0].message.content


@step(prompt=ASK)
def fan_out(topics: list[str]) -> list[str]:
    # A plain pool: its threads do not see the step's context.
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(ask, topics))


@pytest.mark.promptflow
def test_fan_out(chain_run):
    save("answers", fan_out(["comets", "moss"]))
"""


def write_fan_out(project: Project, prompt: str = "Tell me about") -> None:
    project.write(FAN_OUT.replace("PROMPT_SOURCE", prompt))


def test_requests_from_a_plain_thread_pool_are_tagged_with_the_executing_step(
    project: Project,
) -> None:
    write_fan_out(project)

    project.record().assert_outcomes(passed=1)

    recorded = project.cassette("test_chain/test_fan_out.json")
    assert [i["step"] for i in recorded["interactions"]] == ["fan_out", "fan_out"]
    assert recorded["steps"][0]["responses"], "the step knows the answers it got"
    answers = project.results()["answers"]
    with project.llm.offline():
        project.run("-W", "error::UserWarning").assert_outcomes(passed=1)
    assert project.results()["answers"] == answers


def test_a_prompt_edit_in_a_thread_pool_step_names_the_step(project: Project) -> None:
    write_fan_out(project)
    project.record().assert_outcomes(passed=1)
    write_fan_out(project, prompt="Say something about")

    with project.llm.offline():
        result = project.run()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*no recording for a request of step 'fan_out'*", "*prompt ask changed: * -> *"]
    )


CONCURRENT_STEPS = """
import asyncio

import pytest

from endpoint import openai_client
from pytest_promptflow import step


def ask(text):
    reply = openai_client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
    )
    return reply.choices[0].message.content


@step
async def first(text: str, done: asyncio.Event) -> str:
    await asyncio.sleep(0)  # lets `second` start: two steps now execute at once
    # run_in_executor does not copy the context into its thread.
    answer = await asyncio.get_running_loop().run_in_executor(None, ask, text)
    done.set()
    return answer


@step
async def second(done: asyncio.Event) -> str:
    await done.wait()
    return "waited"


async def both():
    done = asyncio.Event()
    return await asyncio.gather(first("hello", done), second(done))


@pytest.mark.promptflow
def test_both(chain_run):
    asyncio.run(both())
"""


def test_a_request_from_a_thread_while_two_steps_execute_is_warned_about(
    project: Project,
) -> None:
    project.write(CONCURRENT_STEPS)

    result = project.record()

    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*UntaggedRequestWarning: an HTTP request was made outside any step while steps "
            "'first', 'second' were executing at once*submit the work with "
            "executor.submit(contextvars.copy_context().run, fn, [*]args)*",
        ]
    )
    (interaction,) = project.cassette("test_chain/test_both.json")["interactions"]
    assert interaction.get("step") is None


def test_a_thread_without_the_context_finds_the_innermost_executing_step() -> None:
    found: list[StepContext | None] = []

    def from_a_plain_thread() -> None:
        thread = threading.Thread(target=lambda: found.append(request_step(run)))
        thread.start()
        thread.join()

    @step
    def inner(n: int) -> int:
        from_a_plain_thread()
        return n

    @step
    def outer(n: int) -> int:
        from_a_plain_thread()
        return inner(n)

    run = Run()
    with recording_run(run):
        outer(1)

    assert [context.step if context else None for context in found] == ["outer", "inner"]
    assert run.executing == []


def test_no_step_executing_means_no_step_and_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert request_step(Run()) is None


def test_a_failing_step_leaves_the_executing_list() -> None:
    @step
    def broken(n: int) -> int:
        raise RuntimeError("no")

    run = Run()
    with recording_run(run), pytest.raises(RuntimeError):
        broken(1)

    assert run.executing == []


def test_step_calls_started_in_several_threads_at_once_each_get_their_own_index() -> None:
    run = Run()
    barrier = threading.Barrier(8)
    interval = sys.getswitchinterval()

    def start_calls() -> None:
        barrier.wait()
        for _ in range(2000):
            run.begin_call("ask", None, {}, {})

    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=start_calls) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)

    assert [call.index for call in run.calls] == list(range(16_000))
