"""The statistics of quality figures, against scipy, published values and properties.

scipy and numpy are test dependencies only: the package computes with the standard
library, and the first test holds it to that.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from pytest_promptflow.quality.statistics import (
    LabelFigures,
    confusion,
    fisher_exact_two_sided,
    labels_in_order,
    macro_f1,
    mean_t_interval,
    mid_p_mcnemar,
    paired_verdict,
    per_label,
    proportion,
    student_t_quantile,
    wilson_interval,
)

CONFIDENCES = [0.5, 0.8, 0.9, 0.95, 0.99, 0.999]
# The property tests run without hypothesis's deadline: many call scipy, and the machine
# running them may be busy.


def test_the_statistics_import_neither_scipy_nor_numpy() -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys

                import pytest_promptflow.quality
                from pytest_promptflow.quality import statistics

                assert statistics.wilson_interval(1, 2) is not None
                heavy = sorted(
                    name for name in sys.modules if name.split(".")[0] in ("scipy", "numpy")
                )
                assert heavy == [], heavy
                """
            ),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert completed.returncode == 0, completed.stderr


# --- proportion -------------------------------------------------------------------------


def test_a_proportion_is_the_count_divided_exactly() -> None:
    assert proportion(1, 3) == 1 / 3
    assert proportion(14, 14) == 1.0
    assert proportion(0, 14) == 0.0
    assert proportion(0, 0) is None


@pytest.mark.parametrize(
    ("correct", "n", "error"),
    [(3, 2, ValueError), (-1, 2, ValueError), (1, -2, ValueError), (True, 2, TypeError)],
)
def test_impossible_counts_are_refused(correct: int, n: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        proportion(correct, n)
    with pytest.raises(error):
        wilson_interval(correct, n)


# --- Wilson interval --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("correct", "n", "published"),
    # The example chain's 14 tickets.
    [(11, 14, (0.524, 0.924)), (13, 14, (0.685, 0.987))],
)
def test_wilson_interval_matches_published_values(
    correct: int, n: int, published: tuple[float, float]
) -> None:
    interval = wilson_interval(correct, n)

    assert interval is not None
    assert (round(interval[0], 3), round(interval[1], 3)) == published


@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_wilson_interval_matches_scipy_for_every_count_up_to_40(confidence: float) -> None:
    counts = [(correct, n) for n in range(1, 41) for correct in range(n + 1)]
    counts += [(correct, 10**6) for correct in (0, 1, 500_000, 999_999, 10**6)]
    for correct, n in counts:
        reference = stats.binomtest(correct, n).proportion_ci(
            confidence_level=confidence, method="wilson"
        )
        interval = wilson_interval(correct, n, confidence)
        assert interval is not None
        assert interval[0] == pytest.approx(reference.low, rel=1e-12, abs=1e-15)
        assert interval[1] == pytest.approx(reference.high, rel=1e-12, abs=1e-15)


# At 95% the formula alone gives a high bound one ulp off 1.0 for n = 9, 10 and 11.
@pytest.mark.parametrize("n", [1, 2, 9, 10, 11, 14, 1000])
def test_wilson_interval_is_exact_at_the_edges(n: int) -> None:
    none_correct = wilson_interval(0, n)
    all_correct = wilson_interval(n, n)

    assert none_correct is not None
    assert all_correct is not None
    assert none_correct[0] == 0.0
    assert all_correct[1] == 1.0
    # The other bounds are mirror images: 1 - high(0 of n) == low(n of n).
    assert none_correct[1] == pytest.approx(1 - all_correct[0], rel=1e-12, abs=0)
    assert 0.0 < none_correct[1] < 1.0


def test_wilson_interval_of_no_item_is_none() -> None:
    assert wilson_interval(0, 0) is None


@pytest.mark.parametrize("confidence", [0.0, 1.0, -0.5, 1.5, math.nan])
def test_wilson_interval_refuses_a_confidence_outside_0_1(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 2, confidence)


