"""Compiled exact summation (the kernels of `metrics`): Shewchuk's non-overlapping partials, as
in Python's `math.fsum` (whose final rounding step is left to `math.fsum` over the partials).

`exact_partials_nb(v)`: partials whose exact sum equals the exact sum of `v`; oracle:
`math.fsum(exact_partials_nb(v).tolist()) == math.fsum(v.tolist())`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Non-overlapping doubles span at most 2,098 bits / 53 bits each: 40 partials, plus headroom.
MAX_PARTIALS = 64


@njit(cache=True)
def _add_nb(partials, n, x):
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
    partials[i] = x
    return i + 1


@njit(cache=True)
def exact_partials_nb(values):
    """Non-overlapping partials of the exact sum of `values` (finite doubles)."""
    partials = np.empty(MAX_PARTIALS, dtype=np.float64)
    n = 0
    for k in range(len(values)):
        n = _add_nb(partials, n, values[k])
    return partials[:n].copy()


@njit(cache=True)
def segment_partials_nb(values, starts, ends):
    """The partials of each segment values[starts[k]:ends[k]], flattened, and their offsets."""
    out = np.empty(len(starts) * MAX_PARTIALS, dtype=np.float64)
    offsets = np.empty(len(starts) + 1, dtype=np.int64)
    partials = np.empty(MAX_PARTIALS, dtype=np.float64)
    m = 0
    offsets[0] = 0
    for k in range(len(starts)):
        n = 0
        for i in range(starts[k], ends[k]):
            n = _add_nb(partials, n, values[i])
        out[m : m + n] = partials[:n]
        m += n
        offsets[k + 1] = m
    return out[:m].copy(), offsets
