"""The pytest entry point: options, markers, fixtures and hooks. No logic lives here."""

from __future__ import annotations

import os
import shlex
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_promptflow.cases import Case, load_cases
from pytest_promptflow.cassette.format import recorded_run_path
from pytest_promptflow.cassette.modes import IGNORED_BODY_FIELDS, RecordingOptions, RecordMode
from pytest_promptflow.errors import PromptflowError
from pytest_promptflow.report.summary import SessionTally
from pytest_promptflow.settings import CasesMarker, marker_options, resolve_record_mode
from pytest_promptflow.trace import Run

if TYPE_CHECKING:
    from _pytest.terminal import TerminalReporter

    from pytest_promptflow.cassette.recorder import CaseRecorder, HttpInterception

CASES_MARKER = "promptflow_cases"
TEST_MARKER = "promptflow"
CASE_FIXTURE = "chain_case"
RUN_FIXTURE = "chain_run"
RECORD_OPTION = "--promptflow-record"
INI_RECORD = "promptflow_record"
INI_CASES_DIR = "promptflow_cases_dir"
INI_CASSETTE_DIR = "promptflow_cassette_dir"
INI_IGNORED_FIELDS = "promptflow_ignore_body_fields"
INI_SECRET_PATTERNS = "promptflow_secret_patterns"
WORKER_OUTPUT_KEY = "promptflow_tally"