@settings(deadline=None)
@given(
    n=st.integers(1, 10_000),
    data=st.data(),
    confidences=st.lists(st.sampled_from(CONFIDENCES), min_size=2, max_size=2, unique=True),
)
def test_wilson_interval_holds_the_rate_and_widens_with_confidence(
    n: int, data: st.DataObject, confidences: list[float]
) -> None:
    correct = data.draw(st.integers(0, n))
    lower, higher = sorted(confidences)
    narrow = wilson_interval(correct, n, lower)
    wide = wilson_interval(correct, n, higher)

    assert narrow is not None
    assert wide is not None
    assert 0.0 <= wide[0] <= narrow[0] <= correct / n <= narrow[1] <= wide[1] <= 1.0


# --- mid-p McNemar ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixed", "broken", "p_value"),
    [
        (2, 0, 0.25),  # 2 * 0 + 1/4
        (0, 6, 0.015625),  # 2 * 0 + 1/64
        (3, 3, 1.0),  # 2 * 22/64 + 20/64
        (1, 5, 0.125),  # 2 * 1/64 + 6/64
        (5, 0, 0.03125),  # 1/32
        (1, 0, 0.5),
    ],
)
def test_mid_p_mcnemar_matches_hand_computed_values(
    fixed: int, broken: int, p_value: float
) -> None:
    assert mid_p_mcnemar(fixed, broken) == p_value


def test_mid_p_mcnemar_without_discordant_pairs_is_none() -> None:
    assert mid_p_mcnemar(0, 0) is None


def test_mid_p_mcnemar_matches_scipy_binomial_up_to_100_pairs() -> None:
    for fixed in range(101):
        for broken in range(101 - fixed):
            if fixed + broken == 0:
                continue
            smaller, total = min(fixed, broken), fixed + broken
            reference = min(
                1.0,
                2 * stats.binom.cdf(smaller - 1, total, 0.5) + stats.binom.pmf(smaller, total, 0.5),
            )
            assert mid_p_mcnemar(fixed, broken) == pytest.approx(reference, rel=1e-12, abs=0)


@settings(deadline=None)
@given(fixed=st.integers(0, 400), broken=st.integers(0, 400))
def test_mid_p_mcnemar_is_symmetric_and_a_probability(fixed: int, broken: int) -> None:
    p_value = mid_p_mcnemar(fixed, broken)
    if fixed + broken == 0:
        assert p_value is None
        return

    assert p_value is not None
    assert p_value == mid_p_mcnemar(broken, fixed)
    assert 0.0 < p_value <= 1.0
    assert (p_value == 1.0) == (fixed == broken)


@pytest.mark.parametrize(
    ("fixed", "broken", "any_golden", "verdict"),
    [
        (5, 0, False, "new"),
        (0, 0, False, "new"),
        (0, 0, True, "unchanged"),
        (5, 0, True, "better"),  # p = 1/32
        (0, 5, True, "worse"),
        (4, 0, True, "inconclusive"),  # p = 1/16
        (3, 3, True, "inconclusive"),
        (20, 8, True, "better"),
        (8, 20, True, "worse"),
    ],
)
def test_paired_verdict(fixed: int, broken: int, any_golden: bool, verdict: str) -> None:
    assert paired_verdict(fixed, broken, any_golden) == verdict


@pytest.mark.parametrize("alpha", [0.0, 1.0, 1.5])
def test_paired_verdict_refuses_an_alpha_outside_0_1(alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha must be strictly between 0 and 1"):
        paired_verdict(5, 0, True, alpha)


def test_paired_verdict_needs_p_strictly_below_alpha() -> None:
    assert paired_verdict(5, 0, True, alpha=0.03125) == "inconclusive"
    assert paired_verdict(5, 0, True, alpha=0.0313) == "better"


@settings(deadline=None)
@given(fixed=st.integers(0, 200), broken=st.integers(0, 200), alpha=st.floats(0.001, 0.5))
def test_paired_verdict_follows_the_p_value_and_mirrors(
    fixed: int, broken: int, alpha: float
) -> None:
    verdict = paired_verdict(fixed, broken, True, alpha)
    mirrored = paired_verdict(broken, fixed, True, alpha)
    p_value = mid_p_mcnemar(fixed, broken)

    swap = {"better": "worse", "worse": "better"}
    assert mirrored == swap.get(verdict, verdict)
    if p_value is None:
        assert verdict == "unchanged"
    elif p_value < alpha:
        assert verdict == ("better" if fixed > broken else "worse")
    else:
        assert verdict == "inconclusive"


# --- Fisher's exact test ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "published", "digits"),
    [
        ([[6, 4], [0, 10]], 0.0108, 4),
        ([[6, 4], [0, 10]], 0.011, 3),
        ([[3, 2], [0, 5]], 0.1667, 4),
        ([[3, 1], [1, 3]], 0.4857, 4),  # the lady tasting tea: 34/70
    ],
)
def test_fisher_exact_matches_published_values(
    table: list[list[int]], published: float, digits: int
) -> None:
    (a, b), (c, d) = table

    assert round(fisher_exact_two_sided(a, b, c, d), digits) == published


