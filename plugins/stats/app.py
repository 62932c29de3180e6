"""The `stats` Launch plugin: descriptive statistics on lists of numbers.

Each method of `WitWorld` implements the function of the same name (in
snake_case) exported by the world in wit/world.wit. The descriptions the model
reads are the `///` comments there, not these docstrings.

Sums use `math.fsum` (exactly rounded) and `math.sumprod` (extended precision),
which are fast C loops: `statistics.mean` and `statistics.variance` are exact too
but build a fraction per number, 3 to 4 µs each under WebAssembly, several seconds
for a million numbers. Deviations from the mean are streamed through iterators
rather than stored, since a list of a million Python floats takes 32 MB.
"""

import bisect
import itertools
import math
import operator
import sys
from fractions import Fraction

import wit_world
from componentize_py_types import Err

MAX_VALUES = 1_000_000
MAX_PERCENTILES = 1_000
MAX_BINS = 1_000

# Numbers whose binary exponent is beyond this are scaled by a power of two (an
# exact operation) before squaring, so that squares neither overflow nor underflow.
SAFE_EXPONENT = 250


class WitWorld(wit_world.WitWorld):
    def describe(self, values: list[float]) -> wit_world.Summary:
        total = _checked_sum(values, "values")
        values.sort()  # for the median; the sums below do not depend on order
        if total is None:
            raise Err(
                "the sum of `values` is beyond the 64-bit float range (about ±1.8e308), "
                "so it cannot be reported; divide every number by "
                f"{_power_of_ten(values)} and multiply the results back"
            )
        n = len(values)
        mean = _mean(values, total)
        variance = stdev = None
        if n >= 2:
            scale = _scale_exponent(values[0], values[-1])
            ss = _sum_sq_dev(values, mean, scale)
            scaled_variance = ss / (n - 1)
            stdev = math.ldexp(math.sqrt(scaled_variance), scale)
            try:
                variance = math.ldexp(scaled_variance, 2 * scale)
            except OverflowError:
                raise Err(
                    f"the variance of `values` is beyond the 64-bit float range (about "
                    f"1.8e308; the standard deviation is {_num(stdev)}); divide every number "
                    f"by {_power_of_ten(values)} and multiply the results back (the "
                    "variance by its square)"
                ) from None
        return wit_world.Summary(
            count=n,
            mean=mean,
            median=_percentile(values, 50),
            stdev=stdev,
            variance=variance,
            min=values[0],
            max=values[-1],
            sum=total,
        )

    def percentiles(self, values: list[float], ps: list[float]) -> list[float]:
        _checked_sum(values, "values")
        if not ps:
            raise Err(
                "`ps` is empty; pass the percentiles to compute, from 0 to 100, "
                "e.g. [25, 50, 75] for the quartiles"
            )
        if len(ps) > MAX_PERCENTILES:
            raise Err(
                f"`ps` has {len(ps):,} percentiles; the limit is {MAX_PERCENTILES:,} "
                "per call; split them over several calls"
            )
        for i, p in enumerate(ps):
            if not math.isfinite(p):
                raise Err(
                    f"`ps[{i}]` is {_num(p)}; every percentile must be a number from 0 to 100"
                )
            if not 0 <= p <= 100:
                raise Err(
                    f"`ps[{i}]` is {_num(p)}, outside 0 to 100; percentiles are on a 0 to "
                    "100 scale: 50 for the median, 90 for the 90th percentile"
                )
        values.sort()
        return [_percentile(values, p) for p in ps]

    def correlation(self, xs: list[float], ys: list[float]) -> float:
        if len(xs) != len(ys):
            raise Err(
                f"`xs` has {len(xs):,} numbers but `ys` has {len(ys):,}; pass the "
                "same number of each, `xs[i]` and `ys[i]` being the two measurements "
                "of item i (drop the items that lack either)"
            )
        if len(xs) < 2:
            raise Err(
                f"`xs` and `ys` hold {'one pair' if xs else 'no pairs'}; a correlation "
                "needs at least 2 pairs (and means little with fewer than about 10)"
            )
        _checked_sum(xs, "xs")
        _checked_sum(ys, "ys")
        n = len(xs)
        scales = []
        for name, v in (("xs", xs), ("ys", ys)):
            low, high = min(v), max(v)
            if low == high:
                raise Err(
                    f"every number in `{name}` is {_num(low)}; the correlation with a "
                    "constant is undefined (it does not vary, so it cannot vary with "
                    "the other list)"
                )
            scales.append(_scale_exponent(low, high))
        # Correlation does not change when a list is scaled, so scale each by a
        # power of two to keep the products in range.
        x_scale, y_scale = scales
        mx = math.fsum(_scaled(xs, x_scale)) / n
        my = math.fsum(_scaled(ys, y_scale)) / n

        def dx():
            return map(operator.sub, _scaled(xs, x_scale), itertools.repeat(mx))

        def dy():
            return map(operator.sub, _scaled(ys, y_scale), itertools.repeat(my))

        # The second terms correct for the rounding of the means.
        cx, cy = math.fsum(dx()), math.fsum(dy())
        sxy = math.sumprod(dx(), dy()) - cx * cy / n
        sxx = math.sumprod(dx(), dx()) - cx * cx / n
        syy = math.sumprod(dy(), dy()) - cy * cy / n
        if sxx <= 0 or syy <= 0:
            raise Err(
                "the numbers in one list differ too little (in the last bits of "
                "their 64-bit values) for a correlation to be computed"
            )
        # One square root of the product is exact more often (1 for exactly
        # linear data) than a product of two; it is used unless out of range.
        product = sxx * syy
        if math.isfinite(product) and product >= sys.float_info.min:
            r = sxy / math.sqrt(product)
        else:
            r = sxy / (math.sqrt(sxx) * math.sqrt(syy))
        return max(-1.0, min(1.0, r))

    def histogram(self, values: list[float], bins: int | None) -> list[wit_world.Bin]:
        _checked_sum(values, "values")
        n = len(values)
        if bins is None:
            # Sturges' rule, ceil(log2(n)) + 1, in exact integer arithmetic.
            bins = (n - 1).bit_length() + 1
        elif not 1 <= bins <= MAX_BINS:
            raise Err(
                f"`bins` is {bins}; pass 1 to {MAX_BINS:,} bins, or leave it out for "
                "Sturges' rule (about log2 of the count + 1)"
            )
        values.sort()
        low, high = values[0], values[-1]
        if low == high:
            return [wit_world.Bin(low=low, high=high, count=n)]
        edges = [_edge(low, high, i, bins) for i in range(bins)] + [high]
        # Bin i holds edges[i] <= x < edges[i + 1]; the last one also holds `high`.
        starts = [bisect.bisect_left(values, e) for e in edges[:-1]] + [n]
        return [
            wit_world.Bin(low=edges[i], high=edges[i + 1], count=starts[i + 1] - starts[i])
            for i in range(bins)
        ]


