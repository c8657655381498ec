"""What ``@step`` costs per call, against the undecorated function.

Two functions: a trivial one on ints, and one taking and returning small pydantic
models. Each is timed undecorated, as a step with no run active (application code
outside a test), and as a step recording into an active run (inside a test). The run's
calls are cleared between repeats so that memory does not grow with the call count.

    python bench/step_overhead.py [--calls N] [--repeats R] [--json PATH]

Each figure is the best of R repeats of N calls, in microseconds per call; the median
is written to the JSON file as well.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import timeit
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pydantic
from pydantic import BaseModel, Field

from pytest_promptflow import Run, recording_run, step


def add(a: int, b: int) -> int:
    return a + b


class Ticket(BaseModel):
    subject: str
    product: str
    priority: int = Field(ge=1, le=5)


class Urgency(BaseModel):
    level: int = Field(ge=1, le=5)
    reason: str


def classify(ticket: Ticket) -> Urgency:
    return Urgency(level=ticket.priority, reason=f"{ticket.product}: {ticket.subject}")


@dataclass(frozen=True)
class Workload:
    name: str
    function: Callable[..., Any]
    args: tuple[Any, ...]


WORKLOADS = (
    Workload("add(int, int) -> int", add, (2, 3)),
    Workload(
        "classify(Ticket) -> Urgency",
        classify,
        (Ticket(subject="Cannot log in", product="Vault", priority=2),),
    ),
)


@dataclass(frozen=True)
class Timing:
    best_us: float
    median_us: float


@dataclass(frozen=True)
class Result:
    workload: str
    plain: Timing
    stepped_no_run: Timing
    stepped_run: Timing

    @property
    def overhead_no_run_us(self) -> float:
        return self.stepped_no_run.best_us - self.plain.best_us

    @property
    def overhead_run_us(self) -> float:
        return self.stepped_run.best_us - self.plain.best_us


def _timing(totals: list[float], calls: int) -> Timing:
    per_call = [total / calls * 1e6 for total in totals]
    return Timing(best_us=min(per_call), median_us=statistics.median(per_call))


def _timer(function: Callable[..., Any], args: tuple[Any, ...]) -> timeit.Timer:
    # A statement string rather than a lambda: no extra frame in what is measured.
    return timeit.Timer("function(*args)", globals={"function": function, "args": args})


def time_plain(
    function: Callable[..., Any], args: tuple[Any, ...], calls: int, repeats: int
) -> Timing:
    return _timing(_timer(function, args).repeat(repeat=repeats, number=calls), calls)


def time_in_run(
    function: Callable[..., Any], args: tuple[Any, ...], calls: int, repeats: int
) -> Timing:
    timer = _timer(function, args)
    run = Run(case_id="bench", test_id="bench/step_overhead.py")
    totals = []
    with recording_run(run):
        for _ in range(repeats):
            run.calls.clear()
            totals.append(timer.timeit(number=calls))
            if len(run.calls) != calls:
                raise RuntimeError(f"expected {calls} recorded calls, found {len(run.calls)}")
    run.calls.clear()
    return _timing(totals, calls)


def measure(workload: Workload, calls: int, repeats: int) -> Result:
    stepped = step(workload.function)
    # This first call, outside the timing, also resolves the step's annotations.
    if stepped(*workload.args) != workload.function(*workload.args):
        raise RuntimeError(f"{workload.name}: the step returned something else")
    return Result(
        workload=workload.name,
        plain=time_plain(workload.function, workload.args, calls, repeats),
        stepped_no_run=time_plain(stepped, workload.args, calls, repeats),
        stepped_run=time_in_run(stepped, workload.args, calls, repeats),
    )


def format_table(results: list[Result]) -> str:
    headers = (
        "function",
        "plain",
        "stepped (no run)",
        "stepped (run active)",
        "overhead (no run)",
        "overhead (run)",
    )
    rows = [
        (
            result.workload,
            f"{result.plain.best_us:.3f}",
            f"{result.stepped_no_run.best_us:.3f}",
            f"{result.stepped_run.best_us:.3f}",
            f"+{result.overhead_no_run_us:.3f}",
            f"+{result.overhead_run_us:.3f}",
        )
        for result in results
    ]
    widths = [max(len(row[i]) for row in (headers, *rows)) for i in range(len(headers))]

    def line(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join((first, *rest))

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--calls", type=int, default=20_000, help="calls per repeat (default 20000)"
    )
    parser.add_argument("--repeats", type=int, default=7, help="repeats per figure (default 7)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    options = parser.parse_args(argv)
    if options.calls < 1 or options.repeats < 1:
        parser.error("--calls and --repeats must be at least 1")

    results = [measure(workload, options.calls, options.repeats) for workload in WORKLOADS]

    print(
        f"@step overhead, microseconds per call (best of {options.repeats} x {options.calls} calls)"
    )
    print(f"python {platform.python_version()}, pydantic {pydantic.VERSION}, {platform.machine()}")
    print()
    print(format_table(results))

    if options.json is not None:
        document = {
            "unit": "microseconds per call",
            "calls": options.calls,
            "repeats": options.repeats,
            "python": platform.python_version(),
            "pydantic": pydantic.VERSION,
            "results": [
                {
                    **asdict(result),
                    "overhead_no_run_us": result.overhead_no_run_us,
                    "overhead_run_us": result.overhead_run_us,
                }
                for result in results
            ],
        }
        options.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {options.json}")

    # The runtime promises application code that it never loads pytest.
    if "pytest" in sys.modules:
        print("error: measuring @step imported pytest", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
