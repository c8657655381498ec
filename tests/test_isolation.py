"""One step alone: parametrized over its recorded calls, replaying only its recordings."""

from __future__ import annotations

import json

import pytest
from llm_fakes import FakeLLM, Project

CHAIN = """
import pytest
from pydantic import BaseModel, Field

from endpoint import openai_client, save
from pytest_promptflow import Prompt, step


class Topic(BaseModel):
    name: str


class Fact(BaseModel):
    subject: str
    claim: str = Field(min_length=3)


class Explanation(BaseModel):
    text: str


def ask(prompt: str) -> str:
    reply = openai_client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    return reply.choices[0].message.content


FIND = Prompt.from_string("Find a fact about {{ topic.name }}", name="find")
EXPLAIN = Prompt.from_string("EXPLAIN_SOURCE", name="explain")


@step(prompt=FIND)
def find(topic: Topic) -> Fact:
    return Fact.model_validate_json(ask(FIND.render(topic=topic)))


def mentions_the_subject(fact: Fact, output: Explanation) -> bool:
    \"\"\"The explanation names the fact's subject.\"\"\"
    return fact.subject in output.text


@step(prompt=EXPLAIN, checks=[mentions_the_subject])
def explain(fact: Fact) -> Explanation:
    return Explanation(text=ask(EXPLAIN.render(fact=fact)).strip())


@pytest.mark.promptflow_cases("topics.jsonl", model=Topic)
def test_chain(chain_case):
    explain(find(chain_case.input))


@pytest.mark.promptflow_step("explain")
def test_explain_alone(recorded_step):
    explanation = recorded_step()
    save(f"alone-{recorded_step.case}", {
        "input": recorded_step.inputs["fact"].subject,
        "golden": recorded_step.golden_output.text,
        "now": explanation.text,
    })
    if recorded_step.case == "quasar" and "ALSO_FIND" in globals():
        find(Topic(name="quasars"))  # recorded in the chain, by another step
"""
EXPLAIN_SOURCE = "Explain {{ fact.claim }} about {{ fact.subject }}"
TYPO_TEST = """
@pytest.mark.promptflow_step("explian")
def test_typo(recorded_step):
    pass
"""
TOPICS = '{"id": "quasar", "name": "quasars"}\n{"id": "moss", "name": "moss"}\n'


def script(llm: FakeLLM) -> None:
    for name, subject in (("quasars", "Quasar"), ("moss", "Moss")):
        llm.answers[f"Find a fact about {name}"] = json.dumps(
            {"subject": subject, "claim": "is older than it looks"}
        )
        llm.answers[f"Explain is older than it looks about {subject}"] = (
            f"{subject} formed long ago."
        )


def write_chain(project: Project, explain_source: str = EXPLAIN_SOURCE, extra: str = "") -> None:
    project.write(CHAIN.replace("EXPLAIN_SOURCE", explain_source) + extra)


@pytest.fixture
def recorded(project: Project, llm: FakeLLM) -> Project:
    """A project whose chain test is recorded, with its golden values."""
    (project.path / "fixtures").mkdir()
    (project.path / "fixtures" / "topics.jsonl").write_text(TOPICS)
    script(llm)
    write_chain(project)
    project.record("-k", "not alone").assert_outcomes(passed=2)
    llm.reset()
    return project


def test_a_step_alone_runs_on_its_golden_inputs_and_replays_offline(
    recorded: Project, llm: FakeLLM
) -> None:
    result = recorded.run("-k", "alone", "-v")

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*test_explain_alone?moss? PASSED*", "*test_explain_alone?quasar? PASSED*"],
        consecutive=False,
    )
    assert llm.requests == [], "a step alone replays; it never reaches the model"
    results = recorded.results()
    assert results["alone-quasar"] == {
        "input": "Quasar",
        "golden": "Quasar formed long ago.",
        "now": "Quasar formed long ago.",
    }
    # It wrote nothing: what it did matches the recorded run it came from.
    assert sorted(recorded.files()) == [
        "test_chain/test_chain/moss.json",
        "test_chain/test_chain/quasar.json",
    ]


