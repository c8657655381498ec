"""The pytest entry point: options, markers, fixtures and hooks. No logic lives here."""

from __future__ import annotations

import asyncio
import copy
import inspect
import os
import shlex
import time
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_promptflow import isolation
from pytest_promptflow.budget import INI_BUDGET
from pytest_promptflow.budget import parse_budget as budget_policy
from pytest_promptflow.cases import Case, load_cases
from pytest_promptflow.cassette.format import (
    legacy_recorded_run_paths,
    recorded_run_path,
    remove_orphan_temporaries,
)
from pytest_promptflow.cassette.modes import IGNORED_BODY_FIELDS, RecordingOptions, RecordMode
from pytest_promptflow.cassette.scrub import Scrubber
from pytest_promptflow.drift.judging import use_judge
from pytest_promptflow.drift.policy import DEFAULT_SIMILARITY
from pytest_promptflow.errors import PromptflowError
from pytest_promptflow.quality.gate import INI_QUALITY, parse_requirements
from pytest_promptflow.report.render import report_paths
from pytest_promptflow.report.summary import CaseSamples
from pytest_promptflow.review.pending import PENDING_KEY, PendingChange, pending_path
from pytest_promptflow.session import PromptflowSession, SessionSettings
from pytest_promptflow.settings import (
    CasesMarker,
    PromptflowMarker,
    StepMarker,
    fraction,
    given_on_command_line,
    marker_options,
    policy_defaults,
    resolve_accept,
    resolve_record_mode,
    resolve_samples,
    samples_option,
    without_options,
)
from pytest_promptflow.steps import step_output, steps_defined_under
from pytest_promptflow.usage import load_prices

if TYPE_CHECKING:
    from _pytest.terminal import TerminalReporter

    from pytest_promptflow.cassette.guard import StepRequestGuard  # noqa: F401 (stash key)
    from pytest_promptflow.cassette.interception import HttpInterception
    from pytest_promptflow.cassette.samples import SampledRecording
    from pytest_promptflow.trace import Run

CASES_MARKER = "promptflow_cases"
STEP_MARKER = "promptflow_step"
TEST_MARKER = "promptflow"
CASE_FIXTURE = "chain_case"
RUN_FIXTURE = "chain_run"
STEP_FIXTURE = "recorded_step"
RECORD_OPTION = "--promptflow-record"
ACCEPT_OPTION = "--promptflow-accept"
REPORT_OPTION = "--promptflow-report"
USAGE_OPTION = "--promptflow-usage"
SAMPLES_OPTION = "--promptflow-samples"
REVIEW_OPTION = "--promptflow-review"
INI_SAMPLES = "promptflow_samples"
INI_MIN_PASS_RATE = "promptflow_min_pass_rate"
INI_OUTSIDE_SHARE = "promptflow_outside_share"
INI_ALPHA = "promptflow_alpha"
INI_RECORD = "promptflow_record"
INI_CASES_DIR = "promptflow_cases_dir"
INI_CASSETTE_DIR = "promptflow_cassette_dir"
INI_IGNORED_FIELDS = "promptflow_ignore_body_fields"
INI_SECRET_PATTERNS = "promptflow_secret_patterns"
INI_SECRET_NAMES = "promptflow_secret_names"
INI_SIMILARITY = "promptflow_similarity"
INI_STRUCTURE = "promptflow_structure_changes"
INI_TEXT_RULE = "promptflow_text_rule"
INI_USAGE = "promptflow_usage"
USAGE_TABLES = ("compact", "full")
WORKER_OUTPUT_KEY = "promptflow"