def test_fisher_exact_is_the_exact_rational_rounded_once() -> None:
    assert fisher_exact_two_sided(3, 1, 1, 3) == 34 / 70
    assert fisher_exact_two_sided(6, 4, 0, 10) == 420 / 38760


@pytest.mark.parametrize(
    "table",
    [(0, 0, 0, 0), (0, 0, 3, 4), (5, 7, 0, 0), (0, 4, 0, 9), (6, 0, 2, 0), (12, 0, 0, 0)],
)
def test_fisher_exact_with_a_row_or_column_of_zeros_is_1(table: tuple[int, int, int, int]) -> None:
    assert fisher_exact_two_sided(*table) == 1.0


@pytest.mark.parametrize("first_row", range(13))
def test_fisher_exact_matches_scipy_on_every_table_of_rows_up_to_12(first_row: int) -> None:
    for second_row in range(13):
        for a in range(first_row + 1):
            for c in range(second_row + 1):
                b, d = first_row - a, second_row - c
                reference = stats.fisher_exact([[a, b], [c, d]], alternative="two-sided")
                assert fisher_exact_two_sided(a, b, c, d) == pytest.approx(
                    reference.pvalue, rel=1e-12, abs=0
                ), (a, b, c, d)


@settings(max_examples=300, deadline=None)
@given(cells=st.tuples(*[st.integers(0, 150)] * 4))
def test_fisher_exact_matches_scipy_on_larger_tables(cells: tuple[int, int, int, int]) -> None:
    a, b, c, d = cells
    reference = stats.fisher_exact([[a, b], [c, d]], alternative="two-sided").pvalue

    assert fisher_exact_two_sided(a, b, c, d) == pytest.approx(reference, rel=1e-10, abs=0)


def test_fisher_exact_counts_ties_with_scipys_tolerance() -> None:
    # Margins 58/146 and 60/144 hold two tables (top-left 20 and 14) whose probabilities
    # differ by 8.4e-8 relative: tied under R's 1 + 1e-7, not under scipy's 1 + 1e-14.
    # With 1 + 1e-7 the first p-value would be 0.3944449761955223.
    assert fisher_exact_two_sided(20, 38, 40, 106) == pytest.approx(
        0.31361807548372905, rel=1e-12, abs=0
    )
    assert fisher_exact_two_sided(14, 44, 46, 100) == pytest.approx(
        0.3944449761955223, rel=1e-12, abs=0
    )
    reference = stats.fisher_exact([[20, 38], [40, 106]]).pvalue
    assert fisher_exact_two_sided(20, 38, 40, 106) == pytest.approx(reference, rel=1e-12, abs=0)


@settings(deadline=None)
@given(cells=st.tuples(*[st.integers(0, 60)] * 4))
def test_fisher_exact_ignores_which_row_or_column_comes_first(
    cells: tuple[int, int, int, int],
) -> None:
    a, b, c, d = cells
    p_value = fisher_exact_two_sided(a, b, c, d)

    assert 0.0 < p_value <= 1.0
    assert fisher_exact_two_sided(c, d, a, b) == p_value  # rows swapped
    assert fisher_exact_two_sided(b, a, d, c) == p_value  # columns swapped
    assert fisher_exact_two_sided(a, c, b, d) == p_value  # transposed


# --- Student's t quantile ---------------------------------------------------------------