def test_only_the_steps_own_interactions_are_replayed(recorded: Project) -> None:
    write_chain(recorded, extra="\nALSO_FIND = True\n")

    result = recorded.run("-k", "alone")

    # The recorded run holds find's interaction too, but the isolated test may not use it.
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["no recording for a request of step 'find' in case quasar", "*To record it, run:"],
        consecutive=False,
    )


def test_a_step_alone_fails_on_drift_and_contracts_as_in_the_chain(recorded: Project) -> None:
    write_chain(recorded)
    source = (recorded.path / "test_chain.py").read_text()
    (recorded.path / "test_chain.py").write_text(
        source.replace(
            "text=ask(EXPLAIN.render(fact=fact)).strip()",
            "text=ask(EXPLAIN.render(fact=fact)).strip().replace('long ago', 'not long ago')",
        )
    )

    result = recorded.run("-k", "alone")

    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "drift from the golden run in case quasar*",
            "*step explain — code: same request and answer*",
            '*text: "Quasar formed long ago." -> "Quasar formed not long ago."*DRIFT*',
        ],
        consecutive=False,
    )
    # An explanation that no longer names the subject breaks the step's check.
    (recorded.path / "test_chain.py").write_text(
        source.replace("text=ask(EXPLAIN.render(fact=fact)).strip()", 'text="nothing"')
    )
    broken = recorded.run("-k", "alone and quasar")
    broken.assert_outcomes(failed=1)
    broken.stdout.fnmatch_lines(
        ["*step 'explain' (case quasar) broke its contract at its check mentions_the_subject:*"]
    )


def test_recording_a_changed_prompt_alone_calls_only_that_step(
    recorded: Project, llm: FakeLLM
) -> None:
    write_chain(
        recorded, explain_source="Explain plainly {{ fact.claim }} about {{ fact.subject }}"
    )
    llm.answers["Explain plainly is older than it looks about Quasar"] = "Quasar is not old."
    llm.answers["Explain plainly is older than it looks about Moss"] = "Moss formed long ago."

    replayed = recorded.run("-k", "alone")
    replayed.assert_outcomes(failed=2)
    replayed.stdout.fnmatch_lines(["*prompt explain changed: * -> *"])

    result = recorded.record("-k", "alone", mode="new")

    sent = [request["messages"][-1]["content"] for request in llm.requests]
    assert sorted(sent) == [
        "Explain plainly is older than it looks about Moss",
        "Explain plainly is older than it looks about Quasar",
    ], "only the changed step reaches the model, from its golden inputs"
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*step explain — prompt: explain changed * -> *",
            '*text: "Quasar formed long ago." -> "Quasar is not old."*DRIFT*',
        ],
        consecutive=False,
    )
    own = recorded.cassette("test_chain/test_explain_alone/quasar.json")
    assert own["isolated"] is True
    assert [i["step"] for i in own["interactions"]] == ["explain"]
    assert own["steps"] == [], "recording alone never makes golden values; accepting does"

    recorded.run("-k", "alone", "--promptflow-accept").assert_outcomes(passed=2)
    llm.reset()
    recorded.run("-k", "alone").assert_outcomes(passed=2)
    assert llm.requests == []


def test_a_name_that_is_not_a_step_lists_the_known_steps(recorded: Project) -> None:
    write_chain(
        recorded,
        extra=TYPO_TEST,
    )

    result = recorded.run("-k", "typo")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*'explian' is not a step; known steps: *explain*find* "
            "(with recorded calls: explain, find)*"
        ]
    )


def test_a_step_without_recorded_calls_is_a_collection_error_in_replay(
    project: Project, llm: FakeLLM
) -> None:
    script(llm)
    (project.path / "fixtures").mkdir()
    (project.path / "fixtures" / "topics.jsonl").write_text(TOPICS)
    write_chain(project)

    result = project.run()

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*step 'explain' has no recorded calls under *cassettes; "
            "record a test that calls it first*"
        ]
    )
    # While recording, the chain records them; the step's own tests run next time.
    recording = project.record(mode="new")
    recording.assert_outcomes(passed=2, skipped=1)
    recording.stdout.fnmatch_lines(
        [
            "1 step test(s) not run: their steps had no recorded calls when this session started:",
            "  test_chain.py::test_explain_alone (step 'explain')",
            "This session recorded the calls they run on; run them with:",
            "  pytest test_chain.py::test_explain_alone",
        ]
    )
    # The command it gives runs them.
    with llm.offline():
        project.run("test_chain.py::test_explain_alone").assert_outcomes(passed=2)


