"""Record modes: replay only, record what is missing, re-record all; and refusing in CI."""

from __future__ import annotations

import json
import textwrap

import pytest
from llm_fakes import Project

from pytest_promptflow.prompts import prompt_version

CHAIN = """
    import pytest
    from endpoint import openai_client, save
    from pytest_promptflow import Prompt, step

    ASK = Prompt.load("prompts/ask.j2")


    def ask_raw(topic, **options):
        reply = openai_client().chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": ASK.render(topic=topic)}],
            **options,
        )
        return reply.choices[0].message.content


    @step(prompt=ASK)
    def ask(topic: str) -> str:
        return ask_raw(topic)
    """
# Tests that change which requests a test makes call `ask_raw`, outside any step: for a
# step, that change is drift from its golden values, which the gate rightly fails on.

ASK_SOURCE = "What is {{ topic }}?\n"


def write_chain(project: Project, tests: str, prompt: str = ASK_SOURCE) -> None:
    prompts = project.path / "prompts"
    prompts.mkdir(exist_ok=True)
    (prompts / "ask.j2").write_text(prompt, encoding="utf-8")
    project.write(textwrap.dedent(CHAIN) + textwrap.dedent(tests))


def one_test(*calls: str, then: str = "", mark: str = "") -> str:
    """A test named test_ask that saves the answers of the given `ask(...)` calls."""
    return f"""
    {mark}
    @pytest.mark.promptflow
    def test_ask():
        save("answers", [{", ".join(calls)}])
        {then}
    """


def asked_topics(project: Project, relative: str = "test_chain/test_ask.json") -> list[str]:
    return [
        i["request"]["body"]["messages"][0]["content"]
        for i in project.cassette(relative)["interactions"]
    ]


# -- none: replay only -----------------------------------------------------------------


def test_replay_mode_fails_on_a_missing_recording_and_sends_or_writes_nothing(
    project: Project,
) -> None:
    write_chain(project, one_test('ask("gravity")'))

    result = project.run()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no recording for a request of step 'ask'*"])
    assert project.llm.requests == []
    assert not project.cassettes.exists()


def test_replay_mode_leaves_an_existing_file_alone_on_a_miss(project: Project) -> None:
    write_chain(project, one_test('ask("gravity")'))
    project.record().assert_outcomes(passed=1)
    before = project.files()

    write_chain(project, one_test('ask("gravity")', 'ask("entropy")'))
    project.llm.reset()
    project.run("--promptflow-record=none").assert_outcomes(failed=1)

    assert project.llm.requests == []
    assert project.files() == before


def test_a_miss_says_which_step_case_prompt_change_and_command_to_run(project: Project) -> None:
    (project.path / "fixtures").mkdir()
    (project.path / "fixtures" / "topics.jsonl").write_text(
        '{"id": "physics-1", "topic": "gravity"}\n{"id": "physics-2", "topic": "entropy"}\n'
    )
    write_chain(
        project,
        """
        @pytest.mark.promptflow_cases("topics.jsonl")
        def test_ask(chain_case):
            save(chain_case.id, ask(chain_case.input["topic"]))
        """,
    )
    project.record().assert_outcomes(passed=2)
    recorded = project.results()
    edited = "Explain {{ topic }} to a child.\n"
    (project.path / "prompts" / "ask.j2").write_text(edited)

    with project.llm.offline():
        result = project.run()

    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*no recording for a request of step 'ask' in case physics-1",
            "*  test:     test_chain.py::test_ask[[]physics-1[]]",
            f"*  request:  POST {project.llm.url}/v1/chat/completions",
            "*  cassette: cassettes/test_chain/test_ask/physics-1.json",
            f"*  prompt ask changed: {prompt_version(ASK_SOURCE)} -> {prompt_version(edited)}",
            "*  closest recording: interaction 0 (step 'ask'); request body diff:",
            "*    --- recorded",
            "*    +++ requested",
            "*     messages[[]0[]].content:",
            "*    -  | What is gravity?",
            "*    +  | Explain gravity to a child.",
            "*To record it, run:",
            "*  pytest 'test_chain.py::test_ask[[]physics-1[]]' --promptflow-record=new",
        ]
    )
    result.stdout.fnmatch_lines(["*in case physics-2", "*-  | What is entropy?"])

    # The command it gives records the new prompt's request, and only that one. What the
    # new prompt changed in the step's output is then for the drift gate to judge.
    project.llm.reset()
    fixed = project.run("test_chain.py::test_ask[physics-1]", "--promptflow-record=new")
    assert "no recording" not in fixed.stdout.str()
    assert [r["messages"][0]["content"] for r in project.llm.requests] == [
        "Explain gravity to a child.\n"
    ]
    assert asked_topics(project, "test_chain/test_ask/physics-1.json") == [
        "What is gravity?\n",
        "Explain gravity to a child.\n",
    ]
    with project.llm.offline():
        replay = project.run("-k", "physics-1")
    assert "no recording" not in replay.stdout.str()
    assert project.results() == {"physics-1": "reply to 'Explain gravity to a child.\\n', answer 1"}
    assert recorded["physics-1"] == "reply to 'What is gravity?\\n', answer 1"


