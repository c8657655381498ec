"""One test item's quality: every call of an expected step scored now and in the golden
run, and what that makes of a changed field (still correct, fixed, still wrong, broken).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pytest_promptflow.cassette.format import GoldenStep, RecordedRun
from pytest_promptflow.drift.compare import FieldChange
from pytest_promptflow.drift.judging import JudgeSession
from pytest_promptflow.drift.policy import DEFAULTS, PolicyDefaults
from pytest_promptflow.quality.scoring import Score, Scorer
from pytest_promptflow.quality.tally import ItemScore, item_scores, sampled_item_scores
from pytest_promptflow.trace import Run, StepCall

STILL_CORRECT = "still correct"
FIXED = "fixed"
STILL_WRONG = "still wrong"
BROKEN = "broken"


def top_field(path: str) -> str:
    """``category`` of ``category``, ``problem.symptoms[0]`` and ``tags[2]``."""
    for position, character in enumerate(path):
        if character in ".[":
            return path[:position]
    return path


class CaseQuality:
    """The scores of one test item against its case's expected values.

    Scores are computed once per call, on demand: the drift gate asks for the calls
    whose fields changed, the session's quality table for every call of an expected step.
    """

    def __init__(
        self,
        expected: Mapping[str, Mapping[str, Any]],
        run: Run,
        golden: RecordedRun | None,
        judges: JudgeSession,
        defaults: PolicyDefaults = DEFAULTS,
        tolerates_broken: Callable[[str, str], bool] = lambda step, name: False,
    ) -> None:
        self.expected = expected
        self.run = run
        self.golden_steps: Sequence[GoldenStep] = golden.steps if golden is not None else ()
        self.judges = judges
        self.defaults = defaults
        self.tolerates_broken = tolerates_broken
        """Whether a requirement is the policy of a step's field, so that an item it
        breaks does not fail its own test."""
        self._scorers: dict[str, Scorer] = {}
        self._now: dict[int, list[Score]] = {}
        self._golden: dict[int, list[Score]] = {}

    def expects(self, step: str) -> bool:
        return step in self.expected

    def _scorer(self, step: str) -> Scorer:
        scorer = self._scorers.get(step)
        if scorer is None:
            scorer = self._scorers[step] = Scorer.of(
                step,
                self.run.output_types.get(step, Any),
                self.run.metrics.get(step, ()),
                self.defaults,
            )
        return scorer

    def now(self, call: StepCall) -> list[Score]:
        scores = self._now.get(call.index)
        if scores is None:
            scorer = self._scorer(call.step)
            expected = self.expected[call.step]
            scores = self._now[call.index] = (
                scorer.score(call.output, expected, self.judges)
                if call.error is None
                else scorer.failed(expected)  # it raised: no answer is right
            )
        return scores

    def golden(self, position: int, twin: StepCall | None = None) -> list[Score]:
        """The scores of the golden call at ``position``: those of ``twin``, a call of the
        same step now, when it answered the same (as the calls of an unchanged step do),
        since scores are a function of the answer."""
        scores = self._golden.get(position)
        if scores is None:
            reference = self.golden_steps[position]
            if twin is not None and self._same_answer(reference, twin):
                scores = self._golden[position] = self.now(twin)
            else:
                scores = self._golden[position] = self._scorer(reference.step).score(
                    reference.output, self.expected[reference.step], self.judges
                )
        return scores

    def _same_answer(self, reference: GoldenStep, call: StepCall) -> bool:
        if call.error is not None or reference.output != call.output:
            return False
        # Equal to Python, and so to JSON unless a flag stands for a number somewhere.
        return _same_json(reference.output, call.output)

    def judged_changes(
        self, call: StepCall, golden_position: int, changes: list[FieldChange]
    ) -> list[FieldChange]:
        """The changes of a call, those of an expected field judged by the expected value
        instead of the golden one: a change that stays correct or fixes the item is
        tolerated, one from a wrong answer to another too; one that breaks it is drift,
        unless a requirement on the field is the policy."""
        now = {score.name: score.correct for score in self.now(call) if score.kind == "field"}
        was = {
            score.name: score.correct
            for score in self.golden(golden_position)
            if score.kind == "field"
        }
        judged = []
        for change in changes:
            name = top_field(change.path)
            if name not in now or name not in was:
                judged.append(change)
                continue
            if was[name]:
                verdict = STILL_CORRECT if now[name] else BROKEN
            else:
                verdict = FIXED if now[name] else STILL_WRONG
            tolerated = verdict != BROKEN or self.tolerates_broken(call.step, name)
            judged.append(dataclasses.replace(change, tolerated=tolerated, expected=verdict))
        return judged

    def items(self, test: str, case: str) -> list[ItemScore]:
        """The item's score on every expected field and metric of every step it called."""
        calls_by_step: dict[str, list[StepCall]] = {}
        for call in self.run.calls:
            if call.step in self.expected:
                calls_by_step.setdefault(call.step, []).append(call)
        golden_by_step: dict[str, list[int]] = {}
        for position, reference in enumerate(self.golden_steps):
            if reference.step in self.expected:
                golden_by_step.setdefault(reference.step, []).append(position)
        items = []
        for step, calls in calls_by_step.items():
            golden_positions = golden_by_step.get(step)
            golden = None
            if golden_positions:
                # The n-th golden call of a step is most likely answered as the n-th now.
                twins = calls[: len(golden_positions)]
                golden = [
                    self.golden(p, twins[n] if n < len(twins) else None)
                    for n, p in enumerate(golden_positions)
                ]
            items += item_scores(test, case, step, [self.now(call) for call in calls], golden)
        return items


def expected_word(golden: bool | None, now: bool) -> str | None:
    """What a change did to an item the case expects a value of; None without golden."""
    if golden is None:
        return None
    if golden:
        return STILL_CORRECT if now else BROKEN
    return FIXED if now else STILL_WRONG


def sampled_items(
    test: str,
    case: str,
    expected: Mapping[str, Mapping[str, Any]],
    runs: Sequence[Run],
    golden: Sequence[RecordedRun],
    judges: JudgeSession,
    defaults: PolicyDefaults = DEFAULTS,
) -> list[ItemScore]:
    """A test item run as several samples (or judged against several golden samples),
    scored by the majority of its samples on each expected field and metric."""
    now = [CaseQuality(expected, run, None, judges, defaults) for run in runs]
    was = [CaseQuality(expected, runs[0], sample, judges, defaults) for sample in golden]
    steps = list(
        dict.fromkeys(call.step for run in runs for call in run.calls if call.step in expected)
    )
    items: list[ItemScore] = []
    for step in steps:
        now_scores = [
            [quality.now(call) for call in run.calls if call.step == step]
            for quality, run in zip(now, runs, strict=True)
        ]
        golden_scores = [
            [
                quality.golden(position)
                for position, reference in enumerate(sample.steps)
                if reference.step == step
            ]
            for quality, sample in zip(was, golden, strict=True)
        ]
        items += sampled_item_scores(
            test, case, step, [s for s in now_scores if s], [s for s in golden_scores if s]
        )
    return items


def _same_json(first: Any, second: Any) -> bool:
    """Whether two JSON values that Python holds equal are the same JSON value: a flag
    nowhere stands where the other has a number (``True == 1`` to Python)."""
    if isinstance(first, bool) or isinstance(second, bool):
        return type(first) is type(second) and first == second
    if isinstance(first, dict):
        return isinstance(second, dict) and all(
            key in second and _same_json(value, second[key]) for key, value in first.items()
        )
    if isinstance(first, list):
        return isinstance(second, list) and all(map(_same_json, first, second))
    return bool(first == second)
