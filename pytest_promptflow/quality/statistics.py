"""Statistics of quality figures: small pure functions of counts, defined at every edge.

Only the standard library is used (``math``, ``fractions``, ``statistics``): these run at
the end of a session, and scipy would make every user install and import it for a
handful of formulas. Where a figure is rational it is computed exactly and rounded once
(a rate is ``correct / n`` as Python divides integers, correctly rounded).

Definitions
-----------

``proportion(correct, n)``
    ``correct / n``; None when ``n == 0``.

``wilson_interval(correct, n, confidence=0.95)``
    The Wilson score interval of the proportion ``p = correct / n`` (Wilson 1927;
    Newcombe 1998, method 3), with ``z`` the ``(1 + confidence) / 2`` quantile of the
    standard normal distribution (``statistics.NormalDist().inv_cdf``)::

        centre = (2·correct + z²) / (2·(n + z²))
        delta  = z · sqrt(z² + 4·correct·(n - correct) / n) / (2·(n + z²))
        (low, high) = (centre - delta, centre + delta)

    None when ``n == 0``. At the edges the bounds are exact: ``correct == 0`` gives
    ``low == 0.0`` and ``correct == n`` gives ``high == 1.0``.

``mid_p_mcnemar(fixed, broken)``
    The mid-p McNemar test of paired outcomes, on the discordant pairs only: ``fixed``
    pairs went from wrong to right, ``broken`` from right to wrong. With
    ``X ~ Binomial(fixed + broken, 1/2)`` and ``k = min(fixed, broken)``::

        p = min(1, 2·P(X < k) + P(X = k))

    computed exactly from binomial coefficients and rounded once. None when
    ``fixed + broken == 0`` (no discordant pair: nothing to test). Equal counts give 1.

``paired_verdict(fixed, broken, any_golden, alpha=0.05)``
    ``"new"`` when there is no golden value to compare with (``any_golden`` false);
    else ``"unchanged"`` when ``fixed + broken == 0``; else, with ``p`` the mid-p
    McNemar p-value, ``"better"`` when ``p < alpha`` and ``fixed > broken``,
    ``"worse"`` when ``p < alpha`` and ``broken > fixed``, and ``"inconclusive"``
    otherwise.

``fisher_exact_two_sided(a, b, c, d)``
    Fisher's exact test of the 2x2 table ``[[a, b], [c, d]]``, two-sided as
    ``scipy.stats.fisher_exact`` computes it: with the margins fixed, the table whose
    top-left cell is ``x`` has probability ``C(a+b, x)·C(c+d, a+c-x) / C(n, a+c)``
    (hypergeometric), and the p-value is the sum of the probabilities of the tables
    at most ``1 + 1e-14`` times as probable as the observed one (scipy's relative
    tolerance for ties). Exact with integers, rounded once. A row or a column of zeros
    (the empty table included) gives 1.0.

``student_t_quantile(p, df)``
    The ``p`` quantile of Student's t distribution with ``df`` degrees of freedom
    (``0 < p < 1``, ``df > 0``, ``math.inf`` for the normal distribution): the ``t``
    with ``P(T <= t) == p``. Relative precision about 1e-12 and better, near
    ``p = 1/2`` too; ``-inf`` or ``inf`` when the quantile is beyond the largest float
    (only for ``df < 1`` and extreme ``p``).

``mean_t_interval(values, confidence=0.95)``
    ``(mean, low, high)``: the mean of the ``n`` finite values and the Student t
    interval ``mean ± t·s/√n``, with ``s`` the sample standard deviation (divisor
    ``n - 1``) and ``t`` the ``(1 + confidence) / 2`` quantile with ``n - 1`` degrees of
    freedom (``student_t_quantile``). The
    mean and variance are computed exactly (``statistics.mean`` and
    ``statistics.variance``) and rounded once. None for no values; ``(mean, None,
    None)`` for one value; ``low == high == mean`` when every value is the same.

``labels_in_order(values)``
    The distinct JSON scalar values, sorted: by kind first, in the order null, booleans
    (``false`` before ``true``), numbers (by value), strings (by Unicode code point).
    Numbers equal in value are one label (``1`` and ``1.0``; the first seen is kept);
    ``true`` is never the number ``1``. Non-finite numbers and non-scalars are refused.

``confusion(expected, answered, labels)``
    The matrix ``m`` with ``m[i][j]`` the number of items expected ``labels[i]`` and
    answered ``labels[j]``; values are matched to labels as ``labels_in_order`` tells
    them apart. A value that is not among the labels is refused.

``per_label(confusion, labels)``
    For each label ``i``, with ``tp = m[i][i]``, ``support`` the row sum (items
    expected ``i``) and ``predicted`` the column sum (items answered ``i``)::

        precision = tp / predicted
        recall    = tp / support
        f1        = 2·tp / (support + predicted)      (= 2·tp / (2·tp + fp + fn))

    each 0 when its denominator is 0.

``macro_f1(confusion)``
    The unweighted mean of the per-label F1 over all the labels of the matrix (a label
    that is neither expected nor answered counts with F1 0), exact and rounded once;
    None when there are no labels.
"""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, TypeAlias

