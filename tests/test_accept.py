"""Accepting new golden values: what is written, what is pruned, and refusing it in CI."""

from __future__ import annotations

from pathlib import Path

import pytest
from drift_chains import reply, write_chain
from llm_fakes import Project

from pytest_promptflow.cassette.format import stale_recorded_runs
from pytest_promptflow.prompts import prompt_version

CHAIN = """
CLASSIFY = Prompt.load("prompts/classify.j2")


class Urgency(BaseModel):
    level: Annotated[int, drift.exact()]


@step(prompt=CLASSIFY)
def classify(text: str) -> Urgency:
    return Urgency.model_validate_json(ask(CLASSIFY.render(text=text)))


@pytest.mark.promptflow_cases("tickets.jsonl")
def {name}(chain_case):
    classify(chain_case.input["text"])
    {then}
"""
TICKETS = {"login": "cannot log in", "outage": "the vault is down"}
OLD_PROMPT = "Classify: {{ text }}"
NEW_PROMPT = "Rate the urgency of: {{ text }}"
# The new prompt raises the level of the login ticket only.
LEVELS = {
    OLD_PROMPT: {"login": 2, "outage": 5},
    NEW_PROMPT: {"login": 3, "outage": 5},
}
LOGIN = "test_chain/test_classify/login.json"
OUTAGE = "test_chain/test_classify/outage.json"


def write_project(
    project: Project,
    *,
    tickets: tuple[str, ...] = ("login", "outage"),
    name: str = "test_classify",
    then: str = "",
) -> None:
    fixtures = project.path / "fixtures"
    fixtures.mkdir(exist_ok=True)
    (fixtures / "tickets.jsonl").write_text(
        "".join(f'{{"id": "{id}", "text": "{TICKETS[id]}"}}\n' for id in tickets)
    )
    write_chain(project, CHAIN.format(name=name, then=then))


def write_prompt(project: Project, source: str) -> None:
    (project.path / "prompts").mkdir(exist_ok=True)
    (project.path / "prompts" / "classify.j2").write_text(source)


def script_answers(project: Project) -> None:
    for source, levels in LEVELS.items():
        for case, level in levels.items():
            prompt = source.replace("{{ text }}", TICKETS[case])
            project.llm.answers[prompt] = reply({"level": level})


def recorded(project: Project, **options: str) -> Project:
    """The project recorded with the old prompt: its golden values are the old outputs."""
    write_project(project, **options)
    write_prompt(project, OLD_PROMPT)
    script_answers(project)
    project.record().assert_outcomes(passed=2)
    return project


def edited(project: Project) -> Project:
    """The prompt edited and its new requests recorded: the login case drifted."""
    write_prompt(project, NEW_PROMPT)
    project.record(mode="new").assert_outcomes(passed=1, failed=1)
    return project


def test_accepting_makes_the_current_outputs_golden_and_replay_pass(project: Project) -> None:
    edited(recorded(project))
    with project.llm.offline():
        project.run().assert_outcomes(passed=1, failed=1)

        accepted = project.run("--promptflow-accept")
        replayed = project.run()

    accepted.assert_outcomes(passed=2)
    replayed.assert_outcomes(passed=2)
    replayed.stdout.re_match_lines([r"^classify +2 +2 +0 +0 +0$"])
    new = prompt_version(NEW_PROMPT)
    for relative, level in [(LOGIN, 3), (OUTAGE, 5)]:
        (golden,) = project.cassette(relative)["steps"]
        assert golden["output"] == {"level": level}
        assert golden["prompts"] == {"classify": new}
        assert golden["inputs"] == {"text": TICKETS[relative.split("/")[-1][:-5]]}
        assert project.cassette(relative)["prompt_sources"] == {new: NEW_PROMPT}


def test_accepting_drops_the_recordings_of_a_superseded_prompt_version(project: Project) -> None:
    edited(recorded(project))
    old, new = prompt_version(OLD_PROMPT), prompt_version(NEW_PROMPT)
    for relative in (LOGIN, OUTAGE):
        assert [i["prompts"] for i in project.cassette(relative)["interactions"]] == [
            {"classify": old},
            {"classify": new},
        ]

    with project.llm.offline():
        project.run("--promptflow-accept").assert_outcomes(passed=2)

    for relative in (LOGIN, OUTAGE):
        (kept,) = project.cassette(relative)["interactions"]
        assert kept["prompts"] == {"classify": new}
        assert kept["request"]["body"]["messages"][0]["content"].startswith("Rate the urgency")