def test_the_first_recording_session_says_which_step_tests_it_did_not_run_under_xdist(
    project: Project, llm: FakeLLM
) -> None:
    script(llm)
    (project.path / "fixtures").mkdir()
    (project.path / "fixtures" / "topics.jsonl").write_text(TOPICS)
    write_chain(project)

    recording = project.pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--promptflow-record=new"
    )

    recording.assert_outcomes(passed=2, skipped=1)
    recording.stdout.fnmatch_lines(
        [
            "1 step test(s) not run: their steps had no recorded calls when this session started:",
            "  test_chain.py::test_explain_alone (step 'explain')",
            "  pytest test_chain.py::test_explain_alone",
        ]
    )


def test_a_step_no_test_recorded_is_named_with_what_to_do(project: Project, llm: FakeLLM) -> None:
    script(llm)
    (project.path / "fixtures").mkdir()
    (project.path / "fixtures" / "topics.jsonl").write_text(TOPICS)
    write_chain(project)

    recording = project.record("-k", "alone", mode="new")

    recording.stdout.fnmatch_lines(
        [
            "1 step test(s) not run: *",
            "No test of this session recorded a call of step 'explain': record a test that "
            "calls it (pytest --promptflow-record=new), then run its step tests.",
        ]
    )


def test_a_step_alone_miss_names_the_chains_recorded_run_and_the_command_that_records_it(
    recorded: Project, llm: FakeLLM
) -> None:
    write_chain(
        recorded, explain_source="Explain plainly {{ fact.claim }} about {{ fact.subject }}"
    )

    with llm.offline():
        replayed = recorded.run("-k", "alone and quasar")

    replayed.assert_outcomes(failed=1)
    replayed.stdout.fnmatch_lines(
        [
            "no recording for a request of step 'explain' in case quasar",
            "  replays:  cassettes/test_chain/test_chain/quasar.json (the recorded run of "
            "test_chain.py::test_chain[[]quasar[]], its calls of step 'explain')",
            "  cassette: cassettes/test_chain/test_explain_alone/quasar.json (this step "
            "test's own recordings; none yet)",
            "  prompt explain changed: * -> *",
            "To record it, run:",
            "  pytest 'test_chain.py::test_explain_alone[[]quasar[]]' --promptflow-record=new",
            "That sends only what step 'explain' (and the steps it calls) asks from the golden "
            "inputs it replays, without running the steps before it, and keeps it in "
            "cassettes/test_chain/test_explain_alone/quasar.json, used only by this step test, "
            "never as a source; cassettes/test_chain/test_chain/quasar.json is left as it is.",
            "Re-recording the chain's case instead (pytest 'test_chain.py::test_chain[[]quasar[]]' "
            "--promptflow-record=new) runs every step before this one again, and leaves the "
            "golden inputs this test runs on as they are.",
        ],
        consecutive=False,
    )
    assert "does not exist yet" not in replayed.stdout.str()
    chain = recorded.files()

    # The command it gives records what the step test needs, and only that.
    llm.answers["Explain plainly is older than it looks about Quasar"] = "Quasar formed long ago."
    recording = recorded.run("test_chain.py::test_explain_alone[quasar]", "--promptflow-record=new")

    recording.assert_outcomes(passed=1)
    recording.stdout.fnmatch_lines(
        [
            "1 step test(s) recorded into recorded runs of their own, each used only by this "
            "step test, never as a source: what a step asks there was made from golden inputs, "
            "not by a run of the chain. The chain's recorded runs they replay from are left as "
            "they are:",
            "  test_chain.py::test_explain_alone[[]quasar[]] -> "
            "cassettes/test_chain/test_explain_alone/quasar.json (replays from "
            "cassettes/test_chain/test_chain/quasar.json)",
        ]
    )
    assert {name: content for name, content in recorded.files().items() if name in chain} == chain
    with llm.offline():
        recorded.run("-k", "alone and quasar").assert_outcomes(passed=1)
