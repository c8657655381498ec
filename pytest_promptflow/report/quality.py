"""Quality rows in words: the terminal table, and the texts every report shares."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pytest_promptflow.quality.gate import GateResult
from pytest_promptflow.quality.tally import QualityRow, QualityTally

QUALITY_HEADING = (
    "quality: items right against their cases' expected values, golden -> now "
    "[95% Wilson interval]; paired verdict by mid-p McNemar"
)


def short_test(test: str) -> str:
    """``test_chain`` of ``tests/test_app.py::test_chain``; ``Class::test`` in a class."""
    return test.partition("::")[2] or test


def rate_text(rate: dict[str, Any] | None) -> str:
    """``11/14 78.6% [52.4-92.4]``; ``-`` without a rate, ``0/0`` when nothing scored."""
    if rate is None:
        return "-"
    if not rate["scored"]:
        return "0/0"
    return (
        f"{rate['correct']}/{rate['scored']} {rate['rate'] * 100:.1f}% "
        f"[{rate['low'] * 100:.1f}-{rate['high'] * 100:.1f}]"
    )


def mean_text(mean: dict[str, Any] | None) -> str:
    """``mean 0.83 [0.71-0.95]`` (95% Student t interval); ``mean 0.83`` of one value;
    empty without values."""
    if mean is None:
        return ""
    if mean["low"] is None or mean["high"] is None:
        return f"mean {mean['value']:.2f}"
    return f"mean {mean['value']:.2f} [{mean['low']:.2f}-{mean['high']:.2f}]"


def verdict_text(verdict: str, p_value: float | None, fixed: int, broken: int) -> str:
    """``better p=0.012``, ``worse? p=0.25 inconclusive``, ``unchanged``, ``new``."""
    if verdict in ("unchanged", "new") or p_value is None:
        return verdict
    if verdict in ("better", "worse"):
        return f"{verdict} p={p_value:.3g}"
    leaning = "better? " if fixed > broken else "worse? " if broken > fixed else ""
    return f"{leaning}p={p_value:.3g} inconclusive"


def cases_text(cases: list[str]) -> str:
    return " ".join(cases) if cases else "-"


def gate_status(result: GateResult) -> str:
    """``met``, ``not met`` or ``not evaluated``."""
    return {True: "met", False: "not met", None: "not evaluated"}[result.passed]


def gate_detail(result: GateResult) -> str:
    """The result's detail without the status it starts with (``met: ...``), which a
    report shows beside it."""
    return result.detail.removeprefix(f"{gate_status(result)}: ")


def row_cells(row: QualityRow) -> list[str]:
    """A row's cells: test, step.field, golden -> now, fixed, broken, verdict."""
    data = row.to_json()
    figures = f"{rate_text(data['golden'])} -> {rate_text(data['now'])}"
    mean = data["mean"]
    if mean is not None and mean["now"] is not None:
        golden = f"{mean['golden']['value']:.2f} -> " if mean["golden"] is not None else ""
        figures += f"  mean {golden}{mean['now']['value']:.2f}"
    return [
        short_test(row.test),
        f"{row.step}.{row.name}",
        figures,
        f"fixed {cases_text(data['fixed'])}",
        f"broken {cases_text(data['broken'])}",
        verdict_text(data["verdict"], data["p_value"], len(data["fixed"]), len(data["broken"])),
    ]


def quality_lines(quality: QualityTally, called: Collection[str]) -> list[str]:
    """The terminal summary's quality table, and the expected steps no test called."""
    rows = [row_cells(row) for row in quality.sorted_rows()]
    lines = []
    if rows:
        widths = [max(len(row[i]) for row in rows) for i in range(2)]
        lines.append(QUALITY_HEADING)
        for row in rows:
            lines.append(f"{row[0]:<{widths[0]}} {row[1]:<{widths[1]}}  " + "  ".join(row[2:]))
    not_called = sorted(quality.expected_steps - set(called))
    if not_called:
        names = ", ".join(not_called)
        lines.append(f"expected values not scored: no test of this session called {names}")
    return lines