def test_accepting_does_not_write_the_file_of_a_test_that_fails(project: Project) -> None:
    edited(recorded(project))
    write_project(project, then="assert chain_case.id != 'login', 'wrong queue'")
    before = project.files()

    with project.llm.offline():
        result = project.run("--promptflow-accept")

    result.assert_outcomes(passed=1, failed=1)
    after = project.files()
    assert after[LOGIN] == before[LOGIN]
    assert after[OUTAGE] != before[OUTAGE]


def test_accepting_without_drift_leaves_every_file_untouched(project: Project) -> None:
    recorded(project)
    before = project.files()

    with project.llm.offline():
        project.run("--promptflow-accept").assert_outcomes(passed=2)

    assert project.files() == before


# -- recorded runs no test owns any more -------------------------------------------------


def test_accepting_deletes_the_recorded_run_of_a_removed_case(project: Project) -> None:
    recorded(project)
    write_project(project, tickets=("login",))

    with project.llm.offline():
        project.run("--promptflow-accept").assert_outcomes(passed=1)

    assert sorted(project.files()) == [LOGIN]


def test_accepting_deletes_the_recorded_runs_of_a_renamed_test(project: Project) -> None:
    recorded(project)
    write_project(project, name="test_urgency")

    project.record("--promptflow-accept", mode="new").assert_outcomes(passed=2)

    assert sorted(project.files()) == [
        "test_chain/test_urgency/login.json",
        "test_chain/test_urgency/outage.json",
    ]


DOUBLE = """
import pytest
from pytest_promptflow import step


@step
def double(n: int) -> int:
    return n * 2
"""


def double_module(**tests: int) -> str:
    """A module of the step ``double`` and, for each name, a promptflow test of that name
    calling it on its number."""
    calls = (
        f"\n\n@pytest.mark.promptflow\ndef {name}():\n    double({number})\n"
        for name, number in tests.items()
    )
    return DOUBLE + "".join(calls)


def test_accepting_deletes_the_recorded_run_of_a_removed_test(project: Project) -> None:
    project.write(double_module(test_kept=1, test_removed=2))
    project.record().assert_outcomes(passed=2)
    assert sorted(project.files()) == ["test_chain/test_kept.json", "test_chain/test_removed.json"]

    project.write(double_module(test_kept=1))
    project.run("--promptflow-accept").assert_outcomes(passed=1)

    assert sorted(project.files()) == ["test_chain/test_kept.json"]


@pytest.mark.parametrize(
    "selection",
    [
        ["test_chain.py::test_classify"],
        ["test_chain.py::test_classify[login]"],
        ["-k", "login", "test_chain.py"],
    ],
    ids=["test-node-id", "case-node-id", "keyword"],
)
def test_accepting_a_selection_deletes_nothing_it_did_not_select(
    project: Project, selection: list[str]
) -> None:
    recorded(project)
    if "-k" not in selection:
        write_project(project, tickets=("login",))
    before = project.files()

    with project.llm.offline():
        project.run(*selection, "--promptflow-accept").assert_outcomes(passed=1)

    assert project.files() == before


def test_accepting_one_module_leaves_the_recorded_runs_of_others_alone(project: Project) -> None:
    recorded(project)
    project.write(double_module(test_other=1), name="test_other")
    project.record("test_other.py").assert_outcomes(passed=1)
    before = project.files()
    assert "test_other/test_other.json" in before

    with project.llm.offline():
        project.run("test_chain.py", "--promptflow-accept").assert_outcomes(passed=2)
        project.run("test_other.py", "--promptflow-accept").assert_outcomes(passed=1)

    assert project.files() == before


def test_a_recorded_run_being_written_is_not_stale(tmp_path: Path) -> None:
    # Under pytest-xdist a worker that has finished looks for stale recorded runs while
    # another still writes its last one, through a temporary file beside it.
    folder = tmp_path / "cassettes" / "test_chain"
    (folder / "test_classify").mkdir(parents=True)
    owned = folder / "test_classify" / "login.json"
    owned.write_text("{}")
    (folder / "test_classify" / ".tmp-k2j4h1.json").write_text("{")
    (folder / "test_removed.json").write_text("{}")

    assert stale_recorded_runs({folder: {owned}}) == [folder / "test_removed.json"]


# -- in CI ----------------------------------------------------------------------------


@pytest.fixture
def in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")


def test_ci_refuses_to_accept_from_addopts_in_the_ini_file(project: Project, in_ci: None) -> None:
    edited(recorded(project))
    project.pytester.makeini("[pytest]\naddopts = --promptflow-accept\n")
    before = project.files()

    result = project.run()

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--promptflow-accept comes from addopts, but the CI environment variable is set "
            "(CI=true), so accepting is refused; pass --promptflow-accept on the command line*"
        ]
    )
    assert project.files() == before


