"""What a pytest session of promptflow tests accumulates, and what it makes of it.

``PromptflowSession`` holds the session's settings and everything its tests add: the
drift and usage tally, quality scores, what an accepting session did, which recorded runs
it may prune, and the step tests that had nothing to run on yet. It judges each test at
the gate, merges what pytest-xdist workers found, writes the reports, prints the summary
and evaluates the quality gate. The plugin's hooks only call it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pytest_promptflow import isolation
from pytest_promptflow.budget import BudgetPolicy, CaseUsage, budget_message, measure_samples
from pytest_promptflow.budget import measure_case as measure_usage
from pytest_promptflow.cases import Case
from pytest_promptflow.cassette.format import RecordedRun
from pytest_promptflow.cassette.modes import RecordingOptions
from pytest_promptflow.cassette.pruning import PruningScope
from pytest_promptflow.cassette.scrub import Scrubber
from pytest_promptflow.drift.classify import CaseDrift, judge_case
from pytest_promptflow.drift.judging import JudgeSession
from pytest_promptflow.drift.policy import PolicyDefaults
from pytest_promptflow.drift.spread import SpreadSettings, judge_samples
from pytest_promptflow.errors import PromptflowError
from pytest_promptflow.quality.case import BROKEN, CaseQuality, expected_word, sampled_items
from pytest_promptflow.quality.expected import output_fields
from pytest_promptflow.quality.gate import GateResult, Requirement, check_names, evaluate
from pytest_promptflow.quality.tally import ItemScore, QualityTally
from pytest_promptflow.report.acceptance import Acceptance
from pytest_promptflow.report.quality import quality_lines
from pytest_promptflow.report.render import drift_message, write_reports
from pytest_promptflow.report.summary import CaseSamples, SessionTally
from pytest_promptflow.review.pending import (
    PendingChange,
    file_hash,
    pending_changes,
    pending_document,
    replaced,
)
from pytest_promptflow.steps import Step, find_step
from pytest_promptflow.usage import Prices

if TYPE_CHECKING:
    from pytest_promptflow.cassette.recorder import CaseRecorder
    from pytest_promptflow.cassette.samples import SampledRecording

UsageTable = Literal["compact", "full"]


@dataclass(frozen=True)
class SessionSettings:
    """The session's options, ini keys and declared prices, resolved and checked."""

    recording: RecordingOptions
    policy: PolicyDefaults
    budget: BudgetPolicy
    prices: Prices
    reports: Sequence[Path] = ()
    usage_table: UsageTable = "compact"
    requirements: Sequence[Requirement] = ()
    cassette_dir: Path = Path("cassettes")
    samples: int | None = None
    """``--promptflow-samples``: how many samples every test runs, over its marker."""
    ini_samples: int = 1
    """``promptflow_samples``: how many samples a test runs when nothing else says."""
    min_pass_rate: float = 1.0
    """``promptflow_min_pass_rate``: the share of a test's samples that must pass."""
    outside_share: float = 0.0
    """``promptflow_outside_share``: the share of new samples a field may have outside
    the golden spread before it drifts."""
    alpha: float = 0.05
    """``promptflow_alpha``: the level of the test that confirms a shift of a field's
    share of its golden mode."""


@dataclass
class TestVerdict:
    """What the gate found of one test."""

    message: str | None = None
    """Why the test fails at the gate (drift, over budget, broken expected values)."""
    error: str | None = None
    """The gate could not judge the test (a judge or a metric failed)."""
    pending: list[PendingChange] = field(default_factory=list)
    """The steps it found changed, for review; their file and hash come once written."""


