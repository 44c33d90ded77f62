"""Small statistics helpers for the RNG and simulation tests (no third-party packages)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def _gamma_p_series(a: float, x: float) -> float:
    term = total = 1.0 / a
    n = a
    for _ in range(10_000):
        n += 1.0
        term *= x / n
        total += term
        if abs(term) < abs(total) * 1e-15:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gamma_q_fraction(a: float, x: float) -> float:
    # Lentz's continued fraction for the upper regularised incomplete gamma function.
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h * math.exp(-x + a * math.log(x) - math.lgamma(a))


def chi2_sf(statistic: float, df: int) -> float:
    """Return P(X >= statistic) for a chi-square variable with ``df`` degrees of freedom."""
    if statistic <= 0:
        return 1.0
    a, x = df / 2.0, statistic / 2.0
    if x < a + 1.0:
        return 1.0 - _gamma_p_series(a, x)
    return _gamma_q_fraction(a, x)


def chi2_uniform_pvalue(counts: Sequence[int]) -> float:
    """Pearson chi-square p-value of ``counts`` against the uniform distribution."""
    total = sum(counts)
    expected = total / len(counts)
    statistic = sum((c - expected) ** 2 for c in counts) / expected
    return chi2_sf(statistic, len(counts) - 1)


def normal_two_sided_pvalue(z: float) -> float:
    """Two-sided p-value of a standard normal statistic."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def runs_test_pvalue(values: Sequence[int]) -> float:
    """Wald-Wolfowitz runs test above/below the median (ties dropped); two-sided p-value."""
    ordered = sorted(values)
    median = ordered[len(ordered) // 2]
    signs = [v > median for v in values if v != median]
    n1 = sum(signs)
    n2 = len(signs) - n1
    runs = 1 + sum(1 for a, b in zip(signs, signs[1:], strict=False) if a != b)
    n = n1 + n2
    mean = 2.0 * n1 * n2 / n + 1.0
    var = 2.0 * n1 * n2 * (2.0 * n1 * n2 - n) / (n * n * (n - 1.0))
    return normal_two_sided_pvalue((runs - mean) / math.sqrt(var))


def serial_correlation_pvalue(values: Sequence[int]) -> float:
    """Lag-1 serial correlation test (z = r * sqrt(n)); two-sided p-value."""
    n = len(values)
    mean = sum(values) / n
    centred = [v - mean for v in values]
    denom = sum(c * c for c in centred)
    r = sum(a * b for a, b in zip(centred, centred[1:], strict=False)) / denom
    return normal_two_sided_pvalue(r * math.sqrt(n))