def test_ci_refuses_to_accept_from_the_addopts_variable(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    edited(recorded(project))
    monkeypatch.setenv("CI", "1")
    monkeypatch.setenv("PYTEST_ADDOPTS", "--promptflow-accept")

    result = project.run()

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*accepting is refused*"])


def test_ci_obeys_accept_typed_on_the_command_line(project: Project) -> None:
    edited(recorded(project))

    with pytest.MonkeyPatch.context() as patch, project.llm.offline():
        patch.setenv("CI", "true")
        project.run("--promptflow-accept").assert_outcomes(passed=2)

    (golden,) = project.cassette(LOGIN)["steps"]
    assert golden["output"] == {"level": 3}


def test_accept_from_addopts_is_obeyed_outside_ci(project: Project) -> None:
    edited(recorded(project))
    project.pytester.makeini("[pytest]\naddopts = --promptflow-accept\n")

    with project.llm.offline():
        project.run().assert_outcomes(passed=2)

    (golden,) = project.cassette(LOGIN)["steps"]
    assert golden["output"] == {"level": 3}


def test_ci_refuses_a_record_mode_from_addopts(project: Project, in_ci: None) -> None:
    write_project(project)
    write_prompt(project, OLD_PROMPT)
    project.pytester.makeini("[pytest]\naddopts = --promptflow-record=new\n")

    result = project.run()

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*record mode 'new' comes from addopts, but the CI environment variable is set "
            "(CI=true), so recording is refused*"
        ]
    )
    assert project.llm.requests == []
    assert not project.cassettes.exists()


# -- what an accepting session says ----------------------------------------------------


# What accepting the edited prompt's new golden values says, serial or under xdist.
ACCEPTED_BOTH_CASES = [
    "accepted: new golden values for 2 case(s), steps classify (2):",
    "  test_chain.py::test_classify[[]login[]]: classify",
    "  test_chain.py::test_classify[[]outage[]]: classify",
    "pruned: 2 recording(s) no longer used, from 2 recorded run(s)",
]


def summary(result: pytest.RunResult) -> str:
    text = result.stdout.str()
    return text[text.index("promptflow") :]


def test_accepting_says_what_it_accepted_and_pruned_and_asks_nothing_more(
    project: Project,
) -> None:
    edited(recorded(project))

    with project.llm.offline():
        result = project.run("--promptflow-accept")

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [*ACCEPTED_BOTH_CASES, "Review the changed recorded runs and commit them."]
    )
    assert "--promptflow-accept" not in summary(result)
    assert "drifted beyond the policy" not in result.stdout.str()


def test_accepting_nothing_new_says_so(project: Project) -> None:
    recorded(project)

    with project.llm.offline():
        result = project.run("--promptflow-accept")

    result.stdout.fnmatch_lines(
        ["accepted: no golden value changed; every one was already current"]
    )
    assert "pruned:" not in result.stdout.str()


def test_accepting_lists_the_recorded_runs_it_deleted(project: Project) -> None:
    recorded(project)
    write_project(project, tickets=("login",))

    with project.llm.offline():
        result = project.run("--promptflow-accept")

    result.stdout.fnmatch_lines(
        [
            "deleted: 1 recorded run(s) of tests or cases that no longer exist:",
            "  cassettes/test_chain/test_classify/outage.json",
        ]
    )


def test_accepting_a_node_id_says_it_looked_for_no_removed_tests(project: Project) -> None:
    recorded(project)

    with project.llm.offline():
        result = project.run("test_chain.py::test_classify", "--promptflow-accept")

    result.stdout.fnmatch_lines(
        ["recorded runs not pruned: the run selected some tests only (a node id); *"]
    )


def test_accepting_names_the_failed_tests_it_did_not_accept(project: Project) -> None:
    edited(recorded(project))
    write_project(project, then="assert chain_case.id != 'login', 'wrong queue'")

    with project.llm.offline():
        result = project.run("--promptflow-accept")

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "accepted: new golden values for 1 case(s), steps classify (1):",
            "  test_chain.py::test_classify[[]outage[]]: classify",
            "not accepted: 1 test(s) failed, so their outputs were not taken; fix them first:",
            "  test_chain.py::test_classify[[]login[]]",
        ]
    )
    assert "--promptflow-accept" not in summary(result)


def test_accepting_under_xdist_reports_what_the_workers_accepted(project: Project) -> None:
    edited(recorded(project))

    with project.llm.offline():
        result = project.pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "-n", "2", "--promptflow-accept"
        )

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(ACCEPTED_BOTH_CASES)
