"""Prompts: strict rendering, content-hash versions, loading from files."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from pytest_promptflow import Prompt, PromptError, PromptRenderError
from pytest_promptflow.prompts import VERSION_LENGTH

CLASSIFY_SOURCE = "Classify this problem:\n{{ problem }}\nAnswer with a level from 1 to 5.\n"


def sha256_prefix(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


# --- rendering ---------------------------------------------------------------


def test_render_fills_the_variables_and_keeps_the_trailing_newline() -> None:
    prompt = Prompt.from_string(CLASSIFY_SOURCE, name="classify")

    rendered = prompt.render(problem="the vault is down")

    assert rendered == CLASSIFY_SOURCE.replace("{{ problem }}", "the vault is down")
    assert rendered.endswith("1 to 5.\n")


def test_render_reads_attributes_and_loops() -> None:
    prompt = Prompt.from_string(
        "{{ ticket.subject }}:{% for s in symptoms %} [{{ s }}]{% endfor %}", name="t"
    )

    class Ticket:
        subject = "Login fails"

    assert prompt.render(ticket=Ticket(), symptoms=["401", "timeout"]) == (
        "Login fails: [401] [timeout]"
    )


def test_undefined_variable_is_an_error_naming_the_prompt_and_the_variable() -> None:
    prompt = Prompt.from_string(CLASSIFY_SOURCE, name="classify")

    with pytest.raises(PromptRenderError) as info:
        prompt.render(problme="typo in the keyword")

    assert info.value.variable == "problem"
    assert info.value.prompt == "'classify'"
    assert str(info.value) == "prompt 'classify': undefined variable problem; pass it to render()"


def test_undefined_variable_in_a_loaded_prompt_names_its_file(tmp_path: Path) -> None:
    path = tmp_path / "classify.j2"
    path.write_text(CLASSIFY_SOURCE, encoding="utf-8")
    prompt = Prompt.load(path)

    with pytest.raises(PromptRenderError) as info:
        prompt.render()

    assert str(path) in str(info.value)
    assert "undefined variable problem" in str(info.value)
    assert info.value.variable == "problem"


def test_undefined_attribute_is_an_error_too() -> None:
    prompt = Prompt.from_string("{{ problem.product }}", name="p")

    with pytest.raises(PromptRenderError, match=r"'p'.*product"):
        prompt.render(problem={})


def test_variables_lists_the_top_level_names_the_template_reads() -> None:
    prompt = Prompt.from_string(
        "{{ a }} {% for x in items %}{{ x.b }}{% endfor %}{% set c = 1 %}{{ c }}{{ d.e }}",
        name="v",
    )

    assert prompt.variables == frozenset({"a", "items", "d"})
    assert Prompt.from_string("no variables here", name="plain").variables == frozenset()


# --- versions ----------------------------------------------------------------


def test_version_is_a_twelve_character_hex_hash_of_the_source() -> None:
    prompt = Prompt.from_string(CLASSIFY_SOURCE, name="classify")

    assert VERSION_LENGTH == 12
    assert re.fullmatch(r"[0-9a-f]{12}", prompt.version)
    assert prompt.version == sha256_prefix(CLASSIFY_SOURCE)


def test_version_of_a_fixed_source_is_a_known_value() -> None:
    # A pinned value: a change in how versions are computed would orphan every
    # recording made so far, so it must be a deliberate one.
    assert Prompt.from_string("Hello {{ name }}!\n", name="greet").version == "5c8a98c0168c"
    assert sha256_prefix("Hello {{ name }}!\n") == "5c8a98c0168c"


def test_version_does_not_depend_on_line_endings() -> None:
    unix = Prompt.from_string(CLASSIFY_SOURCE, name="classify")
    windows = Prompt.from_string(CLASSIFY_SOURCE.replace("\n", "\r\n"), name="classify")
    old_mac = Prompt.from_string(CLASSIFY_SOURCE.replace("\n", "\r"), name="classify")

    assert windows.version == unix.version
    assert old_mac.version == unix.version


def test_version_of_a_file_does_not_depend_on_its_line_endings(tmp_path: Path) -> None:
    (tmp_path / "unix.j2").write_bytes(CLASSIFY_SOURCE.encode())
    (tmp_path / "windows.j2").write_bytes(CLASSIFY_SOURCE.replace("\n", "\r\n").encode())

    assert Prompt.load(tmp_path / "unix.j2").version == Prompt.load(tmp_path / "windows.j2").version


@pytest.mark.parametrize(
    "edited",
    [
        pytest.param(CLASSIFY_SOURCE.replace("1 to 5", "1 to 4"), id="one character"),
        pytest.param(CLASSIFY_SOURCE.replace("this", "this "), id="a space"),
        pytest.param(CLASSIFY_SOURCE + "\n", id="a trailing newline"),
        pytest.param(CLASSIFY_SOURCE.rstrip("\n"), id="no trailing newline"),
        pytest.param(CLASSIFY_SOURCE.replace("{{ problem }}", "{{problem}}"), id="tag spacing"),
        pytest.param(CLASSIFY_SOURCE.replace("Answer", "\tAnswer"), id="a tab"),
        pytest.param(CLASSIFY_SOURCE.replace("Classify", "classify"), id="case"),
    ],
)
def test_any_edit_changes_the_version(edited: str) -> None:
    assert edited != CLASSIFY_SOURCE
    original = Prompt.from_string(CLASSIFY_SOURCE, name="classify")

    assert Prompt.from_string(edited, name="classify").version != original.version


def test_version_does_not_depend_on_the_name() -> None:
    first = Prompt.from_string(CLASSIFY_SOURCE, name="classify")
    second = Prompt.from_string(CLASSIFY_SOURCE, name="triage")

    assert first.version == second.version
    assert repr(first) == f"Prompt(name='classify', version='{first.version}')"


# --- loading -----------------------------------------------------------------


def test_name_defaults_to_the_file_stem_and_can_be_overridden(tmp_path: Path) -> None:
    path = tmp_path / "classify.j2"
    path.write_text(CLASSIFY_SOURCE, encoding="utf-8")

    assert Prompt.load(path).name == "classify"
    assert Prompt.load(path, name="urgency").name == "urgency"
    assert Prompt.load(path).path == path
    assert Prompt.load(str(path)).source == CLASSIFY_SOURCE


def test_missing_file_is_an_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "prompts" / "nope.j2"

    with pytest.raises(PromptError, match=re.escape(f"prompt file {missing} does not exist")):
        Prompt.load(missing)


def test_syntax_error_names_the_prompt_and_the_line() -> None:
    with pytest.raises(PromptError, match=r"prompt 'broken': syntax error at line 3: "):
        Prompt.from_string("first\nsecond\n{% if %}\n", name="broken")


def test_syntax_error_in_a_file_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.j2"
    path.write_text("line one\nline two\n{{ problem }\n", encoding="utf-8")

    with pytest.raises(PromptError) as info:
        Prompt.load(path)

    assert str(info.value).startswith(f"prompt {path}: syntax error at line 3: ")


# --- the same, as a user's test project sees it ------------------------------


def test_relative_path_is_resolved_against_the_loading_module(pytester: pytest.Pytester) -> None:
    # A decoy at the same relative path from the working directory: loading it
    # instead of the module's own prompt would render "decoy".
    pytester.mkdir("prompts")
    (pytester.path / "prompts" / "classify.j2").write_text("decoy\n", encoding="utf-8")
    package = pytester.mkpydir("ticketing")
    (package / "prompts").mkdir()
    (package / "prompts" / "classify.j2").write_text("Classify: {{ problem }}\n")
    (package / "chain.py").write_text(
        "from pytest_promptflow import Prompt\nCLASSIFY = Prompt.load('prompts/classify.j2')\n"
    )
    pytester.mkdir("elsewhere")
    pytester.makepyfile(
        test_chain="""
        import os
        from pathlib import Path

        def test_loads_the_prompt_next_to_the_module(monkeypatch):
            monkeypatch.chdir("elsewhere")
            from ticketing.chain import CLASSIFY

            assert Path.cwd().name == "elsewhere"
            assert CLASSIFY.render(problem="login") == "Classify: login\\n"
            assert CLASSIFY.name == "classify"
            assert CLASSIFY.path == Path(__file__).parent / "ticketing" / "prompts" / "classify.j2"
        """
    )
    pytester.syspathinsert()

    result = pytester.runpytest()

    result.assert_outcomes(passed=1)


def test_versions_and_names_as_a_project_sees_them(pytester: pytest.Pytester) -> None:
    pytester.mkdir("prompts")
    (pytester.path / "prompts" / "unix.j2").write_bytes(b"Classify {{ text }}\nBe brief.\n")
    (pytester.path / "prompts" / "windows.j2").write_bytes(b"Classify {{ text }}\r\nBe brief.\r\n")
    (pytester.path / "prompts" / "edited.j2").write_bytes(b"Classify {{ text }}\nBe brief. \n")
    pytester.makepyfile(
        test_versions="""
        import hashlib
        from pytest_promptflow import Prompt

        UNIX = Prompt.load("prompts/unix.j2")
        WINDOWS = Prompt.load("prompts/windows.j2")
        EDITED = Prompt.load("prompts/edited.j2")

        def test_versions():
            expected = hashlib.sha256(b"Classify {{ text }}\\nBe brief.\\n").hexdigest()[:12]
            assert UNIX.version == WINDOWS.version == expected
            assert EDITED.version != UNIX.version
            assert (UNIX.name, WINDOWS.name, EDITED.name) == ("unix", "windows", "edited")
            assert UNIX.variables == {"text"}
        """
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_strict_rendering_fails_the_test_with_file_and_variable(
    pytester: pytest.Pytester,
) -> None:
    pytester.mkdir("prompts")
    prompt_file = pytester.path / "prompts" / "draft.j2"
    prompt_file.write_text("Dear {{ customer }},\n{{ body }}\n", encoding="utf-8")
    pytester.makepyfile(
        test_draft="""
        from pytest_promptflow import Prompt

        DRAFT = Prompt.load("prompts/draft.j2")

        def test_draft():
            DRAFT.render(customer="Ada")
        """
    )

    result = pytester.runpytest()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [f"E *PromptRenderError: prompt {prompt_file}: undefined variable body; pass it to render*"]
    )


def test_missing_prompt_file_is_reported_at_collection(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_chain="""
        from pytest_promptflow import Prompt

        CLASSIFY = Prompt.load("prompts/clasify.j2")

        def test_never_runs():
            pass
        """
    )

    result = pytester.runpytest()

    result.assert_outcomes(errors=1)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [f"E *PromptError: prompt file {pytester.path / 'prompts' / 'clasify.j2'} does not exist"]
    )


def test_prompt_syntax_error_is_reported_with_file_and_line(pytester: pytest.Pytester) -> None:
    pytester.mkdir("prompts")
    prompt_file = pytester.path / "prompts" / "classify.j2"
    prompt_file.write_text("Classify:\n{{ problem }\nAnswer briefly.\n", encoding="utf-8")
    pytester.makepyfile(
        test_chain="""
        from pytest_promptflow import Prompt

        CLASSIFY = Prompt.load("prompts/classify.j2")

        def test_never_runs():
            pass
        """
    )

    result = pytester.runpytest()

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"E *PromptError: prompt {prompt_file}: syntax error at line 2: unexpected '}}'"]
    )
