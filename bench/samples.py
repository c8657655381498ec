"""Samples: what replaying every case as several samples costs against one.

200 cases (``--cases``) x 5 calls of a ``@step`` with a structured output (a text, and
an ``int`` under ``drift.exact()``) run through the real openai SDK. The suite is
recorded once with ``--promptflow-samples=N`` from a local OpenAI-compatible server
whose answer depends on a counter of the requests it served, so that each sample of a
call gets an answer a little different from the others' (the last words of the text,
the ``urgency`` of one sample in three): every call's golden spread holds several
values, and with 5 samples every ``urgency`` field is noisy. The same suite is also
recorded with one sample, from the same server. With the server stopped, three replays
alternate:

- (a) the N-sample files with ``--promptflow-samples=N``: each case's body runs N
  times, each sample replaying its own answers and judged against the golden spread;
- (b) the same files with ``--promptflow-samples=1``: the first sample only, judged
  against the N golden samples;
- (c) the one-sample files, replayed as without samples.

Replaying N samples should cost linearly: (a)/(b) at most 1.1 x N (5.5x for 5
samples); (b)/(c) is what one sample of an N-sample file costs against a plain file.
Every replay must pass, with every call compared and none drifted, and leave the files
as they were. Times are the CPU time of the pytest process while it runs the tests
(setup, call and teardown of every test; start-up and collection excluded), medians of
``--repeats`` runs of each replay; peak memory is the process's peak resident set.

    python bench/samples.py [--cases 200] [--samples 5] [--repeats 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import (
    TIMER_PLUGIN,
    TimedRuns,
    Timing,
    chat_completion,
    client_fixture,
    local_chat_completions,
    timed_pytest,
)
from replay import ASK_TEXT
from werkzeug import Request, Response

CALLS = 5
"""Calls of the step per case."""
LINEAR_SLACK = 1.1
"""N samples may cost this much more than N times one: the target is 1.1 x N."""

SUITE = (
    """
from typing import Annotated

import pytest
from pydantic import BaseModel

from pytest_promptflow import Prompt, drift, step
"""
    + ASK_TEXT
    + """
ASK = Prompt.from_string(ASK_TEXT, name="ask")


class Answer(BaseModel):
    text: str
    urgency: Annotated[int, drift.exact()]


@step(prompt=ASK)
def ask(case: int, number: int, client) -> Answer:
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        temperature=0,
        messages=[{"role": "user", "content": ASK.render(case=case, number=number)}],
    )
    return Answer.model_validate_json(reply.choices[0].message.content)


@pytest.mark.promptflow
@pytest.mark.parametrize("case", range(CASES))
def test_case(case, client):
    for number in range(CALLS):
        answer = ask(case, number, client)
        assert answer.text.startswith("Answer") and 1 <= answer.urgency <= 5
"""
)

CLOSINGS = ("", " Thanks for waiting.", " We are on it.", " More soon.")


def counting_completion() -> Callable[[Request], Response]:
    """A server's answer that depends on how many requests it served before: the same
    question asked again gets a text that ends otherwise (a cycle of 4), and an urgency
    of 3 instead of 2 on one request in 3. With 5 calls per case, the samples of one
    call fall on different points of both cycles."""
    served = itertools.count()

    def completion(request: Request) -> Response:
        number = next(served)
        question = json.loads(request.data)["messages"][-1]["content"]
        answer = {
            "text": f"Answer to: {question[:48]}{CLOSINGS[number % len(CLOSINGS)]}",
            "urgency": 3 if number % 3 == 0 else 2,
        }
        return chat_completion(request, json.dumps(answer))

    return completion


def write_project(folder: Path, base_url: str, cases: int) -> None:
    folder.mkdir(parents=True)
    (folder / "conftest.py").write_text(client_fixture(base_url) + TIMER_PLUGIN)
    suite = SUITE.replace("CASES", str(cases)).replace("CALLS", str(CALLS))
    (folder / "test_suite.py").write_text(suite)
    (folder / "pytest.ini").write_text("[pytest]\n")


def recorded_runs(folder: Path) -> list[Path]:
    return sorted((folder / "cassettes").rglob("*.json"))


def check_recordings(folder: Path, cases: int, samples: int) -> int:
    """Check that every case of the project in ``folder`` holds ``samples`` samples of
    ``CALLS`` calls, each with its golden value; returns how many calls have a golden
    spread of more than one value (all of them, with this server)."""
    files = recorded_runs(folder)
    if len(files) != cases:
        raise SystemExit(f"expected {cases} recorded runs in {folder}, found {len(files)}")
    spread = 0
    for path in files:
        document = json.loads(path.read_text(encoding="utf-8"))
        parts = [*document["interactions"], *document["steps"]]
        if samples == 1:
            if len(parts) != 2 * CALLS or any("sample" in part for part in parts):
                raise SystemExit(f"{path}: expected {CALLS} calls and no sample tags")
            continue
        per_sample = [
            [step for step in document["steps"] if step["sample"] == sample]
            for sample in range(samples)
        ]
        if len(document["interactions"]) != CALLS * samples or any(
            len(steps) != CALLS for steps in per_sample
        ):
            raise SystemExit(f"{path}: expected {samples} samples of {CALLS} calls")
        for calls in zip(*per_sample, strict=True):
            if len({json.dumps(call["output"], sort_keys=True) for call in calls}) > 1:
                spread += 1
    return spread


def files_digest(folder: Path) -> str:
    """One digest of every recorded run under ``folder``: a replay must change none."""
    digest = hashlib.sha256()
    for path in recorded_runs(folder):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


STEP_ROW = re.compile(r"^ask\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$", re.M)


@dataclass
class Replay(TimedRuns):
    """One of the three replays, what it must report, and its measured runs."""

    key: str
    name: str
    folder: Path
    args: tuple[str, ...]
    calls: int
    """Step calls the replay makes (and compares), every sample's."""
    stable: int | None
    """Cases the summary must call ``stable``; None for a replay of one sample."""
    runs: list[Timing] = field(default_factory=list)

    def run(self) -> None:
        timing, output = timed_pytest(self.folder, *self.args)
        section = re.split(r"^=+ promptflow =+$", output, maxsplit=1, flags=re.M)[-1]
        row = STEP_ROW.search(section)
        found = None if row is None else (int(row[1]), int(row[2]), int(row[4]))
        if found != (self.calls, self.calls, 0):
            raise SystemExit(
                f"replay {self.name}: expected {self.calls} calls of ask, all compared and "
                f"none drifted; the summary says (calls, compared, drift) = {found}"
            )
        if self.stable is not None and (
            f"run as several samples: {self.stable} stable" not in section
        ):
            raise SystemExit(f"replay {self.name}: expected {self.stable} stable cases")
        self.runs.append(timing)


