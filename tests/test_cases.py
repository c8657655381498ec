"""Cases: tests parametrized over the cases of a JSON Lines or JSON file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pytest_promptflow import CaseFileError
from pytest_promptflow.cases import case_id_of, load_cases

MODELS = """
from pydantic import BaseModel, Field


class Ticket(BaseModel):
    subject: str
    priority: int = Field(default=3, ge=1, le=5)
"""

# A test module that runs once per case of fixtures/tickets.jsonl.
TICKETS_TEST = """
import pytest
from models import Ticket

@pytest.mark.promptflow_cases("tickets.jsonl", model=Ticket)
def test_ticket(chain_case):
    assert isinstance(chain_case.input, Ticket)
"""


def content_id(data: dict[str, object]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:10]


def write_cases(pytester: pytest.Pytester, name: str, text: str) -> Path:
    folder = pytester.path / "fixtures"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def make_project(pytester: pytest.Pytester, test_source: str = TICKETS_TEST) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(models=MODELS, test_tickets=test_source)


def assert_collection_error(result: pytest.RunResult, *lines: str) -> None:
    """A clean collection error: the message, no traceback through the plugin."""
    result.assert_outcomes(errors=1)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([*lines])
    output = result.stdout.str()
    assert "Traceback" not in output
    assert "pytest_promptflow/" not in output
    assert "raise " not in output


# --- parametrizing -----------------------------------------------------------


def test_marker_parametrizes_the_test_over_the_cases(pytester: pytest.Pytester) -> None:
    unnamed = {"subject": "Export is slow"}
    write_cases(
        pytester,
        "tickets.jsonl",
        '{"id": "login-401", "subject": "Cannot log in", "priority": 2}\n'
        f"{json.dumps(unnamed)}\n"
        "\n"
        '{"id": 7, "subject": "Vault down", "priority": "5"}\n',
    )
    make_project(
        pytester,
        """
        import pytest
        from pytest_promptflow import Prompt
        from models import Ticket

        seen = []

        @pytest.mark.promptflow_cases("tickets.jsonl", model=Ticket)
        def test_ticket(chain_case, chain_run):
            assert isinstance(chain_case.input, Ticket)
            assert chain_run.case_id == chain_case.id
            seen.append((chain_case.id, chain_case.input, chain_case.line, chain_case.data))

        def test_seen():
            summary = [(case_id, t.subject, t.priority, line) for case_id, t, line, _ in seen]
            assert summary == [
                ("login-401", "Cannot log in", 2, 1),
                (seen[1][0], "Export is slow", 3, 2),
                ("7", "Vault down", 5, 4),
            ]
            assert seen[0][3] == {"id": "login-401", "subject": "Cannot log in", "priority": 2}
        """,
    )

    result = pytester.runpytest("-v")

    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "test_tickets.py::test_ticket[[]login-401[]] PASSED*",
            f"test_tickets.py::test_ticket[[]{content_id(unnamed)}[]] PASSED*",
            "test_tickets.py::test_ticket[[]7[]] PASSED*",
        ]
    )


def test_without_a_model_the_case_input_is_the_fields_but_the_id(
    pytester: pytest.Pytester,
) -> None:
    write_cases(pytester, "tickets.jsonl", '{"id": "a", "subject": "x", "tags": [1]}\n')
    make_project(
        pytester,
        """
        import pytest

        @pytest.mark.promptflow_cases("tickets.jsonl")
        def test_ticket(chain_case):
            assert chain_case.input == {"subject": "x", "tags": [1]}
        """,
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_case_id_appears_in_a_contract_error(pytester: pytest.Pytester) -> None:
    write_cases(pytester, "tickets.jsonl", '{"id": "vault-down", "subject": "Vault down"}\n')
    make_project(
        pytester,
        """
        import pytest
        from pytest_promptflow import step
        from models import Ticket

        @step
        def classify(ticket: Ticket) -> int:
            return 9 if "down" in ticket.subject else 1

        def at_most_five(output: int) -> bool:
            return output <= 5

        checked = step(name="classify", checks=[at_most_five])(classify.function)

        @pytest.mark.promptflow_cases("tickets.jsonl", model=Ticket)
        def test_ticket(chain_case):
            checked(chain_case.input)
        """,
    )

    result = pytester.runpytest()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E *StepContractError: step 'classify' (case vault-down) broke its contract"
            " at its check at_most_five:"
        ]
    )


def test_marker_on_a_class_parametrizes_each_method(pytester: pytest.Pytester) -> None:
    write_cases(
        pytester,
        "tickets.jsonl",
        '{"id": "a", "subject": "x"}\n{"id": "b", "subject": "y"}\n',
    )
    make_project(
        pytester,
        """
        import pytest
        from models import Ticket

        @pytest.mark.promptflow_cases("tickets.jsonl", model=Ticket)
        class TestTickets:
            def test_one(self, chain_case):
                assert chain_case.id in {"a", "b"}

            def test_two(self, chain_case):
                assert chain_case.input.subject in {"x", "y"}
        """,
    )

    result = pytester.runpytest("-v")

    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*TestTickets::test_two[[]b[]] PASSED*"])


# --- ids ---------------------------------------------------------------------


def test_content_id_is_a_stable_hash_of_the_case() -> None:
    data = {"subject": "Export is slow", "priority": 2}

    assert case_id_of(data) == content_id(data)
    assert case_id_of(data) == "b05ec96304"
    # Key order and formatting do not matter, content does.
    assert case_id_of({"priority": 2, "subject": "Export is slow"}) == case_id_of(data)
    assert case_id_of({"subject": "Export is slow", "priority": 3}) != case_id_of(data)
    assert case_id_of({"subject": "Ünïcode"}) == content_id({"subject": "Ünïcode"})


def test_explicit_id_wins_over_the_content(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text('{"id": "first", "subject": "x"}\n{"id": 2, "subject": "x"}\n')

    assert [case.id for case in load_cases(path)] == ["first", "2"]


def test_same_content_gives_the_same_id_in_any_file(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"subject": "x", "priority": 1}\n')
    (tmp_path / "b.json").write_text('[\n  {\n    "priority": 1,\n    "subject": "x"\n  }\n]\n')

    (first,) = load_cases(tmp_path / "a.jsonl")
    (second,) = load_cases(tmp_path / "b.json")

    assert first.id == second.id == content_id({"subject": "x", "priority": 1})


def test_two_cases_with_the_same_content_are_duplicates(pytester: pytest.Pytester) -> None:
    path = write_cases(
        pytester,
        "tickets.jsonl",
        '{"subject": "same"}\n{"subject": "other"}\n{"subject": "same"}\n',
    )
    make_project(pytester)

    result = pytester.runpytest()

    assert_collection_error(
        result,
        f"*{path}:3: duplicate case id '{content_id({'subject': 'same'})}' (first at line 1)*",
    )


# --- JSON list files ------------------------------------------------------------


def test_json_list_files_work(pytester: pytest.Pytester) -> None:
    cases = [
        {"id": "login", "subject": "Cannot log in"},
        {"id": "export", "subject": "Export is slow", "priority": 4},
    ]
    write_cases(pytester, "tickets.json", json.dumps(cases, indent=2))
    make_project(pytester, TICKETS_TEST.replace("tickets.jsonl", "tickets.json"))

    result = pytester.runpytest("-v")

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*test_ticket[[]login[]] PASSED*", "*test_ticket[[]export[]] PASSED*"]
    )


def test_json_list_items_know_the_line_they_start_on(tmp_path: Path) -> None:
    path = tmp_path / "cases.json"
    path.write_text(
        '[{"id": "a"},\n'  # line 1
        "\n"
        '  {"id": "b",\n'  # line 3
        '   "nested": {"x": [1,\n2]}},\n'
        '  {"id": "c"}, {"id": "d"}\n'  # line 6, twice
        "]\n"
    )

    assert [(case.id, case.line) for case in load_cases(path)] == [
        ("a", 1),
        ("b", 3),
        ("c", 6),
        ("d", 6),
    ]


def test_invalid_case_in_a_json_list_names_its_line(pytester: pytest.Pytester) -> None:
    path = write_cases(
        pytester,
        "tickets.json",
        "[\n"
        '  {"id": "fine", "subject": "ok"},\n'
        "  {\n"
        '    "id": "bad",\n'
        '    "subject": "ok",\n'
        '    "priority": 9\n'
        "  }\n"
        "]\n",
    )
    make_project(pytester, TICKETS_TEST.replace("tickets.jsonl", "tickets.json"))

    result = pytester.runpytest()

    assert_collection_error(
        result,
        f"*{path}:3: case 'bad' is not a valid Ticket: priority: Input should be less than"
        " or equal to 5*",
    )


def test_malformed_json_list_names_the_line(pytester: pytest.Pytester) -> None:
    path = write_cases(
        pytester,
        "tickets.json",
        '[\n  {"id": "a", "subject": "ok"},\n  {"id": "b", "subject": "ok",}\n]\n',
    )
    make_project(pytester, TICKETS_TEST.replace("tickets.jsonl", "tickets.json"))

    result = pytester.runpytest()

    assert_collection_error(result, f"*{path}:3: not valid JSON (*")


def test_json_file_must_hold_a_list(pytester: pytest.Pytester) -> None:
    path = write_cases(pytester, "tickets.json", '{"id": "a", "subject": "ok"}\n')
    make_project(pytester, TICKETS_TEST.replace("tickets.jsonl", "tickets.json"))

    result = pytester.runpytest()

    assert_collection_error(result, f"*{path}:1: a JSON case file must hold a list of cases*")


# --- errors in JSON Lines files --------------------------------------------------


def test_malformed_line_is_a_collection_error_naming_file_and_line(
    pytester: pytest.Pytester,
) -> None:
    path = write_cases(
        pytester,
        "tickets.jsonl",
        '{"id": "a", "subject": "ok"}\n\n{"id": "b", "subject": "ok"\n',
    )
    make_project(pytester)

    result = pytester.runpytest()

    assert_collection_error(
        result,
        f"*{path}:3: not valid JSON (Expecting ',' delimiter at column 28)*",
    )


def test_duplicate_id_names_both_lines(pytester: pytest.Pytester) -> None:
    path = write_cases(
        pytester,
        "tickets.jsonl",
        '{"id": "login", "subject": "a"}\n'
        '{"id": "export", "subject": "b"}\n'
        '{"id": "login", "subject": "c"}\n',
    )
    make_project(pytester)

    result = pytester.runpytest()

    assert_collection_error(
        result,
        f"*{path}:3: duplicate case id 'login' (first at line 1); give each case a unique 'id'*",
    )


def test_invalid_case_names_file_line_id_and_field(pytester: pytest.Pytester) -> None:
    path = write_cases(
        pytester,
        "tickets.jsonl",
        '{"id": "ok", "subject": "fine"}\n{"id": "urgent", "subject": "x", "priority": 0}\n',
    )
    make_project(pytester)

    result = pytester.runpytest()

    assert_collection_error(
        result,
        f"*{path}:2: case 'urgent' is not a valid Ticket: priority: Input should be greater"
        " than or equal to 1*",
    )


def test_case_missing_a_required_field_names_it(pytester: pytest.Pytester) -> None:
    path = write_cases(pytester, "tickets.jsonl", '{"id": "empty", "priority": 2}\n')
    make_project(pytester)

    result = pytester.runpytest()

    assert_collection_error(
        result, f"*{path}:1: case 'empty' is not a valid Ticket: subject: Field required*"
    )


def test_missing_case_file_is_named(pytester: pytest.Pytester) -> None:
    make_project(pytester)

    result = pytester.runpytest()

    assert_collection_error(
        result,
        f"*test_tickets.py::test_ticket: case file {pytester.path / 'fixtures' / 'tickets.jsonl'}"
        " does not exist*",
    )


@pytest.mark.parametrize(
    ("line", "kind"),
    [('["a", "b"]', "list"), ('"just text"', "str"), ("42", "int"), ("null", "NoneType")],
)
def test_case_that_is_not_an_object_is_an_error(
    pytester: pytest.Pytester, line: str, kind: str
) -> None:
    path = write_cases(pytester, "tickets.jsonl", f'{{"id": "a", "subject": "x"}}\n{line}\n')
    make_project(pytester)

    result = pytester.runpytest()

    assert_collection_error(result, f"*{path}:2: a case must be a JSON object, not {kind}*")


def test_empty_case_file_is_an_error(pytester: pytest.Pytester) -> None:
    path = write_cases(pytester, "tickets.jsonl", "\n\n")
    make_project(pytester)

    result = pytester.runpytest()

    assert_collection_error(result, f"*case file {path} holds no cases*")


def test_line_separator_inside_a_string_is_not_a_line_break(tmp_path: Path) -> None:
    # JSON allows U+2028 and U+0085 unescaped in strings, and json.dumps writes them
    # raw with ensure_ascii=False; only "\n" ends a JSON Lines record.
    path = tmp_path / "cases.jsonl"
    lines = [
        json.dumps({"id": "pasted", "subject": "one\u2028two"}, ensure_ascii=False),
        json.dumps({"id": "next", "subject": "three\x85four"}, ensure_ascii=False),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    cases = load_cases(path)

    assert [(case.id, case.line) for case in cases] == [("pasted", 1), ("next", 2)]
    assert cases[0].input == {"subject": "one\u2028two"}


def test_load_cases_raises_case_file_error(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text("not json\n")

    with pytest.raises(CaseFileError, match=f"^{path}:1: not valid JSON"):
        load_cases(path)


# --- marker and fixture misuse ---------------------------------------------------


def test_misspelt_marker_argument_is_a_clear_error(pytester: pytest.Pytester) -> None:
    write_cases(pytester, "tickets.jsonl", '{"id": "a", "subject": "x"}\n')
    make_project(pytester, TICKETS_TEST.replace("model=Ticket", "modle=Ticket"))

    result = pytester.runpytest()

    assert_collection_error(
        result,
        "*test_tickets.py::test_ticket: bad marker arguments: modle: Extra inputs are not"
        " permitted*",
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("", "*bad marker arguments: path: Field required*"),
        ('"tickets.jsonl", Ticket, "extra"', "*too many arguments to the marker*"),
        ('"tickets.jsonl", model="Ticket"', "*bad marker arguments: model: *"),
    ],
)
def test_bad_marker_arguments_are_clear_errors(
    pytester: pytest.Pytester, arguments: str, message: str
) -> None:
    write_cases(pytester, "tickets.jsonl", '{"id": "a", "subject": "x"}\n')
    make_project(pytester, TICKETS_TEST.replace('"tickets.jsonl", model=Ticket', arguments))

    result = pytester.runpytest()

    assert_collection_error(result, message)


def test_bad_marker_error_names_the_test_once(pytester: pytest.Pytester) -> None:
    write_cases(pytester, "tickets.jsonl", '{"id": "a", "subject": "x"}\n')
    make_project(pytester, TICKETS_TEST.replace("model=Ticket", "modle=Ticket"))

    result = pytester.runpytest()

    result.assert_outcomes(errors=1)
    result.stdout.no_fnmatch_line("*test_tickets.py::test_ticket: test_tickets.py::test_ticket:*")


def test_case_file_error_is_reported_once(pytester: pytest.Pytester) -> None:
    path = write_cases(pytester, "tickets.jsonl", '{"id": "a"\n')
    make_project(pytester)

    # Without the short summary, which repeats the message in full when CI is set.
    result = pytester.runpytest("-rN")

    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    assert "During handling of the above exception" not in output
    assert output.count(f"{path}:1: not valid JSON") == 1


def test_marker_without_the_case_fixture_is_a_clear_error(pytester: pytest.Pytester) -> None:
    write_cases(pytester, "tickets.jsonl", '{"id": "a", "subject": "x"}\n')
    make_project(pytester, TICKETS_TEST.replace("(chain_case)", "()").replace("chain_case.", ""))

    result = pytester.runpytest()

    assert_collection_error(
        result,
        "*test_tickets.py::test_ticket: @pytest.mark.promptflow_cases needs the test to take"
        " the 'chain_case' fixture*",
    )


def test_case_fixture_without_the_marker_is_a_clear_failure(pytester: pytest.Pytester) -> None:
    make_project(
        pytester,
        """
        def test_ticket(chain_case):
            pass
        """,
    )

    result = pytester.runpytest()

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_ticket*",
            "test_tickets.py::test_ticket: the chain_case fixture needs"
            " @pytest.mark.promptflow_cases('cases.jsonl') on the test",
        ]
    )
    assert "Traceback" not in result.stdout.str()


# --- configuration -------------------------------------------------------------


def test_ini_cases_dir_changes_the_folder(pytester: pytest.Pytester) -> None:
    folder = pytester.path / "data" / "cases"
    folder.mkdir(parents=True)
    (folder / "tickets.jsonl").write_text('{"id": "from-data", "subject": "x"}\n')
    write_cases(pytester, "tickets.jsonl", '{"id": "from-fixtures", "subject": "x"}\n')
    pytester.makepyfile(models=MODELS, test_tickets=TICKETS_TEST)
    pytester.makeini("[pytest]\npromptflow_cases_dir = data/cases\n")

    result = pytester.runpytest("-v")

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_ticket[[]from-data[]] PASSED*"])


def test_cases_dir_is_relative_to_the_rootdir_not_the_test(pytester: pytest.Pytester) -> None:
    write_cases(pytester, "tickets.jsonl", '{"id": "root", "subject": "x"}\n')
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(models=MODELS)
    tests = pytester.mkdir("tests")
    (tests / "test_tickets.py").write_text(TICKETS_TEST)
    pytester.syspathinsert()

    result = pytester.runpytest("-v", "tests")

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_ticket[[]root[]] PASSED*"])


def test_cases_dir_from_pyproject(pytester: pytest.Pytester) -> None:
    (pytester.path / "cases").mkdir()
    (pytester.path / "cases" / "tickets.jsonl").write_text('{"id": "toml", "subject": "x"}\n')
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\npromptflow_cases_dir = "cases"\n')
    pytester.makepyfile(models=MODELS, test_tickets=TICKETS_TEST)

    result = pytester.runpytest("-v")

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_ticket[[]toml[]] PASSED*"])


# --- the id field and the case model -----------------------------------------


def test_a_model_that_declares_id_receives_it(pytester: pytest.Pytester) -> None:
    write_cases(
        pytester,
        "tickets.jsonl",
        '{"id": "T-1", "subject": "Login fails"}\n{"id": "T-2", "subject": "Slow page"}\n',
    )
    make_project(
        pytester,
        """
        import pytest
        from pydantic import BaseModel

        class Ticket(BaseModel):
            id: str
            subject: str

        @pytest.mark.promptflow_cases("tickets.jsonl", model=Ticket)
        def test_ticket(chain_case):
            assert chain_case.input.id == chain_case.id
            assert chain_case.data["id"] == chain_case.id
        """,
    )

    result = pytester.runpytest("-v")

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_ticket?T-1? PASSED*", "*test_ticket?T-2? PASSED*"])


def test_a_model_that_aliases_id_receives_it(tmp_path: Path) -> None:
    from pydantic import BaseModel, ConfigDict, Field

    class Ticket(BaseModel):
        model_config = ConfigDict(populate_by_name=True)
        ticket_id: str = Field(alias="id")
        subject: str

    path = tmp_path / "tickets.jsonl"
    path.write_text('{"id": "T-1", "subject": "Login fails"}\n', encoding="utf-8")

    [case] = load_cases(path, Ticket)

    assert case.input.ticket_id == "T-1"


def test_a_model_without_id_never_sees_it_even_when_it_forbids_extras(tmp_path: Path) -> None:
    from pydantic import BaseModel, ConfigDict

    class Ticket(BaseModel):
        model_config = ConfigDict(extra="forbid")
        subject: str

    path = tmp_path / "tickets.jsonl"
    path.write_text('{"id": "T-1", "subject": "Login fails"}\n', encoding="utf-8")

    [case] = load_cases(path, Ticket)

    assert case.id == "T-1"
    assert case.input == Ticket(subject="Login fails")
