"""The pytest entry point: options, markers, fixtures and hooks. No logic lives here."""

from __future__ import annotations

from collections.abc import Generator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pytest

from pytest_promptflow.cases import Case, load_cases
from pytest_promptflow.errors import PromptflowError
from pytest_promptflow.report.summary import SessionTally
from pytest_promptflow.settings import CasesMarker, marker_options
from pytest_promptflow.trace import Run, recording_run

if TYPE_CHECKING:
    from _pytest.terminal import TerminalReporter

CASES_MARKER = "promptflow_cases"
TEST_MARKER = "promptflow"
CASE_FIXTURE = "chain_case"
RUN_FIXTURE = "chain_run"
INI_CASES_DIR = "promptflow_cases_dir"
WORKER_OUTPUT_KEY = "promptflow_tally"

tally_key = pytest.StashKey[SessionTally]()
run_key = pytest.StashKey[Run]()
exit_stack_key = pytest.StashKey[ExitStack]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("promptflow", "pytest-promptflow: LLM prompt chains")
    parser.addini(
        INI_CASES_DIR,
        "Folder, relative to the rootdir, that promptflow_cases paths are read from.",
        default="fixtures",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{CASES_MARKER}(path, model=None): run the test once per case of a JSON Lines or "
        f"JSON file under the cases folder; the {CASE_FIXTURE} fixture is the case.",
    )
    config.addinivalue_line(
        "markers", f"{TEST_MARKER}: record this test's step calls even without cases."
    )
    config.stash[tally_key] = SessionTally()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker(CASES_MARKER)
    if marker is None:
        return
    where = metafunc.definition.nodeid
    try:
        options = marker_options(CasesMarker, marker.args, marker.kwargs, where)
        folder = metafunc.config.rootpath / metafunc.config.getini(INI_CASES_DIR)
        cases = load_cases(folder / options.path, options.model)
    except PromptflowError as error:
        pytest.fail(f"{where}: {error}", pytrace=False)
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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    if _is_promptflow_test(item):
        callspec = getattr(item, "callspec", None)
        case = callspec.params.get(CASE_FIXTURE) if callspec is not None else None
        run = Run(case_id=case.id if isinstance(case, Case) else None, test_id=item.nodeid)
        stack = ExitStack()
        stack.enter_context(recording_run(run))
        item.stash[run_key] = run
        item.stash[exit_stack_key] = stack
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    try:
        return (yield)
    finally:
        stack = item.stash.get(exit_stack_key, None)
        if stack is not None:
            stack.close()
            item.config.stash[tally_key].add_calls(item.stash[run_key].calls)


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
    run: Run = request.node.stash[run_key]
    return run


def pytest_sessionfinish(session: pytest.Session) -> None:
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