def test_a_miss_outside_any_step_says_so_and_that_no_file_exists_yet(project: Project) -> None:
    project.write(
        """
        import pytest
        from endpoint import openai_client

        @pytest.mark.promptflow
        def test_bare():
            openai_client().chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
        """
    )
    result = project.run()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*no recording for a request made outside any step",
            "*  cassette: cassettes/test_chain/test_bare.json (does not exist yet)",
            "*To record it, run:",
            "*  pytest test_chain.py::test_bare --promptflow-record=new",
        ]
    )


def test_a_miss_fails_the_test_even_when_the_code_swallows_the_error(project: Project) -> None:
    write_chain(
        project,
        """
        @pytest.mark.promptflow
        def test_ask():
            try:
                ask("gravity")
            except Exception:
                pass
        """,
    )
    result = project.run()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no recording for a request of step 'ask'*"])


# -- new: record only what is missing ----------------------------------------------------


def test_new_mode_keeps_existing_recordings_and_records_only_what_is_missing(
    project: Project,
) -> None:
    write_chain(project, one_test('ask_raw("gravity")'))
    project.record().assert_outcomes(passed=1)
    (first,) = project.cassette("test_chain/test_ask.json")["interactions"]
    gravity = project.results()["answers"]

    write_chain(project, one_test('ask_raw("gravity")', 'ask_raw("entropy")'))
    project.llm.reset()
    project.record(mode="new").assert_outcomes(passed=1)

    assert [r["messages"][0]["content"] for r in project.llm.requests] == ["What is entropy?\n"]
    kept, added = project.cassette("test_chain/test_ask.json")["interactions"]
    assert kept == first
    assert added["request"]["body"]["messages"][0]["content"] == "What is entropy?\n"
    both = project.results()["answers"]
    assert both[0] == gravity[0]

    with project.llm.offline():
        project.run().assert_outcomes(passed=1)
    assert project.results()["answers"] == both


def test_new_mode_keeps_what_a_failing_test_recorded(project: Project) -> None:
    write_chain(project, one_test('ask("gravity")', then="assert False, 'not yet right'"))

    project.record(mode="new").assert_outcomes(failed=1)

    assert asked_topics(project) == ["What is gravity?\n"]


def test_new_mode_does_not_rewrite_a_file_it_only_replayed(project: Project) -> None:
    write_chain(project, one_test('ask("gravity")'))
    project.record().assert_outcomes(passed=1)
    path = project.cassettes / "test_chain/test_ask.json"
    before = path.stat()

    with project.llm.offline():
        project.record(mode="new").assert_outcomes(passed=1)

    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


# -- all: re-record everything ---------------------------------------------------------------


def test_all_mode_rerecords_and_drops_recordings_no_longer_made(project: Project) -> None:
    write_chain(project, one_test('ask_raw("gravity")', 'ask_raw("entropy")'))
    project.record().assert_outcomes(passed=1)

    write_chain(project, one_test('ask_raw("entropy")'))
    project.llm.reset()
    project.record().assert_outcomes(passed=1)

    assert len(project.llm.requests) == 1
    assert asked_topics(project) == ["What is entropy?\n"]
    with project.llm.offline():
        project.run().assert_outcomes(passed=1)