def _checked_sum(values: list[float], name: str) -> float | None:
    """Checks the size and finiteness of `values`; returns their exactly rounded
    sum, or None when only the sum overflows."""
    n = len(values)
    if n == 0:
        raise Err(f"`{name}` is empty; pass at least one number, e.g. [3, 1.5, 4]")
    if n > MAX_VALUES:
        raise Err(
            f"`{name}` has {n:,} numbers; the limit is {MAX_VALUES:,}. Pass a random "
            f"sample of at most {MAX_VALUES:,} of them"
        )
    try:
        total = math.fsum(values)
    except OverflowError:
        total = None
    except ValueError:  # inf + -inf
        total = math.nan
    if total is None or not math.isfinite(total):
        for i, x in enumerate(values):
            if not math.isfinite(x):
                raise Err(
                    f"`{name}[{i}]` is {_num(x)}; every number must be finite. Leave out "
                    "missing or undefined values instead"
                )
    return total


def _mean(values: list[float], total: float) -> float:
    """The mean, correctly rounded in practice: `total` is the rounded exact sum,
    and a second fsum gives what that rounding lost."""
    lost = math.fsum(itertools.chain(values, (-total,)))
    return float((Fraction(total) + Fraction(lost)) / len(values))


def _scale_exponent(low: float, high: float) -> int:
    """A power of two that brings numbers from `low` to `high` near 1 when they
    are extreme (so that squares stay in range), else 0."""
    exponent = math.frexp(max(abs(low), abs(high)))[1]
    return exponent if abs(exponent) > SAFE_EXPONENT else 0


def _scaled(values: list[float], exponent: int):
    return values if exponent == 0 else map(math.ldexp, values, itertools.repeat(-exponent))


def _sum_sq_dev(values: list[float], mean: float, exponent: int) -> float:
    """The sum of squared deviations from the mean, of the values scaled by
    2**-exponent. The last term corrects for the rounding of `mean`."""
    m = math.ldexp(mean, -exponent)

    def dev():
        return map(operator.sub, _scaled(values, exponent), itertools.repeat(m))

    c = math.fsum(dev())
    return max(0.0, math.sumprod(dev(), dev()) - c * c / len(values))


def _percentile(ordered: list[float], p: float) -> float:
    """Percentile `p` (0 to 100) of sorted numbers by linear interpolation: at
    position p/100 * (n - 1), computed exactly."""
    position = Fraction(len(ordered) - 1) * Fraction(p) / 100
    i = math.floor(position)
    fraction = float(position - i)
    if fraction == 0:
        return ordered[i]
    return _lerp(ordered[i], ordered[i + 1], fraction)


def _lerp(a: float, b: float, t: float) -> float:
    """a + (b - a) * t for 0 <= t <= 1 and a <= b, kept within [a, b] and free
    of overflow when b - a exceeds the float range."""
    if a == b:
        return a
    d = b - a
    r = a + d * t if math.isfinite(d) else a * (1 - t) + b * t
    return min(max(r, a), b)


def _edge(low: float, high: float, i: int, bins: int) -> float:
    """Edge `i` of `bins` equal bins from `low` to `high`. Multiplying before
    dividing keeps round edges round: 100 * 11 / 1000 is 1.1, where
    100 * (11 / 1000) is 1.0999999999999999."""
    span = (high - low) * i
    if math.isfinite(span):
        return min(max(low + span / bins, low), high)
    return _lerp(low, high, i / bins)


def _power_of_ten(ordered: list[float]) -> str:
    """The power of ten of the largest magnitude among sorted numbers, e.g. 1e200."""
    biggest = max(abs(ordered[0]), abs(ordered[-1]))
    return f"1e{math.floor(math.log10(biggest))}"


def _num(x: float) -> str:
    """A number as JSON would write it: `3` rather than `3.0`, `NaN`, `Infinity`."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return str(int(x)) if x.is_integer() and abs(x) < 1e16 else repr(x)