session_key = pytest.StashKey[PromptflowSession]()
recorder_key = pytest.StashKey["SampledRecording"]()
sampling_key = pytest.StashKey[tuple[int, float]]()
samples_key = pytest.StashKey[CaseSamples]()
pending_key = pytest.StashKey[list[PendingChange]]()
complete_key = pytest.StashKey[bool]()
"""Whether the test's setup, call and teardown passed, whatever the gate found: then its
recording is complete and may be written."""
interception_key = pytest.StashKey["HttpInterception"]()
started_key = pytest.StashKey[float]()
guard_key = pytest.StashKey["StepRequestGuard"]()
run_path_key = pytest.StashKey[tuple[Path, tuple[Path, ...]]]()
uses_promptflow_key = pytest.StashKey[bool]()
TEST_HOOKS = "promptflow-test-hooks"


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    # Registered right after this module, so their order among other plugins' hooks is
    # the module's; unregistered after collection when no test uses promptflow.
    pluginmanager.register(PromptflowTestHooks(), TEST_HOOKS)
    group = parser.getgroup("promptflow", "pytest-promptflow: LLM prompt chains")
    group.addoption(
        RECORD_OPTION,
        choices=[mode.value for mode in RecordMode],
        default=None,
        help="none: replay only (default); new: record what has no recording; "
        "all: re-record every request the selected tests make.",
    )
    group.addoption(
        ACCEPT_OPTION,
        action="store_true",
        default=False,
        help="Accept the current step outputs as golden; drop recordings no longer used.",
    )
    group.addoption(
        REPORT_OPTION,
        action="append",
        type=Path,
        default=None,
        metavar="PATH",
        help="Write the drift, usage and contract report to PATH (.md, .json or .html); "
        "give it again to write several.",
    )
    group.addoption(
        REVIEW_OPTION,
        action="store_true",
        default=False,
        help="Once the tests ran, review the changes they found step by step (as "
        "python -m pytest_promptflow review does).",
    )
    group.addoption(
        SAMPLES_OPTION,
        type=samples_option,
        default=None,
        metavar="N",
        help="Run every promptflow test's body N times, each sample recorded and replayed "
        "on its own (over the samples= of its marker and the ini key).",
    )
    group.addoption(
        USAGE_OPTION,
        choices=USAGE_TABLES,
        default=None,
        help="The usage table of the terminal summary: compact (default) or full.",
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
    parser.addini(
        INI_SECRET_NAMES,
        "Extra names of headers, query parameters and body fields that hold credentials.",
        type="linelist",
        default=[],
    )
    parser.addini(
        INI_TEXT_RULE,
        "facts (default) or similar: the rule of a text field that declares none.",
        default="facts",
    )
    parser.addini(
        INI_SIMILARITY,
        "With promptflow_text_rule = similar: the similarity (0 to 1) below which a text "
        "field without a rule drifts.",
        default=str(DEFAULT_SIMILARITY),
    )
    parser.addini(
        INI_STRUCTURE,
        "fail (default) or tolerate: whether a field that appears or disappears is drift.",
        default="fail",
    )
    parser.addini(
        INI_BUDGET,
        "Budget lines: 'tokens +20%', 'cost +10%', 'step_name: output_tokens +50'.",
        type="linelist",
        default=[],
    )
    parser.addini(
        INI_USAGE, "The terminal summary's usage table: compact or full.", default="compact"
    )
    parser.addini(INI_SAMPLES, "How many samples a promptflow test runs (default 1).", default="1")
    parser.addini(
        INI_MIN_PASS_RATE,
        "The share of a test's samples that must pass for the test to pass (default 1).",
        default="1",
    )
    parser.addini(
        INI_OUTSIDE_SHARE,
        "The share of new samples a field may have outside its golden spread (default 0).",
        default="0",
    )
    parser.addini(
        INI_ALPHA,
        "The level of Fisher's test that confirms a shift of a field's answers (default 0.05).",
        default="0.05",
    )
    parser.addini(
        INI_QUALITY,
        "Quality requirements: 'classify.category >= 90%', 'classify.level no worse', "
        "'draft.* no broken'.",
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
        "markers",
        f"{STEP_MARKER}(step): run the test once per recorded call of the step, alone; the "
        f"{STEP_FIXTURE} fixture calls it with its golden inputs.",
    )
    config.addinivalue_line(
        "markers", f"{TEST_MARKER}: record and replay this test's LLM calls even without cases."
    )
    arguments = config.invocation_params.args
    try:
        mode = resolve_record_mode(
            config.getoption(RECORD_OPTION),
            given_on_command_line(arguments, RECORD_OPTION),
            config.getini(INI_RECORD),
            os.environ,
        )
        accept = resolve_accept(
            config.getoption(ACCEPT_OPTION),
            given_on_command_line(arguments, ACCEPT_OPTION),
            os.environ,
        )
        reports = report_paths(config.getoption(REPORT_OPTION) or [])
        policy = policy_defaults(
            config.getini(INI_SIMILARITY),
            config.getini(INI_STRUCTURE),
            config.getini(INI_TEXT_RULE).strip(),
        )
        budget = budget_policy(config.getini(INI_BUDGET))
        prices = load_prices(_pyproject(config))
        requirements = parse_requirements(config.getini(INI_QUALITY))
        ini_samples = resolve_samples(None, None, config.getini(INI_SAMPLES))
        min_pass_rate = fraction(INI_MIN_PASS_RATE, config.getini(INI_MIN_PASS_RATE))
        outside_share = fraction(INI_OUTSIDE_SHARE, config.getini(INI_OUTSIDE_SHARE))
        alpha = fraction(INI_ALPHA, config.getini(INI_ALPHA))
        usage_table = config.getoption(USAGE_OPTION) or config.getini(INI_USAGE).strip()
        if usage_table not in USAGE_TABLES:
            raise PromptflowError(f"{INI_USAGE} = {usage_table!r} must be compact or full")
    except PromptflowError as error:
        raise pytest.UsageError(str(error)) from None
    recording = RecordingOptions(
        mode=mode,
        accept=accept,
        ignored_body_fields=tuple(config.getini(INI_IGNORED_FIELDS)),
        secret_patterns=tuple(config.getini(INI_SECRET_PATTERNS)),
    )
    settings = SessionSettings(
        recording=recording,
        policy=policy,
        budget=budget,
        prices=prices,
        reports=reports,
        usage_table="full" if usage_table == "full" else "compact",
        requirements=requirements,
        cassette_dir=config.rootpath / config.getini(INI_CASSETTE_DIR),
        samples=config.getoption(SAMPLES_OPTION),
        ini_samples=ini_samples,
        min_pass_rate=min_pass_rate,
        outside_share=outside_share,
        alpha=alpha,
    )
    scrubber = Scrubber(config.getini(INI_SECRET_PATTERNS), config.getini(INI_SECRET_NAMES))
    config.stash[session_key] = PromptflowSession(settings, scrubber)
    config.stash[started_key] = time.time()


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if not hasattr(config, "workerinput"):
        # What a killed run left half-written; pytest-xdist workers start after this.
        remove_orphan_temporaries(
            config.rootpath / config.getini(INI_CASSETTE_DIR),
            older_than=config.stash[started_key],
        )


def _pyproject(config: pytest.Config) -> Path:
    """Where prices are declared: the ini file when it is a pyproject.toml, else the
    rootdir's."""
    inipath = config.inipath
    if inipath is not None and inipath.name == "pyproject.toml":
        return inipath
    return config.rootpath / "pyproject.toml"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker(CASES_MARKER) is not None:
        _parametrize_over_cases(metafunc)
    if metafunc.definition.get_closest_marker(STEP_MARKER) is not None:
        _parametrize_over_recorded_calls(metafunc)


def _parametrize_over_cases(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker(CASES_MARKER)
    assert marker is not None
    where = metafunc.definition.nodeid
    problem: str | None = None
    try:
        options = marker_options(CasesMarker, marker.args, marker.kwargs)
        folder = metafunc.config.rootpath / metafunc.config.getini(INI_CASES_DIR)
        namespace = vars(metafunc.module)
        cases = load_cases(
            folder / options.path, options.model, lambda name: step_output(name, namespace)
        )
    except PromptflowError as error:
        problem = str(error)
    # Failing outside the except block keeps the report to the message alone.
    if problem is not None:
        pytest.fail(f"{where}: {problem}", pytrace=False)
    _require_fixture(metafunc, CASES_MARKER, CASE_FIXTURE)
    metafunc.config.stash[session_key].note_cases(where.partition("[")[0], cases)
    metafunc.parametrize(CASE_FIXTURE, cases, ids=[case.id for case in cases])


def _parametrize_over_recorded_calls(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker(STEP_MARKER)
    assert marker is not None
    where = metafunc.definition.nodeid
    cassette_dir = metafunc.config.rootpath / metafunc.config.getini(INI_CASSETTE_DIR)
    problem: str | None = None
    recording = metafunc.config.stash[session_key].settings.recording.mode is not RecordMode.NONE
    try:
        options = marker_options(StepMarker, marker.args, marker.kwargs)
        step = isolation.check_step(options.step, cassette_dir, vars(metafunc.module))
        calls = isolation.recorded_calls(cassette_dir, step)
        if not calls and not recording:
            raise isolation.no_recorded_calls(step, cassette_dir)
    except PromptflowError as error:
        problem = str(error)
    if problem is not None:
        pytest.fail(f"{where}: {problem}", pytrace=False)
    _require_fixture(metafunc, STEP_MARKER, STEP_FIXTURE)
    if not calls:
        # While recording, the chain tests record the calls these tests run next time;
        # the summary says so.
        metafunc.config.stash[session_key].waiting_step_tests[where] = step.name
    metafunc.parametrize(STEP_FIXTURE, calls, ids=isolation.call_ids(calls))


def _require_fixture(metafunc: pytest.Metafunc, marker: str, fixture: str) -> None:
    if fixture not in metafunc.fixturenames:
        pytest.fail(
            f"{metafunc.definition.nodeid}: @pytest.mark.{marker} needs the test to take the "
            f"{fixture!r} fixture",
            pytrace=False,
        )


PROMPTFLOW_MARKERS = frozenset({CASES_MARKER, STEP_MARKER, TEST_MARKER})
PROMPTFLOW_FIXTURES = frozenset({CASE_FIXTURE, RUN_FIXTURE, STEP_FIXTURE})


def _is_promptflow_test(item: pytest.Item) -> bool:
    fixtures = getattr(item, "fixturenames", ())
    return any(name in PROMPTFLOW_FIXTURES for name in fixtures) or any(
        marker.name in PROMPTFLOW_MARKERS for marker in item.iter_markers()
    )


def _recorded_run_paths(item: pytest.Item) -> tuple[Path, tuple[Path, ...]]:
    """The file of the item's recorded run, and where older versions named it; worked
    out once per item."""
    paths = item.stash.get(run_path_key, None)
    if paths is None:
        config = item.config
        callspec = getattr(item, "callspec", None)
        cls = getattr(item, "cls", None)
        test_name = getattr(item, "originalname", item.name)
        where = (
            config.rootpath / config.getini(INI_CASSETTE_DIR),
            item.path.relative_to(config.rootpath),
            f"{cls.__name__}.{test_name}" if cls is not None else test_name,
            callspec.id if callspec is not None else None,
        )
        paths = item.stash[run_path_key] = (
            recorded_run_path(*where),
            legacy_recorded_run_paths(*where),
        )
    return paths


def _sampling(item: pytest.Item) -> tuple[int, float]:
    """How many samples the test runs, and the share of them that must pass: from the
    command line, else its promptflow marker, else the ini keys."""
    found = item.stash.get(sampling_key, None)
    if found is None:
        settings = item.config.stash[session_key].settings
        samples, rate = None, None
        for name, options in ((CASES_MARKER, CasesMarker), (STEP_MARKER, StepMarker),
                              (TEST_MARKER, PromptflowMarker)):  # fmt: skip
            marker = item.get_closest_marker(name)
            if marker is not None:
                parsed = marker_options(options, marker.args, marker.kwargs)
                samples, rate = parsed.samples, parsed.min_pass_rate
                break
        found = item.stash[sampling_key] = (
            resolve_samples(settings.samples, samples, str(settings.ini_samples)),
            rate if rate is not None else settings.min_pass_rate,
        )
    return found


def _recorder_for(item: pytest.Item) -> SampledRecording:
    from pytest_promptflow.cassette.recorder import CaseRecorder
    from pytest_promptflow.cassette.samples import SampledRecording

    params = getattr(getattr(item, "callspec", None), "params", {})
    case = params.get(CASE_FIXTURE)
    alone = params.get(STEP_FIXTURE)
    if isinstance(alone, isolation.RecordedStepCall):
        case_id, seed = alone.case, alone.seed
    else:
        case_id, seed = (case.id if isinstance(case, Case) else None), None
    path, legacy = _recorded_run_paths(item)
    promptflow = item.config.stash[session_key]
    samples, _ = _sampling(item)
    command = ["pytest", item.nodeid, f"{RECORD_OPTION}={RecordMode.NEW.value}"]
    if samples > 1:
        command.append(f"{SAMPLES_OPTION}={samples}")

    def recorder(sample: int | None, case_has_golden: bool) -> CaseRecorder:
        return CaseRecorder(
            path,
            legacy_paths=legacy,
            scrubber=promptflow.scrubber,
            test_id=item.nodeid,
            case_id=case_id,
            options=promptflow.settings.recording,
            record_command=shlex.join(command),
            seed=seed,
            sample=sample,
            case_has_golden=case_has_golden,
        )

    return SampledRecording(samples, recorder, shlex.join(command))


def _accept_command(config: pytest.Config, *selection: str) -> str:
    """This session's command, with ``--promptflow-accept`` instead of our other options."""
    arguments = list(selection) or without_options(
        config.invocation_params.args,
        (RECORD_OPTION, REPORT_OPTION, USAGE_OPTION),
        (ACCEPT_OPTION,),
    )
    return shlex.join(["pytest", *arguments, ACCEPT_OPTION])


def _interception(config: pytest.Config) -> HttpInterception:
    from pytest_promptflow.cassette.interception import HttpInterception

    if interception_key not in config.stash:
        config.stash[interception_key] = HttpInterception()
    return config.stash[interception_key]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Before -k and -m deselect anything: every recorded run a collected module still has.
    scope = config.stash[session_key].pruning
    scope.collected = len(items)
    any_promptflow = False
    for item in items:
        uses_promptflow = item.stash[uses_promptflow_key] = _is_promptflow_test(item)
        any_promptflow |= uses_promptflow
        if uses_promptflow:
            path, legacy = _recorded_run_paths(item)
            module_folder = (
                path.parent if getattr(item, "callspec", None) is None else path.parent.parent
            )
            scope.own(module_folder, [path, *legacy])
    # With no step defined, no test can call one: tests that do not use promptflow then
    # run without any hook of ours around them.
    if (
        not any_promptflow
        and not steps_defined_under(config.rootpath)
        and config.pluginmanager.has_plugin(TEST_HOOKS)
    ):
        config.pluginmanager.unregister(name=TEST_HOOKS)
    elif any_promptflow:
        # The recorder and vcrpy are imported with everything else, before any test runs.
        from pytest_promptflow.cassette import recorder  # noqa: F401

        _interception(config)


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    """Before a live recording of several samples: how many model calls it is about to
    make, counted from the recorded runs there are."""
    mode = config.stash[session_key].settings.recording.mode
    if mode is RecordMode.NONE:
        return []
    from pytest_promptflow.cassette.samples import expected_calls

    sampled = [
        (item, _sampling(item)[0]) for item in items if item.stash.get(uses_promptflow_key, False)
    ]
    sampled = [(item, samples) for item, samples in sampled if samples > 1]
    if not sampled:
        return []
    calls, unknown = 0, 0
    for item, samples in sampled:
        path, legacy = _recorded_run_paths(item)
        found = expected_calls(path, legacy, samples, all_samples=mode is RecordMode.ALL)
        if found is None:
            unknown += 1
        else:
            calls += found
    most = max(samples for _, samples in sampled)
    line = (
        f"promptflow: recording up to {most} samples of {len(sampled)} test case(s): each "
        f"request is sent once per sample; about {calls:,} model call(s) for the cases "
        "recorded before"
    )
    if unknown:
        line += f", and {most} per request of the {unknown} case(s) never recorded"
    return [line]


def pytest_deselected(items: list[pytest.Item]) -> None:
    if items:
        items[0].config.stash[session_key].pruning.deselected += len(items)


def pytest_collection_finish(session: pytest.Session) -> None:
    promptflow = session.config.stash[session_key]
    promptflow.pruning.selected = len(session.items)
    problem: str | None = None
    try:
        # The test modules, and the steps they import, are loaded now.
        modules = {id(m): m for m in (getattr(i, "module", None) for i in session.items) if m}
        promptflow.check_requirements([vars(module) for module in modules.values()])
    except PromptflowError as error:
        problem = str(error)
    if problem is not None:
        raise pytest.UsageError(problem)


class PromptflowTestHooks:
    """The hooks around each test: start and stop its recorder, fail it on a miss or on
    drift. Kept only in sessions that collected a promptflow test."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        uses_promptflow = item.stash.get(uses_promptflow_key, None)
        if uses_promptflow is None:  # an item made after collection, by another plugin
            uses_promptflow = _is_promptflow_test(item)
        if uses_promptflow:
            recorder = _recorder_for(item)
            problem: str | None = None
            try:
                recorder.start(_interception(item.config))
            except PromptflowError as error:
                problem = str(error)
            if problem is not None:
                pytest.fail(f"{item.nodeid}: {problem}", pytrace=False)
            item.stash[recorder_key] = recorder
        else:
            # A step called here would reach the network unrecorded: the guard refuses it.
            from pytest_promptflow.cassette.guard import StepRequestGuard

            guard = StepRequestGuard(item.nodeid, item.config.stash[session_key].scrubber)
            _interception(item.config).attach(guard)
            item.stash[guard_key] = guard
        return (yield)

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        """Run the body of a test with several samples once per sample, each with a fresh
        run, case and recorded step; the test passes when enough of its samples do."""
        recorder = pyfuncitem.stash.get(recorder_key, None)
        if recorder is None or recorder.count == 1:
            return None
        samples, min_pass_rate = _sampling(pyfuncitem)
        function = pyfuncitem.obj
        wanted = inspect.signature(function).parameters
        originals = dict(pyfuncitem.funcargs)
        failures: dict[int, BaseException] = {}
        for sample in range(samples):
            if sample:
                recorder.next_sample()
            arguments = {name: _fresh(name, originals[name], recorder) for name in wanted
                         if name in originals}  # fmt: skip
            misses = len(recorder.current.misses)
            try:
                result = function(**arguments)
                if inspect.isawaitable(result):
                    asyncio.run(_awaited(result))
            except (Exception, pytest.fail.Exception) as error:
                failures[sample] = error
            else:
                if len(recorder.current.misses) > misses:
                    failures[sample] = RuntimeError("a request had no recording")
        outcome = CaseSamples(
            pyfuncitem.nodeid, None, samples, samples - len(failures), min_pass_rate
        )
        pyfuncitem.stash[samples_key] = outcome
        if recorder.misses and failures:
            raise next(iter(failures.values()))  # the misses are what the report says
        if outcome.rate >= min_pass_rate:
            return True
        pytest.fail(_samples_failure(outcome, failures, min_pass_rate), pytrace=False)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        try:
            return (yield)
        except Exception:
            if not _misses(item):
                raise
            misses = "\n\n".join(_misses(item))
        # The miss says what matters; the traceback through the SDK would not, and is slow.
        pytest.fail(misses, pytrace=False)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        recorder = item.stash.get(recorder_key, None)
        # A test that fails only at the gate (drift, over budget) made every request it
        # meant to: its recording is complete, and is written as a passing test's is.
        complete = not report.failed
        if recorder is not None and report.when == "call" and not recorder.misses:
            complete = _gate(item, report, recorder) and complete
        if report.when == "call" and _misses(item):
            # Even when the test's code (or a judge) caught the miss, the test fails on it.
            report.outcome = "failed"
            report.longrepr = "\n\n".join(_misses(item))
            complete = False
        if not complete:
            # A failed setup, call or teardown: the recorded run is not overwritten.
            item.stash[complete_key] = False
        elif report.when == "call":
            item.stash.setdefault(complete_key, True)
        _scrub_report(item.config.stash[session_key].scrubber, report)
        return report

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, None, None]:
        torn_down = False
        try:
            result = yield
            torn_down = True
            return result
        finally:
            guard = item.stash.get(guard_key, None)
            if guard is not None:
                del item.stash[guard_key]
                item.config.stash[interception_key].detach(guard)
            recorder = item.stash.get(recorder_key, None)
            if recorder is not None:
                del item.stash[recorder_key]
                promptflow = item.config.stash[session_key]
                for run in recorder.runs:
                    promptflow.tally.add_calls(run.calls)
                complete = item.stash.get(complete_key, False)
                problem: str | None = None
                try:
                    # A fixture whose teardown failed fails the test: nothing is overwritten.
                    written = recorder.stop(passed=torn_down and complete)
                except PromptflowError as error:
                    problem = str(error)
                else:
                    if written is not None and recorder.seed is not None:
                        _note_own_recording(item, written, recorder.seed.source)
                    found: list[PendingChange] = item.stash.get(pending_key, [])
                    if found:
                        narrowed = promptflow.pruning.narrowed_by(
                            vars(item.config.option), item.config.args
                        )
                        promptflow.note_written(
                            item.nodeid,
                            found,
                            written or recorder.recorders[0].read_from,
                            item.config.rootpath,
                            whole_module=narrowed is None,
                        )
                    else:
                        promptflow.ran.add(item.nodeid)
                    if promptflow.settings.recording.accept:
                        # Accepting, the gate fails nothing: complete means passed.
                        promptflow.acceptance.note_test(
                            item.nodeid, recorder.loaded, written, passed=complete
                        )
                if problem is not None:
                    pytest.fail(f"{item.nodeid}: {problem}", pytrace=False)


def _fresh(name: str, value: Any, recorder: SampledRecording) -> Any:
    """A promptflow fixture's value for the sample starting: its own run, and its own
    copy of the case and of the recorded step call."""
    if name == RUN_FIXTURE:
        return recorder.run
    if name in (CASE_FIXTURE, STEP_FIXTURE):
        return copy.deepcopy(value)
    return value


async def _awaited(awaitable: Any) -> None:
    await awaitable


def _samples_failure(
    outcome: CaseSamples, failures: Mapping[int, BaseException], min_pass_rate: float
) -> str:
    lines = [
        f"{outcome.passed} of {outcome.n} samples passed ({outcome.rate:.0%}), below the "
        f"minimum pass rate {min_pass_rate:.0%} ({outcome.label}):"
    ]
    for sample, error in sorted(failures.items()):
        text = str(error).strip().splitlines() or [""]
        lines.append(f"  sample {sample}: {type(error).__name__}: {text[0][:300]}")
        lines += [f"    {line[:300]}" for line in text[1:4]]
    return "\n".join(lines)


def _note_own_recording(item: pytest.Item, written: Path, source: Path | None) -> None:
    """A step test wrote a recorded run of its own: the summary says where, and why."""

    def shown(path: Path) -> str:
        root = item.config.rootpath
        return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)

    where = (shown(written), shown(source) if source is not None else "another test's run")
    item.config.stash[session_key].own_recordings[item.nodeid] = where


def _misses(item: pytest.Item) -> list[str]:
    """Each miss of the test once: a client that retried a request missed it again."""
    recorder = item.stash.get(recorder_key, None)
    guard = item.stash.get(guard_key, None)
    misses = recorder.misses if recorder is not None else guard.misses if guard else []
    return list(dict.fromkeys(misses))


def _scrub_report(scrubber: Scrubber, report: pytest.TestReport) -> None:
    """Keep learned credentials out of failure messages, and so out of junit XML too."""
    if report.failed and report.longrepr is not None:
        text = str(report.longrepr)
        if scrubber.finds_secret(text):
            report.longrepr = scrubber.text(text)
    report.sections = [
        (title, scrubber.text(content) if scrubber.finds_secret(content) else content)
        for title, content in report.sections
    ]


def _gate(item: pytest.Item, report: pytest.TestReport, recorder: SampledRecording) -> bool:
    """Fail a test whose outputs drifted beyond the policy (or broke an expected value),
    or whose usage grew beyond its budget, unless accepting. False when the gate itself
    could not judge the test."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    case, alone = params.get(CASE_FIXTURE), params.get(STEP_FIXTURE)
    promptflow = item.config.stash[session_key]
    expected: Mapping[str, Any]
    if isinstance(case, Case):
        expected = case.expected
    elif isinstance(alone, isolation.RecordedStepCall):
        # A step alone is scored against the expected values of the case it replays.
        expected = promptflow.expected_of(alone.test, alone.case)
    else:
        expected = {}
    verdict = promptflow.judge_test(
        item.nodeid,
        recorder,
        expected,
        _accept_command(item.config, item.nodeid),
        item.stash.get(samples_key, None),
    )
    item.stash[pending_key] = verdict.pending
    if verdict.error is not None:
        report.outcome = "failed"
        report.longrepr = verdict.error
        return False
    if verdict.message is not None:
        if report.passed:
            report.outcome = "failed"
            report.longrepr = verdict.message
        else:
            report.sections.append(("promptflow drift", verdict.message))
    return True


@pytest.fixture
def chain_case(request: pytest.FixtureRequest) -> Case:
    """The case this test runs, from its ``promptflow_cases`` marker."""
    pytest.fail(
        f"{request.node.nodeid}: the {CASE_FIXTURE} fixture needs "
        f"@pytest.mark.{CASES_MARKER}('cases.jsonl') on the test",
        pytrace=False,
    )


@pytest.fixture
def recorded_step(request: pytest.FixtureRequest) -> isolation.RecordedStepCall:
    """A recorded call of the step named by ``promptflow_step``: call it to run the step
    alone on its golden inputs; ``golden_output`` is what it returned then."""
    pytest.fail(
        f"{request.node.nodeid}: the {STEP_FIXTURE} fixture needs "
        f"@pytest.mark.{STEP_MARKER}(the_step) on the test",
        pytrace=False,
    )


@pytest.fixture
def chain_run(request: pytest.FixtureRequest) -> Run:
    """The run of this test: every step call, in order, with inputs and outputs."""
    recorder: SampledRecording = request.node.stash[recorder_key]
    return recorder.run


def record_mode(config: pytest.Config) -> str:
    """The session's record mode, ``"none"`` (replay only), ``"new"`` or ``"all"``; for
    conftest code that starts a local model server only when recording."""
    mode = resolve_record_mode(
        config.getoption(RECORD_OPTION),
        given_on_command_line(config.invocation_params.args, RECORD_OPTION),
        config.getini(INI_RECORD),
        os.environ,
    )
    return mode.value


@pytest.fixture(scope="session")
def promptflow_record_mode(pytestconfig: pytest.Config) -> str:
    """The record mode of this session: ``"none"`` (replay only), ``"new"`` or ``"all"``."""
    return pytestconfig.stash[session_key].settings.recording.mode.value


def pytest_unconfigure(config: pytest.Config) -> None:
    # The project's judge was set by a conftest of this session; the next starts afresh.
    use_judge(None)
    if config.getoption(REVIEW_OPTION) and not hasattr(config, "workerinput"):
        from pytest_promptflow.review.run import review_pending

        # The review talks to the terminal, as a debugger does: pytest's capture lets go.
        capture = config.pluginmanager.getplugin("capturemanager")
        if capture is not None:
            capture.suspend_global_capture(in_=True)
        cache_dir = config.rootpath / config.getini("cache_dir")
        review_pending(config.rootpath, pending_path(cache_dir))


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    result = yield
    if not hasattr(session.config, "workerinput"):
        # Once every test ran, and under pytest-xdist every worker's results came in.
        promptflow = session.config.stash[session_key]
        promptflow.evaluate_quality_gate()
        if promptflow.quality_gate_failed:
            # As pytest-cov's --cov-fail-under: the session fails, every test passed or not.
            session.testsfailed += 1
    return result


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if interception_key in config.stash:
        config.stash[interception_key].close()
    promptflow = config.stash[session_key]
    if promptflow.settings.recording.accept:
        # Only when the session saw every test of its modules; the summary says otherwise.
        promptflow.acceptance.note_deleted(
            promptflow.pruning.prune(vars(config.option), config.args), config.rootpath
        )
    worker_output: dict[str, Any] | None = getattr(config, "workeroutput", None)
    if worker_output is not None:
        worker_output[WORKER_OUTPUT_KEY] = promptflow.worker_output()
        return
    promptflow.write_reports(_accept_command(config))
    cache = getattr(config, "cache", None)
    if cache is not None and (promptflow.ran or promptflow.pending):
        # Kept for review (python -m pytest_promptflow review): this session's findings,
        # and those of the tests it did not run.
        cache.set(PENDING_KEY, promptflow.pending_document(cache.get(PENDING_KEY, None)))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    output = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY)
    if output:
        node.config.stash[session_key].merge_worker_output(output)


def pytest_terminal_summary(terminalreporter: TerminalReporter, config: pytest.Config) -> None:
    promptflow = config.stash[session_key]
    lines = promptflow.summary_lines(_accept_command(config), config.rootpath)
    if lines:
        terminalreporter.section("promptflow")
        for line in lines:
            terminalreporter.write_line(line)
    gate = promptflow.quality_gate_lines()
    if gate:
        terminalreporter.section(
            "promptflow quality gate", red=promptflow.quality_gate_failed, bold=True
        )
        for line in gate:
            terminalreporter.write_line(line)