def test_all_mode_does_not_overwrite_an_existing_file_when_the_test_fails(
    project: Project,
) -> None:
    write_chain(project, one_test('ask("gravity")'))
    project.record().assert_outcomes(passed=1)
    before = project.files()

    write_chain(project, one_test('ask("entropy")', then="assert False, 'wrong answer'"))
    project.record().assert_outcomes(failed=1)

    assert project.llm.requests[-1]["messages"][0]["content"] == "What is entropy?\n"
    assert project.files() == before


def test_all_mode_keeps_a_rerecording_that_fails_only_at_the_gate(project: Project) -> None:
    # The README's way to re-record from a real model, after the model changed its mind.
    write_chain(project, one_test('ask("gravity")'))
    project.llm.answers["What is gravity?\n"] = "Objects fall within 2 seconds."
    project.record().assert_outcomes(passed=1)
    golden = project.cassette("test_chain/test_ask.json")["steps"]

    project.llm.answers["What is gravity?\n"] = "Objects fall within 9 seconds."
    drifted = project.record()

    drifted.assert_outcomes(failed=1)
    drifted.stdout.fnmatch_lines(["*drift from the golden run*", "*step ask — model*"])
    recorded = project.cassette("test_chain/test_ask.json")
    [interaction] = recorded["interactions"]
    assert "9 seconds" in json.dumps(interaction["response"]["body"])
    assert recorded["steps"] == golden  # golden values change only when accepted
    with project.llm.offline():
        offline = project.run()
        offline.assert_outcomes(failed=1)  # the gate holds offline, not a miss
        offline.stdout.fnmatch_lines(["*drift from the golden run*"])
        offline.stdout.no_fnmatch_line("*no recording*")
        project.run("--promptflow-accept").assert_outcomes(passed=1)
        project.run().assert_outcomes(passed=1)
    assert project.cassette("test_chain/test_ask.json")["steps"][0]["output"] == (
        "Objects fall within 9 seconds."
    )


def test_all_mode_still_keeps_the_file_of_a_test_failing_both_itself_and_at_the_gate(
    project: Project,
) -> None:
    write_chain(project, one_test('ask("gravity")'))
    project.llm.answers["What is gravity?\n"] = "Objects fall within 2 seconds."
    project.record().assert_outcomes(passed=1)
    before = project.files()

    project.llm.answers["What is gravity?\n"] = "Objects fall within 9 seconds."
    write_chain(project, one_test('ask("gravity")', then="assert False, 'wrong answer'"))
    project.record().assert_outcomes(failed=1)

    assert project.files() == before