# Upper probabilities from 0.501 to 1 - 1e-100, and their mirror images below 0.5.
# Within about 1e-6 of 0.5 scipy's own quantile loses relative precision (for df = 4
# by 4e-4 at p = 0.5 + 1e-7), so the centre is checked separately below.
UPPER_PROBABILITIES = [
    0.501,
    0.51,
    0.6,
    0.75,
    0.9,
    0.95,
    0.975,
    0.99,
    0.995,
    0.999,
    0.9999,
    1 - 1e-6,
    1 - 1e-9,
    1 - 1e-12,
]
PROBABILITIES = [
    *UPPER_PROBABILITIES,
    0.499,
    0.25,
    0.05,
    0.025,
    1e-3,
    1e-6,
    1e-12,
    1e-20,
    1e-50,
    1e-100,
]


@pytest.mark.parametrize("df", range(1, 201))
def test_t_quantile_matches_scipy_for_df_1_to_200(df: int) -> None:
    for p in PROBABILITIES:
        assert student_t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-9, abs=0), p


@pytest.mark.parametrize(
    "df",
    [250, 500, 1000, 10_000, 50_000, 99_999, 100_000, 1e6, 1e8, 1e10, 1e15, 0.7, 1.5, 2.5, 3.3],
)
def test_t_quantile_matches_scipy_for_large_and_fractional_df(df: float) -> None:
    for p in PROBABILITIES:
        if df < 1 and p < 1e-50:
            continue  # beyond 1e150, where scipy's quantile stops at about 3e153
        assert student_t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-9, abs=0), p


@pytest.mark.parametrize("df", [10_000, 50_000, 99_999])
def test_t_quantile_keeps_12_digits_for_df_in_the_ten_thousands(df: float) -> None:
    # Where differences of log-gammas would leave 1e-11 to 1e-10.
    for p in [0.6, 0.9, 0.975, 0.999]:
        assert student_t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=2e-12, abs=0), p


@pytest.mark.parametrize(
    ("p", "df", "published"),
    # Two-sided 95% and 99% critical values of a printed t table.
    [
        (0.975, 1, 12.706),
        (0.975, 2, 4.303),
        (0.975, 5, 2.571),
        (0.975, 10, 2.228),
        (0.975, 30, 2.042),
        (0.975, 120, 1.980),
        (0.975, math.inf, 1.960),
        (0.995, 1, 63.657),
        (0.995, 10, 3.169),
    ],
)
def test_t_quantile_matches_a_published_table(p: float, df: float, published: float) -> None:
    assert round(student_t_quantile(p, df), 3) == published


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7, 30, 1000, 1e6])
def test_t_quantile_keeps_its_relative_precision_at_the_centre(df: float) -> None:
    # Within 2**-30 of the median the quantile is (p - 1/2) / density(0) to 1e-17.
    offset = 2.0**-30
    log_density_at_0 = (
        math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
        if df < 1e5
        else -0.5 * math.log(2 * math.pi) + math.log1p(-1 / (4 * df))
    )
    expected = offset / math.exp(log_density_at_0)

    assert student_t_quantile(0.5 + offset, df) == pytest.approx(expected, rel=1e-12, abs=0)
    assert student_t_quantile(0.5 - offset, df) == pytest.approx(-expected, rel=1e-12, abs=0)


@settings(deadline=None)
@given(
    numerator=st.integers(1, 2**30 - 1),
    df=st.one_of(st.integers(1, 500), st.floats(0.5, 1e7)),
)
def test_t_quantile_is_antisymmetric_and_increasing(numerator: int, df: float) -> None:
    p = numerator / 2**31  # below 0.5, and 1 - p is exact
    lower = student_t_quantile(p, df)

    assert student_t_quantile(1 - p, df) == -lower
    assert lower < 0.0
    assert student_t_quantile(min(p * 1.5, 0.5 - 2**-31), df) >= lower


def test_t_quantile_of_the_median_is_0_and_of_heavy_tails_may_be_infinite() -> None:
    assert student_t_quantile(0.5, 3) == 0.0
    # df = 1/2: P(T < t) falls like |t|^-1/2, so the 1e-300 quantile is about -1e600.
    assert student_t_quantile(1e-300, 0.5) == -math.inf