JsonScalar: TypeAlias = bool | int | float | str | None
PairedVerdict: TypeAlias = Literal["better", "worse", "unchanged", "inconclusive", "new"]

_STANDARD_NORMAL = statistics.NormalDist()

# scipy.stats.fisher_exact counts a table as tied with the observed one when its
# probability is at most 1 + 1e-14 times the observed; kept as the integer 10**14 so
# that the comparison stays exact.
_TIE_TOLERANCE_DENOMINATOR = 10**14


# --- counts and proportions -------------------------------------------------------------


def _check_count(name: str, value: int) -> None:
    # bool is an int; a flag passed as a count is a bug in the caller.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")


def _check_probability(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value!r}")


def _check_correct_of(correct: int, n: int) -> None:
    _check_count("correct", correct)
    _check_count("n", n)
    if correct > n:
        raise ValueError(f"correct ({correct}) must not exceed n ({n})")


def proportion(correct: int, n: int) -> float | None:
    """``correct / n``, correctly rounded; None when ``n == 0``."""
    _check_correct_of(correct, n)
    if n == 0:
        return None
    return correct / n


def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """The Wilson score interval ``(low, high)`` of ``correct / n``; None when ``n == 0``.

    ``low`` is exactly 0.0 when ``correct == 0`` and ``high`` exactly 1.0 when
    ``correct == n``.
    """
    _check_correct_of(correct, n)
    _check_probability("confidence", confidence)
    if n == 0:
        return None
    z = _STANDARD_NORMAL.inv_cdf(0.5 + confidence / 2)
    z_squared = z * z
    denominator = 2 * (n + z_squared)
    centre = (2 * correct + z_squared) / denominator
    # 4·correct·(n - correct)/n is the rational 4·n·p·(1 - p): one rounding, not three.
    delta = z * math.sqrt(z_squared + 4 * correct * (n - correct) / n) / denominator
    low = 0.0 if correct == 0 else centre - delta
    high = 1.0 if correct == n else centre + delta
    return low, high


# --- paired comparison: mid-p McNemar ---------------------------------------------------


def mid_p_mcnemar(fixed: int, broken: int) -> float | None:
    """The two-sided mid-p McNemar p-value of ``fixed`` against ``broken`` discordant
    pairs; None when there is none."""
    _check_count("fixed", fixed)
    _check_count("broken", broken)
    discordant = fixed + broken
    if discordant == 0:
        return None
    smaller = min(fixed, broken)
    # P(X = i) = C(n, i) / 2**n: the sum stays an integer over one power of two. Each
    # coefficient comes from the one before (exact division), not from a fresh comb.
    below = 0
    coefficient = 1  # C(n, 0)
    for i in range(smaller):
        below += coefficient
        coefficient = coefficient * (discordant - i) // (i + 1)
    numerator = 2 * below + coefficient
    return min(1.0, numerator / (1 << discordant))