@dataclass(frozen=True)
class Measurement:
    cases: int
    samples: int
    calls_with_a_spread: int
    replays: tuple[Replay, Replay, Replay]
    """(a), (b) and (c), in that order."""

    @property
    def samples_ratio(self) -> float:
        return self.replays[0].cpu_s / self.replays[1].cpu_s

    @property
    def target_ratio(self) -> float:
        return LINEAR_SLACK * self.samples

    @property
    def one_sample_ratio(self) -> float:
        return self.replays[1].cpu_s / self.replays[2].cpu_s

    def summary(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "calls_per_case": CALLS,
            "samples": self.samples,
            "repeats": len(self.replays[0].runs),
            "calls_with_a_spread": self.calls_with_a_spread,
            **{f"{replay.key}_s": round(replay.cpu_s, 4) for replay in self.replays},
            "samples_ratio": round(self.samples_ratio, 2),
            "target_ratio": round(self.target_ratio, 2),
            "one_sample_ratio": round(self.one_sample_ratio, 3),
            **{f"{replay.key}_rss_mib": round(replay.rss_mib, 1) for replay in self.replays},
            "runs_s": {
                replay.key: [round(run.cpu_seconds, 3) for run in replay.runs]
                for replay in self.replays
            },
        }


def measure(workdir: Path, cases: int, samples: int, repeats: int) -> Measurement:
    sampled = workdir / "sampled"
    plain = workdir / "plain"
    with local_chat_completions(counting_completion()) as server:
        base_url = f"http://127.0.0.1:{server.port}/v1"
        for folder in (sampled, plain):
            write_project(folder, base_url, cases)
        timed_pytest(sampled, "--promptflow-record=all", f"--promptflow-samples={samples}")
        timed_pytest(plain, "--promptflow-record=all")
    spread = check_recordings(sampled, cases, samples)
    check_recordings(plain, cases, 1)
    before = {folder: files_digest(folder) for folder in (sampled, plain)}

    replays = (
        Replay(
            "sampled",
            f"(a) {samples} samples",
            sampled,
            (f"--promptflow-samples={samples}",),
            cases * CALLS * samples,
            cases,
        ),
        Replay(
            "one_of_sampled",
            f"(b) 1 of {samples} samples",
            sampled,
            ("--promptflow-samples=1",),
            cases * CALLS,
            None,
        ),
        Replay("plain", "(c) 1-sample files", plain, (), cases * CALLS, None),
    )
    for _ in range(repeats):
        for replay in replays:
            replay.run()
    for folder, digest in before.items():
        if files_digest(folder) != digest:
            raise SystemExit(f"a replay changed the recorded runs under {folder}")
    return Measurement(cases, samples, spread, replays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=200, help="test cases of the suite")
    parser.add_argument("--samples", type=int, default=5, help="samples of each case")
    parser.add_argument("--repeats", type=int, default=5, help="runs per replay (median kept)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    arguments = parser.parse_args()
    if arguments.samples < 2:
        parser.error("--samples must be at least 2")

    with tempfile.TemporaryDirectory(prefix="promptflow-samples-bench-") as temporary:
        measurement = measure(
            Path(temporary), arguments.cases, arguments.samples, arguments.repeats
        )

    print(
        f"{measurement.cases} cases x {CALLS} calls, {measurement.samples} samples recorded "
        f"({measurement.calls_with_a_spread} calls with more than one golden value); "
        f"CPU seconds of the tests, median of {arguments.repeats} runs"
    )
    header = f"{'replay':<28} {'CPU s':>8} {'peak MiB':>9}   runs (s), in order"
    print(header)
    print("-" * len(header))
    for replay in measurement.replays:
        print(
            f"{replay.name:<28} {replay.cpu_s:>8.3f} {replay.rss_mib:>9.1f}   "
            + " ".join(f"{run.cpu_seconds:.3f}" for run in replay.runs)
        )
    ratio, target = measurement.samples_ratio, measurement.target_ratio
    print(
        f"(a)/(b) = {ratio:.2f}x, {'within' if ratio <= target else 'ABOVE'} "
        f"the target of {target:.1f}x"
    )
    print(f"(b)/(c) = {measurement.one_sample_ratio:.2f}x")
    if arguments.json is not None:
        arguments.json.write_text(json.dumps(measurement.summary(), indent=2) + "\n")


if __name__ == "__main__":
    main()