@dataclass
class PromptflowSession:
    settings: SessionSettings
    scrubber: Scrubber
    tally: SessionTally = field(init=False)
    quality: QualityTally = field(default_factory=QualityTally)
    acceptance: Acceptance = field(default_factory=Acceptance)
    pruning: PruningScope = field(default_factory=PruningScope)
    waiting_step_tests: dict[str, str] = field(default_factory=dict)
    """Step tests that had no recorded calls to run on when the session started, by node
    id, with their step."""
    expected_by_case: dict[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)
    """The expected values of every case collected, by test function and case id."""
    own_recordings: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Step tests that wrote recorded runs of their own: node id -> (file, its source)."""
    pending: list[PendingChange] = field(default_factory=list)
    """What the session found that accepting would take, for review."""
    ran: set[str] = field(default_factory=set)
    """Every promptflow test the session ran (their pending changes are replaced)."""
    quality_gate: list[GateResult] | None = None
    """The quality gate's results, once evaluated at the end of the session."""

    def __post_init__(self) -> None:
        self.tally = SessionTally(currency=self.settings.prices.currency)

    # -- before tests run ----------------------------------------------------------------

    def check_requirements(self, namespaces: Sequence[Mapping[str, Any]] = ()) -> None:
        """Refuse a quality requirement naming a step no ``@step`` declares, or a field
        (or metric) it does not have; called once the test modules are imported, whose
        ``namespaces`` name the steps they use."""
        check_names(self.settings.requirements, lambda name: _fields_of(name, namespaces))

    # -- each test ------------------------------------------------------------------------

    def judge_test(
        self,
        test: str,
        recording: SampledRecording,
        expected: Mapping[str, Mapping[str, Any]],
        accept_command: str,
        samples: CaseSamples | None = None,
    ) -> TestVerdict:
        """Judge a test's outputs against its golden values and expected values, and its
        usage against its budget; note what was found in the session's tally."""
        case = recording.recorders[0].case_id
        if samples is not None:
            self.tally.samples.append(dataclasses.replace(samples, case=case))
        golden_samples = recording.golden_samples()
        if len(recording.recorders) > 1 or len(golden_samples) > 1:
            return self._judge_samples(test, recording, golden_samples, expected, accept_command)
        recorder = recording.recorders[0]
        run = recorder.comparable_run()
        golden = recorder.golden
        judges = JudgeSession(run.case_id)
        quality = (
            CaseQuality(
                expected,
                run,
                golden,
                judges,
                self.settings.policy,
                tolerates_broken=self._tolerates_broken,
            )
            if expected
            else None
        )
        try:
            verdict = judge_case(golden, run, self.settings.policy, judges, quality)
            items = quality.items(test.partition("[")[0], run.case_id or "") if quality else []
        except PromptflowError as error:  # a judge or a metric without an answer
            return TestVerdict(error=f"{test}: {error}")
        self.quality.add(items)
        usage = measure_usage(
            golden,
            recorder.known_interactions,
            run,
            recorder.consumed,
            self.settings.prices,
            self.settings.budget,
        )
        result = self._verdict(verdict, usage, accept_command)
        if not self.settings.recording.accept:
            result.pending = pending_drafts(test, run.case_id, verdict, usage, recorder)
        return result

    def _judge_samples(
        self,
        test: str,
        recording: SampledRecording,
        golden: Sequence[RecordedRun],
        expected: Mapping[str, Mapping[str, Any]],
        accept_command: str,
    ) -> TestVerdict:
        """A test run as several samples, or judged against several golden samples: each
        field against the spread of its golden samples (``drift/spread.py``), quality by
        the majority of an item's samples, usage per sample."""
        recorders = recording.recorders
        runs = [recorder.comparable_run() for recorder in recorders]
        case = runs[0].case_id
        judges = JudgeSession(case)
        items: list[ItemScore] = []
        verdicts: dict[tuple[str, str], tuple[str, bool]] = {}
        try:
            if expected:
                items = sampled_items(
                    test.partition("[")[0],
                    case or "",
                    expected,
                    runs,
                    golden,
                    judges,
                    self.settings.policy,
                )
                for item in items:
                    word = expected_word(item.golden, item.now)
                    if word is not None and item.kind == "field":
                        tolerated = word != BROKEN or self._tolerates_broken(item.step, item.name)
                        verdicts[(item.step, item.name)] = (word, tolerated)
            verdict = judge_samples(
                golden,
                runs,
                self.settings.policy,
                judges,
                expected_verdict=lambda step, name: (
                    verdicts.get((step, name))
                    if step in expected and name in expected[step]
                    else None
                ),
                settings=SpreadSettings(self.settings.outside_share, self.settings.alpha),
            )
        except PromptflowError as error:  # a judge or a metric without an answer
            return TestVerdict(error=f"{test}: {error}")
        self.quality.add(items)
        usage = measure_samples(
            golden,
            [
                (r.known_interactions, run, r.consumed)
                for r, run in zip(recorders, runs, strict=True)
            ],
            self.settings.prices,
            self.settings.budget,
        )
        return self._verdict(verdict, usage, accept_command)

    def _verdict(
        self, verdict: CaseDrift | None, usage: CaseUsage, accept_command: str
    ) -> TestVerdict:
        """Note what the gate found of a test in the tally; its failure, if any."""
        if verdict is not None:
            self.tally.add_case(verdict)
        self.tally.add_usage(usage)
        drifted = verdict if verdict is not None and verdict.drifted else None
        if self.settings.recording.accept or (drifted is None and not usage.over_budget):
            return TestVerdict()
        messages = []
        if drifted is not None:
            messages.append(drift_message(drifted, accept_command))
        if usage.over_budget:
            messages.append(budget_message(usage, accept_command, self.tally.currency))
        return TestVerdict(message="\n\n".join(messages))

    def _tolerates_broken(self, step: str, name: str) -> bool:
        """Whether an item that breaks the field leaves its own test passing: when a rate
        or ``no worse`` requirement is the field's policy, and no ``no broken`` one is."""
        covering = [r for r in self.settings.requirements if r.covers(step, name)]
        return any(r.makes_broken_items_tolerated for r in covering) and all(
            r.makes_broken_items_tolerated for r in covering
        )

    def note_cases(self, test: str, cases: Sequence[Case]) -> None:
        """The cases a test function runs over (its node id without parameters): the
        steps they expect values of, and their expected values, which a test of one step
        alone replaying that test's recorded calls is scored against too."""
        for case in cases:
            self.quality.expected_steps.update(case.expected)
            if case.expected:
                self.expected_by_case[(test, case.id)] = case.expected

    def expected_of(self, source_test: str, case: str | None) -> Mapping[str, Any]:
        """The expected values of the case a recorded run was made for (``source_test`` is
        its node id), as its test's case file says; empty when there are none."""
        return self.expected_by_case.get((source_test.partition("[")[0], case or ""), {})

    # -- pytest-xdist ---------------------------------------------------------------------

    def worker_output(self) -> dict[str, Any]:
        return {
            "tally": self.tally.to_json(),
            "quality": self.quality.worker_json(),
            "acceptance": self.acceptance.to_json(),
            "waiting": dict(self.waiting_step_tests),
            "own_recordings": dict(self.own_recordings),
            "pending": [entry.to_json() for entry in self.pending],
            "ran": sorted(self.ran),
            "pruning": self.pruning.to_json(),
        }

    def merge_worker_output(self, output: Mapping[str, Any]) -> None:
        if "tally" in output:
            self.tally.merge_json(output["tally"])
        if "quality" in output:
            self.quality.merge_worker_json(output["quality"])
        if "acceptance" in output:
            self.acceptance.merge_json(output["acceptance"])
        self.waiting_step_tests.update(output.get("waiting", {}))
        self.pending += [PendingChange.from_json(entry) for entry in output.get("pending", [])]
        self.ran.update(output.get("ran", []))
        own = output.get("own_recordings", {})
        self.own_recordings.update({test: (where[0], where[1]) for test, where in own.items()})
        if "pruning" in output:
            self.pruning.merge_json(output["pruning"])

    # -- the end ----------------------------------------------------------------------------

    def note_written(
        self,
        test: str,
        pending: Sequence[PendingChange],
        path: Path,
        rootdir: Path,
        whole_module: bool,
    ) -> None:
        """A test ended: its pending changes apply to the recorded run at ``path`` as it
        is now; ``whole_module`` when the session saw every test of its module."""
        self.ran.add(test)
        digest = file_hash(path)
        if digest is None:
            return
        shown = path.relative_to(rootdir).as_posix() if path.is_relative_to(rootdir) else str(path)
        for entry in pending:
            entry.file, entry.hash, entry.whole_module = shown, digest, whole_module
            self.pending.append(entry)

    def pending_document(self, existing: object) -> dict[str, Any]:
        """The pending changes after this session: ``existing`` (the cache's) less those of
        the tests it ran, and what it found, scrubbed of the session's secrets."""
        entries = replaced(pending_changes(existing), self.ran, self.pending)
        document = pending_document(entries)
        scrubbed: dict[str, Any] = self.scrubber.json(document)
        return scrubbed

    def evaluate_quality_gate(self) -> list[GateResult]:
        self.quality_gate = evaluate(self.settings.requirements, self.quality.sorted_rows())
        return self.quality_gate

    @property
    def quality_gate_failed(self) -> bool:
        return any(result.passed is False for result in self.quality_gate or [])

    def write_reports(self, accept_command: str) -> None:
        if self.settings.reports:
            write_reports(
                self.settings.reports,
                self.tally,
                accept_command,
                scrub=self.scrubber.text,
                quality=self.quality,
                quality_gate=self.quality_gate or [],
            )

    def summary_lines(self, accept_command: str, rootdir: Path) -> list[str]:
        """The ``promptflow`` section of the terminal summary."""
        accepting = self.settings.recording.accept
        lines = self.tally.summary_lines(
            None if accepting else accept_command, self.settings.usage_table == "full"
        )
        quality = quality_lines(self.quality, called=self.tally.steps.keys())
        lines = [*lines, *([""] if lines and quality else []), *quality]
        if accepting:
            accepted = [*self.acceptance.summary_lines(), *self.pruning.summary_lines()]
            lines = [*lines, *([""] if lines else []), *accepted]
        waiting = isolation.not_run_lines(self.waiting_step_tests, self.settings.cassette_dir)
        lines = [*lines, *([""] if lines and waiting else []), *waiting]
        own = isolation.own_recording_lines(self.own_recordings)
        return [*lines, *([""] if lines and own else []), *own]

    def quality_gate_lines(self) -> list[str]:
        """The ``promptflow quality gate`` block: each requirement and how it fared."""
        lines = []
        for result in self.quality_gate or []:
            status = {True: "passed", False: "FAILED", None: "not evaluated"}[result.passed]
            lines.append(f"{result.requirement}: {status}")
            if result.passed is not None:
                lines.append(f"  {result.detail}")
        return lines