@pytest.mark.parametrize(("p", "df"), [(0.0, 3), (1.0, 3), (0.5, 0), (0.5, -1), (0.9, math.nan)])
def test_t_quantile_refuses_impossible_arguments(p: float, df: float) -> None:
    with pytest.raises(ValueError, match=r"p must be strictly between 0 and 1|df must be positive"):
        student_t_quantile(p, df)


# --- mean and Student t interval --------------------------------------------------------


def test_mean_t_interval_of_1_to_5_matches_a_hand_computation() -> None:
    # mean 3, s² = 2.5, s/√n = √0.5, t(0.975, 4) = 2.776 of a printed table.
    result = mean_t_interval([1, 2, 3, 4, 5])

    assert result is not None
    centre, low, high = result
    assert centre == 3.0
    assert low is not None
    assert high is not None
    assert round(low, 3) == round(3 - 2.776445 * math.sqrt(0.5), 3) == 1.037
    assert round(high, 3) == 4.963


@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.95, 0.99])
@settings(deadline=None)
@given(
    values=st.lists(
        # scipy's standard error underflows to 0 (and its interval to nan) far sooner
        # than the exact variance does: values below 1e-100 become 0.
        st.floats(-1e6, 1e6).map(lambda value: 0.0 if abs(value) < 1e-100 else value),
        min_size=2,
        max_size=60,
    )
)
def test_mean_t_interval_matches_scipy(values: list[float], confidence: float) -> None:
    result = mean_t_interval(values, confidence)
    assert result is not None
    centre, low, high = result
    assert low is not None
    assert high is not None

    assert centre == pytest.approx(float(np.mean(values)), rel=1e-12, abs=1e-9)
    if len(set(values)) == 1:
        # Exactly no spread (numpy's float mean may leave some).
        assert low == high == centre
        return
    reference = stats.t.interval(confidence, len(values) - 1, loc=centre, scale=stats.sem(values))
    scale = abs(centre) + (high - low)
    assert low == pytest.approx(reference[0], rel=1e-9, abs=1e-9 * scale)
    assert high == pytest.approx(reference[1], rel=1e-9, abs=1e-9 * scale)
    assert low <= centre <= high


def test_mean_t_interval_edges() -> None:
    assert mean_t_interval([]) is None
    assert mean_t_interval([3.5]) == (3.5, None, None)
    assert mean_t_interval([0.1] * 7) == (0.1, 0.1, 0.1)


def test_mean_t_interval_mean_is_the_exact_mean_rounded_once() -> None:
    scores = [0.6, 0.97, 0.44, 0.1, 0.09]
    result = mean_t_interval(scores)

    assert result is not None
    assert result[0] == float(sum(map(Fraction, scores)) / 5) == 0.44
    # What adding floats gives, plainly or exactly rounded before dividing:
    assert sum(scores) / 5 == 0.43999999999999995
    assert math.fsum(scores) / 5 == 0.44000000000000006


@pytest.mark.parametrize(
    ("values", "error"),
    [([1.0, math.nan], ValueError), ([1.0, math.inf], ValueError), ([1.0, True], TypeError)],
)
def test_mean_t_interval_refuses_values_that_are_not_finite_numbers(
    values: list[float], error: type[Exception]
) -> None:
    with pytest.raises(error, match="values must"):
        mean_t_interval(values)


# --- classification figures -------------------------------------------------------------


def test_labels_are_ordered_by_kind_then_value() -> None:
    values = ["b", 2, True, None, "a", 1.5, False, 1, 1.0, True, -3, None]

    assert labels_in_order(values) == [None, False, True, -3, 1, 1.5, 2, "a", "b"]


def test_labels_tell_true_from_1_and_keep_the_first_of_equal_numbers() -> None:
    labels = labels_in_order([1.0, True, 1, False, 0])

    assert labels == [False, True, 0, 1.0]
    assert [type(label) for label in labels] == [bool, bool, int, float]