@pytest.mark.parametrize(
    "skip",
    [
        '@pytest.mark.skipif(True, reason="not on this platform")',
        '@pytest.mark.usefixtures("no_key")',
    ],
    ids=["skip-marker", "skip-in-fixture"],
)
def test_all_mode_leaves_the_file_of_a_skipped_test_alone(project: Project, skip: str) -> None:
    write_chain(project, one_test('ask("gravity")'))
    project.record().assert_outcomes(passed=1)
    before = project.files()

    project.pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def no_key():
            pytest.skip("OPENAI_API_KEY is not set")
        """
    )
    write_chain(project, one_test('ask("gravity")', mark=skip))
    project.record().assert_outcomes(skipped=1)

    assert project.files() == before


def test_all_mode_writes_a_first_recording_even_when_the_test_fails(project: Project) -> None:
    write_chain(project, one_test('ask("gravity")', then="assert False, 'wrong answer'"))

    project.record().assert_outcomes(failed=1)

    assert asked_topics(project) == ["What is gravity?\n"]


# -- where the mode comes from ------------------------------------------------------------


def test_the_record_mode_can_come_from_the_ini_file(project: Project) -> None:
    project.pytester.makeini("[pytest]\npromptflow_record = new\n")
    write_chain(project, one_test('ask("gravity")'))

    project.run().assert_outcomes(passed=1)

    assert asked_topics(project) == ["What is gravity?\n"]


def test_ci_refuses_a_record_mode_from_the_ini_file(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    project.pytester.makeini("[pytest]\npromptflow_record = new\n")
    write_chain(project, one_test('ask("gravity")'))

    result = project.run()

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*'new' comes from the ini file*but the CI environment variable is set (CI=true), "
            "so recording is refused; pass --promptflow-record=new on the command line*"
        ]
    )
    assert project.llm.requests == []
    assert not project.cassettes.exists()


def test_ci_obeys_a_record_mode_given_on_the_command_line(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "1")
    project.pytester.makeini("[pytest]\npromptflow_record = new\n")
    write_chain(project, one_test('ask("gravity")'))

    project.record(mode="all").assert_outcomes(passed=1)

    assert asked_topics(project) == ["What is gravity?\n"]


@pytest.mark.parametrize("value", ["false", "0", ""])
def test_a_ci_variable_that_says_no_does_not_refuse(
    project: Project, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CI", value)
    project.pytester.makeini("[pytest]\npromptflow_record = new\n")
    write_chain(project, one_test('ask("gravity")'))

    project.run().assert_outcomes(passed=1)


def test_an_unknown_record_mode_in_the_ini_file_is_a_usage_error(project: Project) -> None:
    project.pytester.makeini("[pytest]\npromptflow_record = sometimes\n")
    write_chain(project, one_test('ask("gravity")'))

    result = project.run()

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*promptflow_record = 'sometimes' is not a record mode; use one of none, new, all*"]
    )


def test_an_unknown_record_mode_on_the_command_line_is_a_usage_error(project: Project) -> None:
    write_chain(project, one_test('ask("gravity")'))

    result = project.run("--promptflow-record=always")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--promptflow-record: invalid choice: 'always'*"])


# -- what a match ignores ----------------------------------------------------------------


def record_then_replay_with(project: Project, recorded: str, replayed: str) -> pytest.RunResult:
    write_chain(project, one_test(f'ask_raw("gravity", {recorded})'))
    project.record().assert_outcomes(passed=1)
    write_chain(project, one_test(f'ask_raw("gravity", {replayed})'))
    with project.llm.offline():
        return project.run()


@pytest.mark.parametrize(
    ("recorded", "replayed"),
    [
        ('user="alice"', 'user="bob"'),
        ('metadata={"ticket": "T-1"}', 'metadata={"ticket": "T-2"}'),
        ('store=True, prompt_cache_key="a"', 'store=False, prompt_cache_key="b"'),
        ('safety_identifier="hash-a"', 'safety_identifier="hash-b"'),
    ],
    ids=["user", "metadata", "store-and-cache-key", "safety-identifier"],
)
def test_fields_that_do_not_change_the_answer_are_ignored(
    project: Project, recorded: str, replayed: str
) -> None:
    record_then_replay_with(project, recorded, replayed).assert_outcomes(passed=1)


def test_a_field_that_changes_the_answer_is_a_miss(project: Project) -> None:
    result = record_then_replay_with(project, "temperature=0", "temperature=0.7")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*-temperature: 0", "*+temperature: 0.7"])


def test_the_ignored_fields_come_from_the_ini_file(project: Project) -> None:
    project.pytester.makeini("[pytest]\npromptflow_ignore_body_fields =\n    temperature\n")

    passed = record_then_replay_with(project, "temperature=0", "temperature=0.7")
    passed.assert_outcomes(passed=1)
    missed = record_then_replay_with(project, 'user="alice"', 'user="bob"')
    missed.assert_outcomes(failed=1)


def test_key_order_of_the_request_body_does_not_matter(project: Project) -> None:
    def write(body: dict[str, object]) -> None:
        project.write(
            f"""
            import json, httpx, pytest
            from endpoint import BASE_URL, OPENAI_KEY, save

            @pytest.mark.promptflow
            def test_raw():
                reply = httpx.post(
                    BASE_URL + "/v1/chat/completions",
                    headers={{"Authorization": f"Bearer {{OPENAI_KEY}}",
                             "Content-Type": "application/json"}},
                    content={json.dumps(body)!r},
                )
                save("reply", reply.json())
            """
        )

    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "n": 1}
    write(body)
    project.record().assert_outcomes(passed=1)
    recorded = project.results()

    write(dict(reversed(body.items())))
    with project.llm.offline():
        project.run().assert_outcomes(passed=1)
    assert project.results() == recorded
