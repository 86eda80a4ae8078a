"""Compiled exact summation (the kernels of `metrics`): Shewchuk's non-overlapping partials, as
in Python's `math.fsum`, and `math.fsum` itself per segment.

`exact_partials_nb(v)`: partials whose exact sum equals the exact sum of `v`; oracle:
`math.fsum(exact_partials_nb(v).tolist()) == math.fsum(v.tolist())`.
`segment_fsums_nb(v, starts, ends)`: `math.fsum(v[a:b])` of each segment, to the last bit (the
steps of CPython's fsum for finite values: its partials, then its correctly rounded total).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Non-overlapping doubles span at most 2,098 bits / 53 bits each: 40 partials, plus headroom.
MAX_PARTIALS = 64


@njit(cache=True)
def add_partial_nb(partials, n, x):
    """Add x to the n partials in place (Shewchuk's grow-expansion); the new count."""
    i = 0
    for j in range(n):
        y = partials[j]
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo != 0.0:
            partials[i] = lo
            i += 1
        x = hi
    if x == 0.0:  # as CPython's fsum: no zero partial
        return i
    partials[i] = x
    return i + 1


@njit(cache=True)
def exact_partials_nb(values):
    """Non-overlapping partials of the exact sum of `values` (finite doubles)."""
    partials = np.empty(MAX_PARTIALS, dtype=np.float64)
    n = 0
    for k in range(len(values)):
        n = add_partial_nb(partials, n, values[k])
    return partials[:n].copy()


@njit(cache=True)
def fsum_range_nb(values, start, end, partials):
    """math.fsum(values[start:end]) for finite values: CPython's algorithm step for step."""
    n = 0
    for k in range(start, end):
        n = add_partial_nb(partials, n, values[k])
    return rounded_nb(partials, n)


@njit(cache=True)
def rounded_nb(partials, n):
    """The correctly rounded sum of the first n partials, as CPython's fsum ends. It depends on
    their exact sum alone, so adding a zero or not gives the same answer."""
    if n == 0:
        return 0.0
    n -= 1
    hi, lo = partials[n], 0.0
    while n > 0:  # from the top, until the sum becomes inexact
        x = hi
        n -= 1
        y = partials[n]
        hi = x + y
        lo = y - (hi - x)
        if lo != 0.0:
            break
    # half-even rounding across several partials, as CPython does
    if n > 0 and ((lo < 0.0 and partials[n - 1] < 0.0) or (lo > 0.0 and partials[n - 1] > 0.0)):
        y = lo * 2.0
        x = hi + y
        if y == x - hi:
            hi = x
    return hi


@njit(cache=True)
def segment_fsums_nb(values, starts, ends):
    """math.fsum of each segment values[starts[k]:ends[k]] of finite values."""
    out = np.empty(len(starts), dtype=np.float64)
    partials = np.empty(MAX_PARTIALS, dtype=np.float64)
    for k in range(len(starts)):
        out[k] = fsum_range_nb(values, starts[k], ends[k], partials)
    return out