tally_key = pytest.StashKey[SessionTally]()
options_key = pytest.StashKey[RecordingOptions]()
recorder_key = pytest.StashKey["CaseRecorder"]()
failed_key = pytest.StashKey[bool]()
interception_key = pytest.StashKey["HttpInterception"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("promptflow", "pytest-promptflow: LLM prompt chains")
    group.addoption(
        RECORD_OPTION,
        choices=[mode.value for mode in RecordMode],
        default=None,
        help="none: replay only (default); new: record what has no recording; "
        "all: re-record every request the selected tests make.",
    )
    parser.addini(INI_RECORD, "Record mode when the command line gives none.", default="none")
    parser.addini(
        INI_CASES_DIR,
        "Folder, relative to the rootdir, that promptflow_cases paths are read from.",
        default="fixtures",
    )
    parser.addini(
        INI_CASSETTE_DIR, "Folder, relative to the rootdir, of recorded runs.", default="cassettes"
    )
    parser.addini(
        INI_IGNORED_FIELDS,
        "Top-level request body fields that do not change the answer, ignored in matching.",
        type="linelist",
        default=list(IGNORED_BODY_FIELDS),
    )
    parser.addini(
        INI_SECRET_PATTERNS,
        "Extra regular expressions of secrets to redact from recorded runs.",
        type="linelist",
        default=[],
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{CASES_MARKER}(path, model=None): run the test once per case of a JSON Lines or "
        f"JSON file under the cases folder; the {CASE_FIXTURE} fixture is the case.",
    )
    config.addinivalue_line(
        "markers", f"{TEST_MARKER}: record and replay this test's LLM calls even without cases."
    )
    try:
        mode = resolve_record_mode(
            config.getoption(RECORD_OPTION), config.getini(INI_RECORD), os.environ
        )
    except PromptflowError as error:
        raise pytest.UsageError(str(error)) from None
    config.stash[options_key] = RecordingOptions(
        mode=mode,
        ignored_body_fields=tuple(config.getini(INI_IGNORED_FIELDS)),
        secret_patterns=tuple(config.getini(INI_SECRET_PATTERNS)),
    )
    config.stash[tally_key] = SessionTally()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker(CASES_MARKER)
    if marker is None:
        return
    where = metafunc.definition.nodeid
    problem: str | None = None
    try:
        options = marker_options(CasesMarker, marker.args, marker.kwargs)
        folder = metafunc.config.rootpath / metafunc.config.getini(INI_CASES_DIR)
        cases = load_cases(folder / options.path, options.model)
    except PromptflowError as error:
        problem = str(error)
    # Failing outside the except block keeps the report to the message alone.
    if problem is not None:
        pytest.fail(f"{where}: {problem}", pytrace=False)
    if CASE_FIXTURE not in metafunc.fixturenames:
        pytest.fail(
            f"{where}: @pytest.mark.{CASES_MARKER} needs the test to take the "
            f"{CASE_FIXTURE!r} fixture",
            pytrace=False,
        )
    metafunc.parametrize(CASE_FIXTURE, cases, ids=[case.id for case in cases])


def _is_promptflow_test(item: pytest.Item) -> bool:
    fixtures = getattr(item, "fixturenames", ())
    return (
        item.get_closest_marker(CASES_MARKER) is not None
        or item.get_closest_marker(TEST_MARKER) is not None
        or CASE_FIXTURE in fixtures
        or RUN_FIXTURE in fixtures
    )


def _recorder_for(item: pytest.Item) -> CaseRecorder:
    from pytest_promptflow.cassette.recorder import CaseRecorder

    config = item.config
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get(CASE_FIXTURE) if callspec is not None else None
    cls = getattr(item, "cls", None)
    test_name = getattr(item, "originalname", item.name)
    path = recorded_run_path(
        config.rootpath / config.getini(INI_CASSETTE_DIR),
        item.path.relative_to(config.rootpath),
        f"{cls.__name__}.{test_name}" if cls is not None else test_name,
        callspec.id if callspec is not None else None,
    )
    return CaseRecorder(
        path,
        test_id=item.nodeid,
        case_id=case.id if isinstance(case, Case) else None,
        options=config.stash[options_key],
        record_command=f"pytest {shlex.quote(item.nodeid)} {RECORD_OPTION}={RecordMode.NEW.value}",
    )


def _interception(config: pytest.Config) -> HttpInterception:
    from pytest_promptflow.cassette.recorder import HttpInterception

    if interception_key not in config.stash:
        config.stash[interception_key] = HttpInterception()
    return config.stash[interception_key]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    if _is_promptflow_test(item):
        recorder = _recorder_for(item)
        problem: str | None = None
        try:
            recorder.start(_interception(item.config))
        except PromptflowError as error:
            problem = str(error)
        if problem is not None:
            pytest.fail(f"{item.nodeid}: {problem}", pytrace=False)
        item.stash[recorder_key] = recorder
    elif interception_key in item.config.stash:
        # Tests that do not use promptflow talk to the network unpatched.
        item.config.stash[interception_key].close()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    recorder = item.stash.get(recorder_key, None)
    if recorder is not None and report.when == "call" and recorder.misses:
        # The SDK may have wrapped or swallowed the miss; what matters is what was missing.
        report.outcome = "failed"
        report.longrepr = "\n\n".join(recorder.misses)
    if report.failed:
        item.stash[failed_key] = True
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    try:
        return (yield)
    finally:
        recorder = item.stash.get(recorder_key, None)
        if recorder is not None:
            del item.stash[recorder_key]
            item.config.stash[tally_key].add_calls(recorder.run.calls)
            problem: str | None = None
            try:
                recorder.stop(test_failed=item.stash.get(failed_key, False))
            except PromptflowError as error:
                problem = str(error)
            if problem is not None:
                pytest.fail(f"{item.nodeid}: {problem}", pytrace=False)


@pytest.fixture
def chain_case(request: pytest.FixtureRequest) -> Case:
    """The case this test runs, from its ``promptflow_cases`` marker."""
    pytest.fail(
        f"{request.node.nodeid}: the {CASE_FIXTURE} fixture needs "
        f"@pytest.mark.{CASES_MARKER}('cases.jsonl') on the test",
        pytrace=False,
    )


@pytest.fixture
def chain_run(request: pytest.FixtureRequest) -> Run:
    """The run of this test: every step call, in order, with inputs and outputs."""
    recorder: CaseRecorder = request.node.stash[recorder_key]
    return recorder.run


def record_mode(config: pytest.Config) -> str:
    """The session's record mode, ``"none"`` (replay only), ``"new"`` or ``"all"``; for
    conftest code that starts a local model server only when recording."""
    return resolve_record_mode(
        config.getoption(RECORD_OPTION), config.getini(INI_RECORD), os.environ
    ).value


@pytest.fixture(scope="session")
def promptflow_record_mode(pytestconfig: pytest.Config) -> str:
    """The record mode of this session: ``"none"`` (replay only), ``"new"`` or ``"all"``."""
    return pytestconfig.stash[options_key].mode.value


def pytest_sessionfinish(session: pytest.Session) -> None:
    if interception_key in session.config.stash:
        session.config.stash[interception_key].close()
    worker_output: dict[str, Any] | None = getattr(session.config, "workeroutput", None)
    if worker_output is not None:
        worker_output[WORKER_OUTPUT_KEY] = session.config.stash[tally_key].to_json()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    output = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY)
    if output:
        node.config.stash[tally_key].merge_json(output)


def pytest_terminal_summary(terminalreporter: TerminalReporter, config: pytest.Config) -> None:
    lines = config.stash[tally_key].summary_lines()
    if lines:
        terminalreporter.section("promptflow")
        for line in lines:
            terminalreporter.write_line(line)