def paired_verdict(fixed: int, broken: int, any_golden: bool, alpha: float = 0.05) -> PairedVerdict:
    """What the new version did case by case against the golden one: ``"new"``,
    ``"unchanged"``, ``"better"``, ``"worse"`` or ``"inconclusive"``."""
    _check_probability("alpha", alpha)
    p_value = mid_p_mcnemar(fixed, broken)
    if not any_golden:
        return "new"
    if p_value is None:
        return "unchanged"
    if p_value < alpha:
        # p < 1 implies fixed != broken, so one of the two holds.
        return "better" if fixed > broken else "worse"
    return "inconclusive"


# --- Fisher's exact test ----------------------------------------------------------------


def fisher_exact_two_sided(a: int, b: int, c: int, d: int) -> float:
    """The two-sided p-value of Fisher's exact test on ``[[a, b], [c, d]]``, as
    ``scipy.stats.fisher_exact(table).pvalue`` defines it."""
    for name, value in (("a", a), ("b", b), ("c", c), ("d", d)):
        _check_count(name, value)
    first_row, second_row, first_column = a + b, c + d, a + c
    second_column = b + d
    if 0 in (first_row, second_row, first_column, second_column):
        return 1.0
    weights = _hypergeometric_weights(first_row, second_row, first_column)
    lowest = max(0, first_column - second_row)
    observed = weights[a - lowest]
    # w ≤ observed·(1 + 1/D)  ⇔  w·D ≤ observed·(D + 1), in integers.
    bound = observed * (_TIE_TOLERANCE_DENOMINATOR + 1)
    at_most_as_probable = sum(w for w in weights if w * _TIE_TOLERANCE_DENOMINATOR <= bound)
    return at_most_as_probable / sum(weights)


def _hypergeometric_weights(first_row: int, second_row: int, first_column: int) -> list[int]:
    """``C(first_row, x)·C(second_row, first_column - x)`` for every possible top-left
    cell ``x``, lowest first: each table's probability times ``C(n, first_column)``."""
    lowest = max(0, first_column - second_row)
    highest = min(first_row, first_column)
    weight = math.comb(first_row, lowest) * math.comb(second_row, first_column - lowest)
    weights = [weight]
    for x in range(lowest, highest):
        # The ratio of neighbouring weights; the division is exact because the next
        # weight is an integer. One multiplication each beats two fresh binomials.
        weight = (
            weight
            * (first_row - x)
            * (first_column - x)
            // ((x + 1) * (second_row - first_column + x + 1))
        )
        weights.append(weight)
    return weights


# --- Student's t distribution -----------------------------------------------------------
#
# Written here rather than taken from scipy: one quantile per interval does not justify
# a runtime dependency that users would install and import. The quantile inverts the
# upper tail P(T > t) = I_x(df/2, 1/2) / 2, x = df / (df + t²), the regularized
# incomplete beta function evaluated by its continued fraction (modified Lentz), by
# Newton's method on log P(T > t) against log t, kept inside a bracket that bisects
# whenever a step would leave it. Its tests hold it to scipy.stats.t.ppf within 1e-9
# relative for df 1 to 200 and large df.

# Coefficients B_2k / (2k·(2k - 1)) of Stirling's series for log Γ.
_STIRLING_COEFFICIENTS = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188)
_HALF_LOG_PI = 0.5 * math.log(math.pi)
_FRACTION_TOLERANCE = 1e-16
_FRACTION_MAX_TERMS = 100_000
_QUANTILE_MAX_STEPS = 200
_LOG_FLOAT_MAX = math.log(2.0**1023)