def test_labels_order_strings_by_code_point_and_numbers_by_value() -> None:
    assert labels_in_order(["b", "B", "é", "a", "Z"]) == ["B", "Z", "a", "b", "é"]
    assert labels_in_order([10, 9.5, -1, 2**60, 10**400, -0.0]) == [
        -1,
        -0.0,
        9.5,
        10,
        2**60,
        10**400,
    ]
    assert labels_in_order([]) == []


@pytest.mark.parametrize(
    ("value", "error"),
    [(math.nan, ValueError), (math.inf, ValueError), ([1], TypeError), ({"a": 1}, TypeError)],
)
def test_labels_refuse_what_is_not_a_finite_json_scalar(
    value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match="labels must"):
        labels_in_order(["a", value])  # type: ignore[list-item]


# scikit-learn's documented example of precision_recall_fscore_support: per label (cat,
# dog, pig) precision 0.66…, 0, 0, recall 1, 0, 0, F1 0.8, 0, 0, support 2, 2, 2; the
# macro averages (0.22…, 0.33…, 0.26…).
DOCUMENTED_EXPECTED = ["cat", "dog", "pig", "cat", "dog", "pig"]
DOCUMENTED_ANSWERED = ["cat", "pig", "dog", "cat", "cat", "dog"]


def test_classification_figures_match_a_documented_example() -> None:
    labels = labels_in_order(DOCUMENTED_EXPECTED + DOCUMENTED_ANSWERED)
    matrix = confusion(DOCUMENTED_EXPECTED, DOCUMENTED_ANSWERED, labels)
    figures = per_label(matrix, labels)

    assert labels == ["cat", "dog", "pig"]
    assert matrix == [[2, 0, 0], [1, 0, 1], [0, 2, 0]]
    assert figures == [
        LabelFigures("cat", precision=2 / 3, recall=1.0, f1=0.8, support=2),
        LabelFigures("dog", precision=0.0, recall=0.0, f1=0.0, support=2),
        LabelFigures("pig", precision=0.0, recall=0.0, f1=0.0, support=2),
    ]
    assert macro_f1(matrix) == 4 / 15
    assert round(sum(figure.precision for figure in figures) / 3, 2) == 0.22
    assert round(sum(figure.recall for figure in figures) / 3, 2) == 0.33


def test_confusion_counts_true_and_1_apart() -> None:
    labels = labels_in_order([True, 1])

    assert confusion([True, 1, 1.0], [1, True, 1], labels) == [[0, 1], [1, 1]]


def test_a_figure_with_a_zero_denominator_is_0() -> None:
    # "b" is answered but never expected, "c" expected but never answered, "d" neither.
    labels = ["a", "b", "c", "d"]
    matrix = confusion(["a", "a", "c"], ["a", "b", "a"], labels)
    figures = {figure.label: figure for figure in per_label(matrix, labels)}

    assert figures["b"] == LabelFigures("b", precision=0.0, recall=0.0, f1=0.0, support=0)
    assert figures["c"] == LabelFigures("c", precision=0.0, recall=0.0, f1=0.0, support=1)
    assert figures["d"] == LabelFigures("d", precision=0.0, recall=0.0, f1=0.0, support=0)
    assert figures["a"] == LabelFigures("a", precision=0.5, recall=0.5, f1=0.5, support=2)
    assert macro_f1(matrix) == 0.5 / 4  # "d" counts, with F1 0


def test_macro_f1_of_no_label_is_none_and_of_one_item_is_0_or_1() -> None:
    assert macro_f1([]) is None
    assert per_label([], []) == []
    assert macro_f1(confusion(["x"], ["x"], ["x"])) == 1.0
    assert macro_f1(confusion(["x"], ["y"], ["x", "y"])) == 0.0


def test_macro_f1_is_the_exact_mean_rounded_once() -> None:
    # F1 of a, b and c: 1/3, 1/3 and 1. Their mean is 5/9; adding the floats and
    # dividing gives 0.5555555555555555, one ulp below it.
    expected = ["a", "c", "a", "b", "a", "b", "b"]
    answered = ["b", "c", "b", "a", "a", "b", "a"]
    labels = labels_in_order(expected + answered)
    matrix = confusion(expected, answered, labels)
    figures = per_label(matrix, labels)

    assert [figure.f1 for figure in figures] == [1 / 3, 1 / 3, 1.0]
    assert sum(figure.f1 for figure in figures) / 3 == 0.5555555555555555
    assert macro_f1(matrix) == 5 / 9 == 0.5555555555555556


