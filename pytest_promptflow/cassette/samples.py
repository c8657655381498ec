"""One test case recorded several times: a sample per run of the test's body.

A model answers the same request differently from one call to the next, so a case may
be recorded N times (``--promptflow-samples=N``). The file stays one per case: each
sample's interactions and golden step calls carry ``"sample": i``, absent when the case
has one sample, so that one-sample files are written exactly as before. Sample ``i``
replays the answers recorded for sample ``i``; each sample is a ``CaseRecorder`` over its
part of the file, and ``SampledRecording`` reads the file once, hands each sample its
part, and writes the file once, every sample's part in its place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from pytest_promptflow.cassette.format import (
    GoldenStep,
    Interaction,
    RecordedRun,
    Seed,
    sample_of,
    sample_parts,
    samples_in,
)
from pytest_promptflow.cassette.interception import HttpInterception
from pytest_promptflow.cassette.modes import RecordMode
from pytest_promptflow.cassette.reading import read_recorded_run_at
from pytest_promptflow.cassette.recorder import CaseRecorder
from pytest_promptflow.trace import Run


class SampledRecording:
    """The recorded run of one test case over its samples, one ``CaseRecorder`` each."""

    def __init__(
        self,
        samples: int,
        recorder: Callable[[int | None, bool], CaseRecorder],
        record_more: str,
    ) -> None:
        """``recorder(sample, case_has_golden)`` makes the recorder of one sample (None
        for a case run once); ``record_more`` is the command that records the samples a
        file lacks."""
        self.count = samples
        self._make = recorder
        self._record_more = record_more
        self.recorders: list[CaseRecorder] = []
        self.loaded: RecordedRun | None = None
        self._read_from: Path | None = None
        self._parts: list[RecordedRun] | None = None
        """Each sample's part of a file that holds samples; None for a plain file."""
        self._recorded_samples = 0
        self._interception: HttpInterception | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, interception: HttpInterception) -> None:
        """Read the file (a bad file raises CassetteError) and start the first sample."""
        first = self._make(None if self.count == 1 else 0, False)
        self._read_from, self.loaded = read_recorded_run_at(
            first.path,
            first.legacy_paths,
            test=first.test_id,
            case=first.case_id,
            request_key=first._key_of,
        )
        self._recorded_samples = samples_in(self.loaded)
        if self.loaded is not None and self._recorded_samples > 1:
            self._parts = sample_parts(self.loaded, max(self._recorded_samples, self.count))
        self._interception = interception
        if self._parts is not None or self.count > 1:
            first.case_has_golden = self._case_has_golden
        self._start(first, 0)

    @property
    def _case_has_golden(self) -> bool:
        return self.loaded is not None and bool(self.loaded.steps)

    def _part(self, sample: int) -> RecordedRun | None:
        if self._parts is not None:
            part = self._parts[sample] if sample < len(self._parts) else None
            return part if part is not None and (part.interactions or part.steps) else None
        return self.loaded if sample == 0 else None

    def _start(self, recorder: CaseRecorder, sample: int) -> None:
        assert self._read_from is not None
        assert self._interception is not None
        part = self._part(sample)
        if part is None and self.loaded is not None:
            recorder.missing_sample = (
                f"sample {sample} of {self.count} is not recorded: the recorded run holds "
                f"{self._recorded_samples}; record the samples it lacks with: "
                f"{self._record_more}"
            )
        recorder.start(self._interception, (self._read_from, part))
        self.recorders.append(recorder)

    def next_sample(self) -> CaseRecorder:
        """Finish the sample running and start the next one."""
        self.current.finish()
        sample = len(self.recorders)
        recorder = self._make(sample, self._case_has_golden)
        self._start(recorder, sample)
        return recorder

    @property
    def current(self) -> CaseRecorder:
        return self.recorders[-1]

    @property
    def run(self) -> Run:
        return self.current.run

    @property
    def runs(self) -> list[Run]:
        return [recorder.run for recorder in self.recorders]

    @property
    def misses(self) -> list[str]:
        return list(dict.fromkeys(m for recorder in self.recorders for m in recorder.misses))

    @property
    def seed(self) -> Seed | None:
        return self.recorders[0].seed if self.recorders else None

    def golden_samples(self) -> list[RecordedRun]:
        """The golden values of every recorded sample (a one-sample case: its own)."""
        if self._parts is None:
            golden = self.recorders[0].golden if self.recorders else None
            return [golden] if golden is not None and golden.steps else []
        return [part for part in self._parts[: self._recorded_samples] if part.steps]

    def stop(self, *, passed: bool) -> Path | None:
        """Finish the samples and write the file when the run may; returns the path."""
        for recorder in self.recorders:
            recorder.finish()
        if self.count == 1 and self._parts is None:
            # A case run once with a file of one sample: exactly as without samples.
            return self.recorders[0].stop(passed=passed)
        updates = [recorder.updated_recorded_run(passed) for recorder in self.recorders]
        if all(update is None for update in updates):
            return None
        all_mode = self.recorders[0].options.mode is RecordMode.ALL
        total = self.count if all_mode else max(self.count, self._recorded_samples)
        parts: list[RecordedRun | None] = []
        for sample in range(total):
            update = updates[sample] if sample < len(updates) else None
            parts.append(update if update is not None else self._part(sample))
        return self.recorders[0].write(self._joined(parts))

    def _joined(self, parts: Sequence[RecordedRun | None]) -> RecordedRun:
        """One recorded run of the samples' parts, each tagged with its sample when there
        are several."""
        tag = len(parts) > 1
        interactions: list[Interaction] = []
        steps: list[GoldenStep] = []
        sources: dict[str, str] = {}
        for sample, part in enumerate(parts):
            if part is None:
                continue
            mark = {"sample": sample if tag else None}
            interactions += [i.model_copy(update=mark) for i in part.interactions]
            steps += [s.model_copy(update=mark) for s in part.steps]
            sources.update(part.prompt_sources)
        first = self.recorders[0]
        return RecordedRun(
            test=first.test_id,
            case=first.case_id,
            interactions=interactions,
            steps=steps,
            prompt_sources=dict(sorted(sources.items())),
            isolated=True if first.seed is not None else None,
        )


def expected_calls(
    path: Path, legacy_paths: tuple[Path, ...], samples: int, *, all_samples: bool
) -> int | None:
    """How many requests recording ``samples`` samples of a case will send, from its
    recorded run: every sample's when re-recording all, else those of the samples it
    lacks; None for a case never recorded (or a file that cannot be read)."""
    from pytest_promptflow.errors import CassetteError

    try:
        _, run = read_recorded_run_at(path, legacy_paths, test="", case=None)
    except CassetteError:
        return None
    recorded = samples_in(run)
    if run is None or recorded == 0:
        return None
    per_sample = sum(1 for i in run.interactions if sample_of(i) == 0)
    return per_sample * (samples if all_samples else max(0, samples - recorded))