def _log_gamma_half_step(a: float) -> float:
    """``log Γ(a + 1/2) - log Γ(a)`` for ``a > 0``.

    For large ``a`` the two log-gammas are large and nearly equal, and their difference
    would lose digits (about ``a·log a`` ulps); Stirling's series is subtracted term by
    term instead, the leading terms combined through ``log1p``.
    """
    if a < 20:
        return math.lgamma(a + 0.5) - math.lgamma(a)
    shifted = a + 0.5
    series = sum(
        coefficient * (shifted ** (1 - 2 * k) - a ** (1 - 2 * k))
        for k, coefficient in enumerate(_STIRLING_COEFFICIENTS, start=1)
    )
    return a * math.log1p(0.5 / a) + 0.5 * math.log(a) - 0.5 + series


def _log_beta_half(a: float) -> float:
    """``log B(a, 1/2)``."""
    return _HALF_LOG_PI - _log_gamma_half_step(a)


def _incomplete_beta_fraction(x: float, a: float, b: float) -> float:
    """The continued fraction of ``I_x(a, b)``: ``I_x(a, b) = x^a (1 - x)^b / (a·B(a, b))``
    times this. It converges quickly for ``x < (a + 1) / (a + b + 2)``."""
    tiny = 1e-300
    sum_ab, a_plus_one, a_minus_one = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - sum_ab * x / a_plus_one
    d = 1.0 / (d if abs(d) >= tiny else tiny)
    fraction = d
    for m in range(1, _FRACTION_MAX_TERMS):
        twice_m = 2 * m
        even = m * (b - m) * x / ((a_minus_one + twice_m) * (a + twice_m))
        d = 1.0 + even * d
        d = 1.0 / (d if abs(d) >= tiny else tiny)
        c = 1.0 + even / c
        c = c if abs(c) >= tiny else tiny
        fraction *= d * c
        odd = -(a + m) * (sum_ab + m) * x / ((a + twice_m) * (a_plus_one + twice_m))
        d = 1.0 + odd * d
        d = 1.0 / (d if abs(d) >= tiny else tiny)
        c = 1.0 + odd / c
        c = c if abs(c) >= tiny else tiny
        step = d * c
        fraction *= step
        if abs(step - 1.0) <= _FRACTION_TOLERANCE:
            return fraction
    raise ArithmeticError(f"the incomplete beta fraction did not converge at x={x}, a={a}")


def _t_probabilities(t: float, df: float) -> tuple[float, float, float]:
    """``(P(T > t), P(0 < T < t), log of the density at t)`` for ``t > 0``.

    Whichever of the two probabilities is the smaller is computed directly (the other is
    ``0.5`` minus it), so each keeps its relative precision where a quantile needs it.
    """
    # With ratio = t²/df: x = 1/(1 + ratio) and 1 - x = ratio/(1 + ratio), each formed
    # without overflow and without subtracting from 1.
    ratio = t / df * t
    if ratio == 0.0:
        return 0.5, 0.0, -0.5 * math.log(df) - _log_beta_half(df / 2)
    if ratio > 1.0:
        inverse_ratio = df / t / t
        log_ratio = math.log(ratio) if ratio < math.inf else 2 * math.log(t) - math.log(df)
        log_one_plus_ratio = log_ratio + math.log1p(inverse_ratio)
        log_one_minus_x = -math.log1p(inverse_ratio)
        x = inverse_ratio / (1.0 + inverse_ratio)
        one_minus_x = 1.0 / (1.0 + inverse_ratio)
    else:
        log_one_plus_ratio = math.log1p(ratio)
        log_one_minus_x = math.log(ratio) - log_one_plus_ratio
        x = 1.0 / (1.0 + ratio)
        one_minus_x = ratio / (1.0 + ratio)
    half_df = df / 2
    log_x = -log_one_plus_ratio
    log_beta = _log_beta_half(half_df)
    # The log, as the density underflows far out in the tail while the tail does not.
    log_density = -(df + 1) / 2 * log_one_plus_ratio - 0.5 * math.log(df) - log_beta
    front = math.exp(half_df * log_x + 0.5 * log_one_minus_x - log_beta)
    if x < (half_df + 1.0) / (half_df + 2.5):
        # P(T > t) = I_x(df/2, 1/2) / 2
        tail = 0.5 * front * _incomplete_beta_fraction(x, half_df, 0.5) / half_df
        return tail, 0.5 - tail, log_density
    # P(0 < T < t) = I_{1-x}(1/2, df/2) / 2
    central = front * _incomplete_beta_fraction(one_minus_x, 0.5, half_df)
    return 0.5 - central, central, log_density