def _fields_of(
    step: str, namespaces: Sequence[Mapping[str, Any]]
) -> tuple[set[str], set[str]] | None:
    """The output fields and metric names of the step called ``step`` (among the steps
    the test modules hold, else among all), or None."""
    local = {
        id(value): value
        for namespace in namespaces
        for value in namespace.values()
        if isinstance(value, Step) and value.name == step
    }
    found = next(iter(local.values())) if len(local) == 1 else find_step(step)
    if found is None:
        return None
    fields = output_fields(found.boundary.output_annotation) or {}
    return set(fields), {getattr(m, "__name__", repr(m)) for m in found.metrics}


def pending_drafts(
    test: str,
    case: str | None,
    verdict: CaseDrift | None,
    usage: CaseUsage,
    recorder: CaseRecorder,
) -> list[PendingChange]:
    """The steps of a test case that drifted, broke an expected value or went over
    budget, each with what accepting it would write."""
    drifts: dict[str, list[dict[str, Any]]] = {}
    for step in verdict.steps if verdict is not None else []:
        broken = any(change.expected == "broken" for change in step.changes)
        if step.drifted or broken:
            drifts.setdefault(step.step, []).append(step.to_json())
    budget = {step.step: step.to_json() for step in usage.steps if step.over_budget}
    if not drifts and not budget:
        return []
    golden, sources = recorder.accepted_golden()
    steps = [g.model_dump(mode="json", exclude_none=True, by_alias=True) for g in golden]
    return [
        PendingChange(
            test, case, name, "", "", drifts.get(name, []), budget.get(name), steps, dict(sources)
        )
        for name in sorted(drifts.keys() | budget.keys())
    ]