@pytest.mark.parametrize(
    ("expected", "answered", "labels", "message"),
    [
        (["a"], ["a", "b"], ["a", "b"], "differ in length"),
        (["a"], ["z"], ["a", "b"], "'z' is not among the labels"),
        ([1], [1], [1, 1.0], "listed twice"),
        ([True], [True], [1], "True is not among the labels"),
    ],
)
def test_confusion_refuses_inconsistent_arguments(
    expected: list[object], answered: list[object], labels: list[object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        confusion(expected, answered, labels)  # type: ignore[arg-type]


def test_per_label_refuses_a_matrix_that_does_not_fit_its_labels() -> None:
    with pytest.raises(ValueError, match="2 labels for a confusion matrix of 1 rows"):
        per_label([[1]], ["a", "b"])
    with pytest.raises(ValueError, match="must be square"):
        per_label([[1, 0], [0]], ["a", "b"])
    with pytest.raises(ValueError, match="must not be negative"):
        macro_f1([[-1]])


MIXED_LABELS = st.sampled_from([None, False, True, 0, 1, 2.5, -1, "a", "b", "B", ""])


@settings(deadline=None)
@given(
    pairs=st.lists(st.tuples(MIXED_LABELS, MIXED_LABELS), max_size=80),
)
def test_classification_figures_agree_with_numpy(pairs: list[tuple[object, object]]) -> None:
    expected = [want for want, _ in pairs]
    answered = [got for _, got in pairs]
    labels = labels_in_order(expected + answered)  # type: ignore[arg-type]
    matrix = confusion(expected, answered, labels)  # type: ignore[arg-type]
    figures = per_label(matrix, labels)

    # The same figures the long way round, in numpy, with the harmonic-mean form of F1.
    identity = [(type(label) is bool, label) for label in labels]
    position = {key: i for i, key in enumerate(identity)}
    rows = [position[(type(want) is bool, want)] for want in expected]
    columns = [position[(type(got) is bool, got)] for got in answered]
    reference = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(reference, (rows, columns), 1)
    hits = np.diag(reference).astype(float)
    support = reference.sum(axis=1)
    predicted = reference.sum(axis=0)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(hits), where=total > 0)

    assert matrix == reference.tolist()
    assert [figure.support for figure in figures] == support.tolist()
    assert sum(map(sum, matrix)) == len(pairs)
    for figure, p, r, f in zip(figures, precision, recall, f1, strict=True):
        assert figure.precision == pytest.approx(p, abs=1e-15)
        assert figure.recall == pytest.approx(r, abs=1e-15)
        assert figure.f1 == pytest.approx(f, abs=1e-12)
        assert 0.0 <= figure.f1 <= 1.0
    if labels:
        assert macro_f1(matrix) == pytest.approx(float(f1.mean()), abs=1e-12)
    else:
        assert macro_f1(matrix) is None


@settings(deadline=None)
@given(expected=st.lists(MIXED_LABELS, min_size=1, max_size=50))
def test_all_correct_answers_give_f1_1_for_every_label(expected: list[object]) -> None:
    labels = labels_in_order(expected)  # type: ignore[arg-type]
    matrix = confusion(expected, expected, labels)  # type: ignore[arg-type]

    assert all(figure.f1 == 1.0 for figure in per_label(matrix, labels))
    assert macro_f1(matrix) == 1.0


@settings(deadline=None)
@given(expected=st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=50))
def test_all_wrong_answers_give_f1_0_for_every_label(expected: list[str]) -> None:
    shifted = {"a": "b", "b": "c", "c": "a"}
    answered = [shifted[want] for want in expected]
    labels = labels_in_order(expected + answered)
    matrix = confusion(expected, answered, labels)

    assert all(figure.f1 == 0.0 for figure in per_label(matrix, labels))
    assert macro_f1(matrix) == 0.0