def _cornish_fisher(z: float, df: float) -> float:
    """The t quantile from the normal one ``z`` by the expansion in ``1/df`` of
    Abramowitz and Stegun 26.7.5 (terms to ``1/df⁴``)."""
    z2 = z * z
    g1 = (z2 + 1) * z / 4
    g2 = ((5 * z2 + 16) * z2 + 3) * z / 96
    g3 = (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384
    g4 = ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / 92160
    return z + (g1 + (g2 + (g3 + g4 / df) / df) / df) / df


# From this many degrees of freedom on, the continued fraction loses digits (its terms
# cancel to about 1/df) while the expansion's first omitted term, of order z¹¹/df⁵, is
# far below double precision for any z a double can reach (|z| < 39).
_EXPANSION_FROM_DF = 1e5


def _t_upper_quantile(tail: float, df: float) -> float:
    """The ``t > 0`` with ``P(T > t) == tail``, for ``0 < tail < 0.5``."""
    if math.isinf(df):
        return -_STANDARD_NORMAL.inv_cdf(tail)
    if df == 1:
        # Cauchy: t = cot(π·tail), written to keep its relative precision at both ends.
        return 1.0 / math.tan(math.pi * tail) if tail < 0.25 else math.tan(math.pi * (0.5 - tail))
    if df == 2:
        return (1.0 - 2.0 * tail) / math.sqrt(2.0 * tail * (1.0 - tail))
    z = -_STANDARD_NORMAL.inv_cdf(tail)
    if df >= _EXPANSION_FROM_DF:
        return _cornish_fisher(z, df)
    # Near the centre the quantile is found from P(0 < T < t) = 0.5 - tail (exact for
    # tail ≥ 0.25), whose relative precision 0.5 - P(T > t) would lose.
    use_central = tail >= 0.25
    log_target = math.log(0.5 - tail) if use_central else math.log(tail)
    if not use_central and _t_probabilities(sys.float_info.max, df)[0] > tail:
        return math.inf  # heavy tails (df < 1): beyond the largest double
    log_t = math.log(max(z, _cornish_fisher(z, df)))
    # The root lies in (low, high), in log t; an end stays open until a point beyond it
    # has been evaluated.
    low, high = -math.inf, math.inf
    for _ in range(_QUANTILE_MAX_STEPS):
        t = _exp_or_inf(log_t)
        upper, central, log_density = (
            _t_probabilities(t, df) if t < math.inf else (0.0, 0.5, -math.inf)
        )
        probability = central if use_central else upper
        if probability <= 0.0:
            # Out of reach of doubles: too far out for the tail, too near 0 for the centre.
            if use_central:
                low = log_t
                candidate = (low + high) / 2 if math.isfinite(high) else log_t + 1.0
            else:
                high = log_t
                candidate = (low + high) / 2 if math.isfinite(low) else log_t - 1.0
        else:
            excess = math.log(probability) - log_target
            if excess == 0.0:
                return t
            # P(T > t) falls and P(0 < T < t) rises with t.
            if (excess > 0.0) != use_central:
                low = log_t
            else:
                high = log_t
            # d log P / d log t = ∓ t·density / P
            slope = math.exp(log_t + log_density - math.log(probability))
            candidate = log_t + (-excess if use_central else excess) / slope
            if abs(candidate - log_t) <= 1e-15:
                return _exp_or_inf(candidate)
            if not low < candidate < high:
                if math.isfinite(low) and math.isfinite(high):
                    candidate = (low + high) / 2
                else:
                    candidate = log_t + (1.0 if math.isfinite(low) else -1.0)
        if high - low <= 1e-15:
            return _exp_or_inf((low + high) / 2)
        log_t = candidate
    return _exp_or_inf(log_t)


def _exp_or_inf(log_t: float) -> float:
    # A quantile beyond the largest double (heavy tails, df < 1) is infinite.
    return math.exp(log_t) if log_t < _LOG_FLOAT_MAX else math.inf


def student_t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t distribution with ``df`` degrees of freedom
    (``0 < p < 1``, ``df > 0``; ``math.inf`` gives the standard normal quantile).

    Written here rather than taken from ``scipy.stats.t.ppf``: an interval needs one
    quantile, and scipy would be a heavy runtime dependency for it (with numpy about
    200 MB installed, and about a second to import ``scipy.stats``).

    df 1 and 2 have closed forms. From 100,000 degrees of freedom on, the expansion in
    ``1/df`` about the normal quantile (A&S 26.7.5) is exact to double precision.
    Between, the upper tail ``I_x(df/2, 1/2) / 2`` (the regularized incomplete beta
    function, by its continued fraction) is inverted by Newton's method on its
    logarithm; near ``p = 1/2`` the central probability ``P(0 < T < t)`` is inverted
    instead, so that small quantiles keep their relative precision.
    """
    _check_probability("p", p)
    if not df > 0:
        raise ValueError(f"df must be positive, got {df!r}")
    if p == 0.5:
        return 0.0
    if p > 0.5:
        return _t_upper_quantile(1.0 - p, df)  # exact: p ≥ 0.5 (Sterbenz)
    return -_t_upper_quantile(p, df)


def mean_t_interval(
    values: Sequence[float], confidence: float = 0.95
) -> tuple[float, float | None, float | None] | None:
    """``(mean, low, high)``: the mean and its Student t interval; None for no values,
    ``(mean, None, None)`` for one value."""
    _check_probability("confidence", confidence)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"values must be numbers, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"values must be finite, got {value!r}")
    n = len(values)
    if n == 0:
        return None
    centre = float(statistics.mean(values))
    if n == 1:
        return centre, None, None
    variance = float(statistics.variance(values))
    if variance == 0.0:
        return centre, centre, centre
    # (1 - confidence)/2 is exact for confidence ≥ 0.5; (1 + confidence)/2 would round.
    t = _t_upper_quantile((1.0 - confidence) / 2, n - 1)
    half_width = t * math.sqrt(variance / n)
    return centre, centre - half_width, centre + half_width


# --- classification figures -------------------------------------------------------------

_NULL, _BOOLEAN, _NUMBER, _STRING = range(4)


def _label_key(value: object) -> tuple[int, object]:
    """Sort key and identity of a JSON scalar: its kind's rank, then its value."""
    if value is None:
        return _NULL, 0
    if isinstance(value, bool):
        return _BOOLEAN, int(value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"labels must be finite numbers, got {value!r}")
        return _NUMBER, value
    if isinstance(value, str):
        return _STRING, value
    raise TypeError(f"labels must be JSON scalars (null, bool, number, string), got {value!r}")


def label_key(value: object) -> str:
    """A label's identity as a string: two values are one label when their keys are
    equal (``1`` and ``1.0``; never ``true`` and ``1``)."""
    kind, key = _label_key(value)
    return f"{kind}:{key!r}" if kind != _NUMBER else f"{kind}:{float(key)!r}"  # type: ignore[arg-type]


def labels_in_order(values: Iterable[JsonScalar]) -> list[JsonScalar]:
    """The distinct values, sorted: null, then false and true, then numbers by value,
    then strings by code point."""
    first_seen: dict[tuple[int, object], JsonScalar] = {}
    for value in values:
        first_seen.setdefault(_label_key(value), value)
    return [first_seen[key] for key in sorted(first_seen, key=_sortable)]


def _sortable(key: tuple[int, object]) -> tuple[int, float | str]:
    # Keys of one kind hold values of one comparable type (numbers, ints or strings).
    kind, value = key
    assert isinstance(value, (int, float, str))
    return kind, value


def _label_index(labels: Sequence[JsonScalar]) -> dict[tuple[int, object], int]:
    index: dict[tuple[int, object], int] = {}
    for position, label in enumerate(labels):
        if index.setdefault(_label_key(label), position) != position:
            raise ValueError(f"label {label!r} is listed twice")
    return index


def confusion(
    expected: Sequence[JsonScalar], answered: Sequence[JsonScalar], labels: Sequence[JsonScalar]
) -> list[list[int]]:
    """``m[i][j]``: how many items were expected ``labels[i]`` and answered ``labels[j]``."""
    if len(expected) != len(answered):
        raise ValueError(
            f"expected and answered differ in length ({len(expected)} and {len(answered)})"
        )
    index = _label_index(labels)
    matrix = [[0] * len(labels) for _ in labels]
    for want, got in zip(expected, answered, strict=True):
        matrix[_position(index, want)][_position(index, got)] += 1
    return matrix


def _position(index: dict[tuple[int, object], int], value: JsonScalar) -> int:
    position = index.get(_label_key(value))
    if position is None:
        raise ValueError(f"{value!r} is not among the labels")
    return position


@dataclass(frozen=True)
class LabelFigures:
    """Precision, recall and F1 of one label, and its support (items expected it)."""

    label: JsonScalar
    precision: float
    recall: float
    f1: float
    support: int


def _check_square(matrix: Sequence[Sequence[int]]) -> None:
    for row in matrix:
        if len(row) != len(matrix):
            raise ValueError(f"the confusion matrix must be square, got a row of {len(row)}")
        for count in row:
            _check_count("a confusion count", count)


def _label_counts(matrix: Sequence[Sequence[int]]) -> list[tuple[int, int, int]]:
    """``(true positives, support, predicted)`` of each label."""
    _check_square(matrix)
    predicted = [sum(column) for column in zip(*matrix, strict=True)] if matrix else []
    return [(matrix[i][i], sum(matrix[i]), predicted[i]) for i in range(len(matrix))]


def per_label(matrix: Sequence[Sequence[int]], labels: Sequence[JsonScalar]) -> list[LabelFigures]:
    """Precision, recall, F1 and support of each label of a confusion matrix; a figure
    whose denominator is 0 is 0."""
    if len(matrix) != len(labels):
        raise ValueError(f"{len(labels)} labels for a confusion matrix of {len(matrix)} rows")
    figures = []
    for label, (hits, support, predicted) in zip(labels, _label_counts(matrix), strict=True):
        figures.append(
            LabelFigures(
                label=label,
                precision=hits / predicted if predicted else 0.0,
                recall=hits / support if support else 0.0,
                f1=2 * hits / (support + predicted) if support + predicted else 0.0,
                support=support,
            )
        )
    return figures


def macro_f1(matrix: Sequence[Sequence[int]]) -> float | None:
    """The unweighted mean of the per-label F1 of a confusion matrix; None without labels."""
    counts = _label_counts(matrix)
    if not counts:
        return None
    total = sum(
        (
            Fraction(2 * hits, support + predicted) if support + predicted else Fraction(0)
            for hits, support, predicted in counts
        ),
        start=Fraction(0),
    )
    return float(total / len(counts))
