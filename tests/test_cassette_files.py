"""Recorded run files: only regular, well-formed files are read, none is lost or
overwritten by a run that failed, nothing half-written outlives the next run, pruning
happens only when the run saw every test, and file names are safe on every system."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llm_fakes import Project

from pytest_promptflow import CassetteError
from pytest_promptflow.cassette import reading as cassette_reading
from pytest_promptflow.cassette.format import (
    Latency,
    RecordedRequest,
    RecordedRun,
    recorded_run_path,
    remove_orphan_temporaries,
    serialize_recorded_run,
    write_atomically,
)
from pytest_promptflow.cassette.reading import (
    MAX_NESTING,
    StoredInteractions,
    read_recorded_run,
    request_keys,
)

ASK = """
    import pytest
    from endpoint import openai_client, save

    @pytest.mark.promptflow
    def test_ask():
        reply = openai_client().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "What is gravity?"}]
        )
        save("answer", reply.choices[0].message.content)
    """
CASSETTE = "test_chain/test_ask.json"
VALID: dict[str, Any] = {
    "format": 1,
    "test": "test_chain.py::test_ask",
    "interactions": [
        {
            "request": {"method": "POST", "url": "http://x.test/v1", "body": {"a": 1}},
            "response": {"status": 200, "body_base64": "AAEC"},
        }
    ],
}


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)
"""Any JSON value (and NaN and the infinities, which a file may hold but JSON has not)."""


@contextlib.contextmanager
def compact_above_bytes(limit: int) -> Iterator[None]:
    """Files above ``limit`` bytes read into compact JSON (hypothesis tests cannot use
    the monkeypatch fixture)."""
    saved = cassette_reading.COMPACT_ABOVE_BYTES
    cassette_reading.COMPACT_ABOVE_BYTES = limit
    try:
        yield
    finally:
        cassette_reading.COMPACT_ABOVE_BYTES = saved


def recorded(project: Project) -> Path:
    project.write(ASK)
    project.record().assert_outcomes(passed=1)
    project.llm.reset()
    return project.cassettes / CASSETTE


# -- what is read -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 5000 + "]" * 5000, "is nested too deeply to read"),
        (
            json.dumps({**VALID, "x": [[[[0]]]]}).replace("[[[[0]]]]", "[" * 300 + "]" * 300),
            "is nested more than 200 levels deep at x" + "[0]" * 200,
        ),
        (
            '{"format": 1, "test": ' + "9" * 5000 + "}",
            "holds a number that cannot be read at line 1",
        ),
        ('{"format": 1, "test": NaN}', "holds a number that cannot be read"),
        (
            json.dumps({**VALID, "format": True}),
            "has format True, but this pytest-promptflow reads",
        ),
        (json.dumps({**VALID, "format": 1.0}), "has format 1.0, but this pytest-promptflow reads"),
        (json.dumps({**VALID, "format": "1"}), "has format '1'"),
        (
            json.dumps(VALID).replace('"AAEC"', '"not base64!"'),
            "at interactions.0.response.body_base64: Value error, is not valid base64",
        ),
        (
            json.dumps(VALID).replace('"status": 200', '"status": 99999'),
            "at interactions.0.response.status: Input should be less than or equal to 599",
        ),
        (
            json.dumps(VALID).replace('"status": 200', '"status": "200"'),
            "at interactions.0.response.status: Input should be a valid integer",
        ),
        (
            json.dumps(VALID).replace('"method": "POST"', '"method": "PO ST"'),
            "at interactions.0.request.method: String should match pattern",
        ),
        (
            json.dumps(VALID).replace('"body": {"a": 1}', '"headers": {"x": ["a\\r\\nb"]}'),
            "at interactions.0.request.headers: Value error, the value of header 'x' holds",
        ),
        ('{"format": 1, "test": "\\ud800"}', "holds an invalid Unicode character at test"),
    ],
    ids=[
        "deep-json",
        "deep-body",
        "huge-int",
        "nan",
        "format-true",
        "format-float",
        "format-string",
        "bad-base64",
        "bad-status",
        "string-status",
        "bad-method",
        "header-injection",
        "lone-surrogate",
    ],
)
def test_malformed_content_is_a_cassette_error_naming_the_file_and_place(
    tmp_path: Path, text: str, message: str, reading: str
) -> None:
    path = tmp_path / "run.json"
    path.write_text(text)

    with pytest.raises(CassetteError) as raised:
        read_recorded_run(path)

    assert str(raised.value).startswith(f"cassette {path} ")
    assert message in str(raised.value)


@pytest.mark.parametrize("innermost", [1, []], ids=["number", "empty-array"])
@pytest.mark.parametrize("levels", range(195, 200))
def test_a_body_is_nested_too_deeply_at_the_same_depth_whatever_the_reading(
    tmp_path: Path, levels: int, innermost: Any, reading: str
) -> None:
    body: Any = innermost
    for _ in range(levels):
        body = [body]
    document = json.loads(json.dumps(VALID))
    document["interactions"][0]["request"]["body"] = body
    path = tmp_path / "run.json"
    path.write_text(json.dumps(document))
    # The innermost value is inside the body's arrays and four more: the document, its
    # interactions, the interaction and its request.
    if levels + 4 <= MAX_NESTING:
        assert read_recorded_run(path) is not None
    else:
        with pytest.raises(CassetteError, match="is nested more than 200 levels deep"):
            read_recorded_run(path)


MANY: dict[str, Any] = {
    "format": 1,
    "test": "test_chain.py::test_ask",
    "case": "c1",
    "interactions": [
        {
            "step": "ask",
            "prompts": {"ask": f"v{number}"},
            "request": {
                "method": "POST",
                "url": "http://x.test/v1",
                "body": {"n": number, "items": [{"i": i} for i in range(number * 150)]},
            },
            "response": {"status": 200, "body": {"answer": f"réponse {number} ✓"}},
            "latency": {"first_byte_ms": number, "total_ms": number + 1},
        }
        for number in range(3)
    ],
    "steps": [{"step": "ask", "inputs": {"n": 1}, "output": "réponse", "responses": ["abc"]}],
    "prompt_sources": {"v0": "Ask {{ n }}"},
}


@pytest.mark.parametrize(
    "layout",
    [
        lambda document: json.dumps(document, indent=2, ensure_ascii=False),
        lambda document: json.dumps(document),
        lambda document: json.dumps(document, separators=(",", ":")),
        lambda document: json.dumps(document, indent="\t").replace("\n", "\r\n") + "\r\n",
        lambda document: json.dumps(dict(reversed(list(document.items()))), indent=1),
        lambda document: json.dumps(document)[:-1] + ', "interactions": []}',
    ],
    ids=["as-written", "one-line", "compact", "tabs-crlf", "fields-reversed", "repeated-field"],
)
def test_a_recorded_run_reads_the_same_however_its_json_is_laid_out(
    tmp_path: Path, layout: Any, reading: str
) -> None:
    text = layout(MANY)
    path = tmp_path / "run.json"
    path.write_text(text, encoding="utf-8")

    run = read_recorded_run(path)

    # What reading the whole document at once gives, the last of a repeated field winning.
    expected = RecordedRun.model_validate(json.loads(text))
    assert run is not None
    assert run.model_dump(exclude={"interactions"}) == expected.model_dump(exclude={"interactions"})
    assert list(run.interactions) == list(expected.interactions)
    assert [run.interactions[i] for i in range(len(run.interactions))] == expected.interactions


def test_a_small_plain_file_is_read_at_once_and_only_an_unusual_one_carefully(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    careful_readings: list[str] = []
    careful = cassette_reading._validated_one_by_one

    def counted(document: dict[str, Any]) -> RecordedRun | None:
        careful_readings.append(document["test"])
        return careful(document)

    monkeypatch.setattr(cassette_reading, "_validated_one_by_one", counted)
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(VALID, indent=2), encoding="utf-8")
    # Valid, but "NaN" anywhere in the text is left to the careful reading.
    unusual = tmp_path / "unusual.json"
    unusual.write_text(json.dumps({**VALID, "test": "test_NaN.py::test_ask"}), encoding="utf-8")

    assert read_recorded_run(plain) == RecordedRun.model_validate(VALID)
    assert careful_readings == [], "a plain file is validated at once"
    assert read_recorded_run(unusual) == RecordedRun.model_validate(
        {**VALID, "test": "test_NaN.py::test_ask"}
    )
    assert careful_readings == ["test_NaN.py::test_ask"]


def test_a_large_file_keeps_its_interactions_compact_and_keyed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cassette_reading, "COMPACT_ABOVE_BYTES", 0)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(MANY, indent=2))
    asked: list[str] = []

    def key_of(request: RecordedRequest) -> str:
        asked.append(request.url)
        return f"key-{request.body['n']}"

    run = read_recorded_run(path, key_of)

    assert run is not None
    assert isinstance(run.interactions, StoredInteractions)
    assert request_keys(run.interactions, key_of) == ["key-0", "key-1", "key-2"]
    assert len(asked) == 3  # computed as the file was read, not again
    assert run.interactions[1].latency == Latency(first_byte_ms=1, total_ms=2)
    assert run.interactions[1] is not run.interactions[1]  # parsed each time, never kept
    assert [i.request.body["n"] for i in run.interactions[1:]] == [1, 2]
    # Written back, the run is the file it was read from.
    assert serialize_recorded_run(run) == serialize_recorded_run(RecordedRun.model_validate(MANY))


def test_only_a_regular_file_is_read(tmp_path: Path) -> None:
    link = tmp_path / "zero.json"
    link.symlink_to("/dev/zero")
    with pytest.raises(CassetteError, match="is a symbolic link; only regular files are read"):
        read_recorded_run(link)

    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(CassetteError, match="is not a regular file"):
        read_recorded_run(fifo)

    folder = tmp_path / "folder.json"
    folder.mkdir()
    with pytest.raises(CassetteError, match="is not a regular file"):
        read_recorded_run(folder)


def test_a_file_over_the_size_limit_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps(VALID))
    monkeypatch.setattr(cassette_reading, "MAX_RECORDED_RUN_BYTES", path.stat().st_size - 1)

    with pytest.raises(CassetteError, match="is larger than 0 MiB, the most a recorded run"):
        read_recorded_run(path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_VALUES)
def test_any_json_reads_as_a_recorded_run_or_raises_only_cassette_error(value: Any) -> None:
    fuzzed = Path(os.environ.get("TMPDIR", "/tmp")) / f"fuzz-{os.getpid()}.json"
    for document in (
        value,
        {**VALID, "interactions": value},
        {"format": 1, "test": "t", **(value if isinstance(value, dict) else {"steps": value})},
    ):
        fuzzed.write_text(json.dumps(document))
        for compact_above in (0, cassette_reading.COMPACT_ABOVE_BYTES):
            with compact_above_bytes(compact_above), contextlib.suppress(CassetteError):
                read_recorded_run(fuzzed)
    fuzzed.unlink()


def careful_reading(path: Path) -> RecordedRun | None:
    """The recorded run as the careful reading, part by part, gives it."""
    at_once = cassette_reading._validated_at_once
    cassette_reading._validated_at_once = lambda data: None  # type: ignore[assignment]
    try:
        return read_recorded_run(path)
    finally:
        cassette_reading._validated_at_once = at_once


PLACES = st.sampled_from(["format", "test", "body", "output", "steps", "extra", "interactions"])


def with_value(value: Any, place: str) -> dict[str, Any]:
    """A valid recorded run with ``value`` put at ``place``."""
    document = json.loads(json.dumps(VALID))
    if place in ("format", "test", "steps", "interactions"):
        document[place] = value
    elif place == "body":
        document["interactions"][0]["request"]["body"] = value
    elif place == "output":
        document["steps"] = [{"step": "ask", "output": value, "responses": ["abc"]}]
    else:
        document[str(value)[:20]] = value
    return document


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_VALUES, PLACES)
def test_a_small_file_read_at_once_is_what_the_careful_reading_gives(
    value: Any, place: str
) -> None:
    data = json.dumps(with_value(value, place)).encode("utf-8")
    at_once = cassette_reading._validated_at_once(data)
    if at_once is None:
        return  # left to the careful reading
    fuzzed = Path(os.environ.get("TMPDIR", "/tmp")) / f"fuzz-at-once-{os.getpid()}.json"
    fuzzed.write_bytes(data)
    try:
        assert careful_reading(fuzzed) == at_once
    finally:
        fuzzed.unlink()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_VALUES, PLACES)
def test_a_file_read_as_compact_json_is_what_the_careful_reading_gives(
    value: Any, place: str
) -> None:
    fuzzed = Path(os.environ.get("TMPDIR", "/tmp")) / f"fuzz-compact-{os.getpid()}.json"
    fuzzed.write_text(json.dumps(with_value(value, place)), encoding="utf-8")
    try:
        try:
            careful: RecordedRun | str | None = careful_reading(fuzzed)
        except CassetteError:
            careful = "refused"
        with compact_above_bytes(0):
            try:
                compact: RecordedRun | str | None = read_recorded_run(fuzzed)
            except CassetteError:
                compact = "refused"
        assert compact == careful
    finally:
        fuzzed.unlink()


@pytest.mark.parametrize(
    "text",
    [
        '{"format": 1, "test": "a", "test": "b"}',
        '{"test": "a"}',
        '{"format": 2, "test": "a"}',
        '{"format": 1, "test": "a", "steps": [{"step": "s", "output": NaN}]}',
        '{"format": 1, "test": "NaN"}',
        '{"format": 1, "test": "\\ud800"}',
        '{"format": 1, "test": "\\ud83d\\ude00"}',
        '{"format": 1, "test": "a", "steps": [{"step": "s", "output": ' + "9" * 4300 + "}]}",
        '{"format": 1, "test": "a", "steps": [{"step": "s", "output": 1e999}]}',
        '{"format": 1, "test": "a", "steps": [{"step": "s", "output": '
        + "[" * 198
        + "]" * 198
        + "}]}",
        '{"format": 1, "test": "a", "steps": [{"step": "s", "output": '
        + "[" * 197
        + "]" * 197
        + "}]}",
        # 201 levels, the innermost empty, its strings full of brackets and escapes.
        '{"format": 1, "test": "a", "steps": [{"step": "s", "output": '
        + '[{"]": "\\\\", "\\"[": ' * 98
        + "[{}]"
        + "}]" * 98
        + "}]}",
    ],
    ids=[
        "repeated-field",
        "no-format",
        "newer-format",
        "nan",
        "nan-in-a-string",
        "lone-surrogate",
        "surrogate-pair",
        "long-int",
        "huge-float",
        "deep",
        "as-deep-as-allowed",
        "deep-with-an-empty-end",
    ],
)
def test_what_is_read_at_once_reads_the_same_carefully(tmp_path: Path, text: str) -> None:
    path = tmp_path / "run.json"
    path.write_text(text, encoding="utf-8")
    at_once = cassette_reading._validated_at_once(path.read_bytes())
    try:
        careful = careful_reading(path)
    except CassetteError:
        assert at_once is None
    else:
        assert at_once is None or at_once == careful


def nesting_of(value: Any) -> int:
    if isinstance(value, dict | list):
        items = value.values() if isinstance(value, dict) else value
        return 1 + max((nesting_of(item) for item in items), default=0)
    return 0


TEXT_OF_BRACKETS = st.text(alphabet='[]{}"\\ a\n\u00e9', max_size=8)


@settings(max_examples=500, deadline=None)
@given(
    st.recursive(
        st.none() | st.integers() | TEXT_OF_BRACKETS,
        lambda children: st.lists(children) | st.dictionaries(TEXT_OF_BRACKETS, children),
        max_leaves=40,
    ),
    st.booleans(),
)
def test_the_nesting_counted_from_the_text_is_the_nesting_of_the_value(
    value: Any, ascii_only: bool
) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only, indent=None if ascii_only else 1)
    assert cassette_reading._nesting(text.encode("utf-8")) == nesting_of(value)


@pytest.mark.parametrize("levels", [MAX_NESTING, MAX_NESTING + 1, 1_000_000])
def test_the_nesting_of_a_deep_text_is_counted_in_one_pass(levels: int) -> None:
    text = ("[" * levels + '"]}\\\\\\""' + "]" * levels).encode("utf-8")
    assert cassette_reading._nesting(text) == levels


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_read_as_a_recorded_run_or_raise_only_cassette_error(data: bytes) -> None:
    fuzzed = Path(os.environ.get("TMPDIR", "/tmp")) / f"fuzz-bytes-{os.getpid()}.json"
    fuzzed.write_bytes(data)
    try:
        for compact_above in (0, cassette_reading.COMPACT_ABOVE_BYTES):
            with compact_above_bytes(compact_above), contextlib.suppress(CassetteError):
                read_recorded_run(fuzzed)
    finally:
        fuzzed.unlink()


@pytest.mark.parametrize("mode", ["none", "new", "all"])
@pytest.mark.parametrize("format_value", ["true", "1.0"])
def test_a_file_that_could_not_be_read_is_never_rewritten(
    project: Project, mode: str, format_value: str
) -> None:
    path = recorded(project)
    text = path.read_text().replace('"format": 1', f'"format": {format_value}', 1)
    path.write_text(text)

    result = project.record(mode=mode)

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*cassette {path} has format {format_value.title()}*"])
    assert path.read_text() == text
    assert project.llm.requests == []


def test_a_symlinked_cassette_is_refused_and_left_alone(project: Project) -> None:
    path = recorded(project)
    path.unlink()
    path.symlink_to("/dev/zero")

    result = project.record(mode="all")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*cassette {path} is a symbolic link*"])
    assert path.is_symlink()
    assert project.llm.requests == []


# -- nothing lost by a failing phase ------------------------------------------------------


@pytest.mark.parametrize("phase", ["setup", "teardown"])
def test_a_failing_fixture_never_overwrites_the_recording(project: Project, phase: str) -> None:
    path = recorded(project)
    before = path.read_bytes()
    project.pytester.makeconftest(
        f"""
        import pytest

        @pytest.fixture(autouse=True)
        def flaky():
            if {phase == "setup"!r}:
                raise RuntimeError("setup failed")
            yield
            raise RuntimeError("teardown failed")
        """
    )

    result = project.record(mode="all")

    result.assert_outcomes(**({"errors": 1} if phase == "setup" else {"passed": 1, "errors": 1}))
    assert path.read_bytes() == before


# -- temporary files ---------------------------------------------------------------------


def test_a_temporary_file_left_by_a_killed_run_is_removed_by_the_next_run(
    project: Project,
) -> None:
    path = recorded(project)
    orphan = path.parent / ".tmp-test_ask-k2j4h1.json"
    orphan.write_text("{" * 1000)
    stale = time.time() - 60
    os.utime(orphan, (stale, stale))

    with project.llm.offline():
        project.run().assert_outcomes(passed=1)

    assert not orphan.exists()
    assert sorted(p.name for p in path.parent.iterdir()) == ["test_ask.json"]


def test_a_temporary_file_being_written_is_left_alone(tmp_path: Path) -> None:
    folder = tmp_path / "cassettes"
    folder.mkdir()
    writing = folder / ".tmp-test_a-abc.json"
    orphan = folder / ".tmp-test_b-def.json"
    fresh = folder / ".tmp-test_c-ghi.json"
    for temporary in (writing, orphan, fresh):
        temporary.write_text("{")
    stale = time.time() - 60
    os.utime(writing, (stale, stale))
    os.utime(orphan, (stale, stale))

    with writing.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as write_atomically holds it
        removed = remove_orphan_temporaries(folder, older_than=time.time() - 30)

    assert removed == [orphan]
    assert writing.exists()
    assert fresh.exists(), "newer than the run: perhaps another worker's write"


def test_a_write_is_flushed_to_disk_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(
        os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1]
    )

    write_atomically(tmp_path / "run.json", "{}\n")

    assert events[:2] == ["fsync", "replace"]
    assert (tmp_path / "run.json").read_text() == "{}\n"


# -- pruning -----------------------------------------------------------------------------

TWO_TESTS = """
    import pytest
    from pytest_promptflow import step

    @step
    def double(n: int) -> int:
        return n * 2

    @pytest.mark.promptflow
    def test_kept():
        double(1)

    @pytest.mark.promptflow
    @pytest.mark.slow
    def test_failing_before():
        double(2)
    """


@pytest.mark.parametrize(
    ("selection", "reason"),
    [
        (["--lf"], "the run selected some tests only (--lf)"),
        (["--sw"], "the run selected some tests only (--sw)"),
        (["-m", "not slow"], "the run selected some tests only (-m)"),
        (["-k", "kept"], "the run selected some tests only (-k)"),
        (
            ["--deselect", "test_chain.py::test_kept"],
            "the run selected some tests only (--deselect)",
        ),
        (["-p", "deselector"], "1 collected test(s) were deselected"),
        (["-p", "dropper"], "a plugin left out 1 collected test(s)"),
    ],
    ids=["lf", "sw", "m", "k", "deselect", "deselecting-plugin", "dropping-plugin"],
)
def test_accepting_a_narrowed_run_prunes_nothing_and_says_why(
    project: Project, selection: list[str], reason: str
) -> None:
    project.pytester.makeini("[pytest]\nmarkers =\n    slow: slow\n")
    project.write(TWO_TESTS)
    project.pytester.syspathinsert()
    project.pytester.makepyfile(
        deselector="""
        def pytest_collection_modifyitems(config, items):
            dropped = [i for i in items if "failing" in i.name]
            items[:] = [i for i in items if i not in dropped]
            config.hook.pytest_deselected(items=dropped)
        """,
        dropper="""
        def pytest_collection_modifyitems(items):
            items[:] = [i for i in items if "failing" not in i.name]
        """,
    )
    project.pytester.runpytest("--promptflow-record=all").assert_outcomes(passed=2)
    # A removed case's file, which accepting the whole module would prune.
    stale = project.cassettes / "test_chain/test_removed.json"
    stale.write_text((project.cassettes / "test_chain/test_kept.json").read_text())
    before = project.files()

    result = project.pytester.runpytest(*selection, "--promptflow-accept")

    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    result.stdout.fnmatch_lines([f"recorded runs not pruned: {reason}; *"])
    assert project.files() == before

    result = project.pytester.runpytest("--promptflow-accept")
    result.stdout.fnmatch_lines(["pruned 1 recorded run(s) that no test owns any more"])
    assert not stale.exists()


# -- file names --------------------------------------------------------------------------


def test_case_ids_that_differ_only_in_case_get_different_files_everywhere() -> None:
    names = [
        recorded_run_path(Path("c"), Path("test_x.py"), "test_t", case).name
        for case in ["comet", "Comet", "COMET"]
    ]

    assert names[0] == "comet.json"
    assert len({name.lower() for name in names}) == 3


@pytest.mark.parametrize("reserved", ["CON", "nul", "aux.x", "COM1", "lpt9", "PRN"])
def test_names_reserved_on_windows_are_never_used(reserved: str) -> None:
    path = recorded_run_path(Path("c"), Path("con/test_x.py"), reserved, reserved)

    for part in path.parts:
        assert part.split(".")[0].upper() not in {"CON", "NUL", "AUX", "COM1", "LPT9", "PRN"}


def test_a_recording_under_its_old_name_replays_and_moves_when_rewritten(
    project: Project,
) -> None:
    (project.path / "fixtures").mkdir()
    (project.path / "fixtures" / "topics.jsonl").write_text(
        '{"id": "Comet", "topic": "comets"}\n{"id": "comet", "topic": "tails"}\n'
    )
    project.write(
        """
        import pytest
        from endpoint import openai_client

        @pytest.mark.promptflow_cases("topics.jsonl")
        def test_topic(chain_case):
            openai_client().chat.completions.create(
                model="m", messages=[{"role": "user", "content": chain_case.input["topic"]}]
            )
        """
    )
    project.record().assert_outcomes(passed=2)
    digest = hashlib.sha256(b"Comet").hexdigest()[:6]
    assert sorted(project.files()) == [
        f"test_chain/test_topic/Comet-{digest}.json",
        "test_chain/test_topic/comet.json",
    ]
    # As an older version named it: Comet.json, beside comet.json (on Linux).
    new = project.cassettes / f"test_chain/test_topic/Comet-{digest}.json"
    old = project.cassettes / "test_chain/test_topic/Comet.json"
    new.rename(old)
    before = project.files()

    with project.llm.offline():
        project.run().assert_outcomes(passed=2)
        project.run("--promptflow-accept").assert_outcomes(passed=2)
    assert project.files() == before, "replaying and accepting unchanged keep the old name"

    project.record().assert_outcomes(passed=2)
    assert sorted(project.files()) == [
        f"test_chain/test_topic/Comet-{digest}.json",
        "test_chain/test_topic/comet.json",
    ]
    assert json.loads(new.read_text())["case"] == "Comet"


def test_an_old_name_holding_another_case_is_not_taken_for_this_one(project: Project) -> None:
    # On a case-insensitive file system, Comet.json opens comet.json: a different case.
    (project.path / "fixtures").mkdir()
    (project.path / "fixtures" / "topics.jsonl").write_text('{"id": "Comet", "topic": "x"}\n')
    project.write(
        textwrap.dedent(
            """
            import pytest

            @pytest.mark.promptflow_cases("topics.jsonl")
            def test_topic(chain_case):
                pass
            """
        )
    )
    old = project.cassettes / "test_chain/test_topic/Comet.json"
    old.parent.mkdir(parents=True)
    old.write_text(
        json.dumps({"format": 1, "test": "test_chain.py::test_topic[comet]", "case": "comet"})
    )

    project.record().assert_outcomes(passed=1)

    assert json.loads(old.read_text())["case"] == "comet", "left alone"
