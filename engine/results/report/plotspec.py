"""Figures as plain plotly.js specs, `{"data": [traces with "type"], "layout": {...}}`: a subplot
grid laid out as plotly's `make_subplots` lays it out, and the spec's JSON with numpy arrays as
plotly.js typed arrays (as plotly's `to_json` writes them).

Building the dicts directly skips plotly's Python object layer (property validation on every
update), which took nearly all of a report's writing time. plotly itself only supplies plotly.js.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

Figure = dict[str, Any]  # {"data": [...], "layout": {...}}, what Plotly.newPlot draws

_TYPED = {
    "float64": "f8",
    "float32": "f4",
    "int8": "i1",
    "uint8": "u1",
    "int16": "i2",
    "uint16": "u2",
    "int32": "i4",
    "uint32": "u4",
}
_NARROW = {"i": ("int8", "int16", "int32"), "u": ("uint8", "uint16", "uint32")}
# Characters that must not appear raw in JSON inside a <script> element (`</script>`, `<!--`) or in
# a JavaScript string (line and paragraph separators); plotly's to_json escapes the same ones.
_UNSAFE = (("<", "\\u003c"), (">", "\\u003e"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


class Grid:
    """A `rows` × `cols` grid of x/y subplots, numbered row by row from the top left, with the
    axis domains and subplot titles of `make_subplots(rows, cols, subplot_titles=titles,
    horizontal_spacing=, vertical_spacing=)`, the titles left-aligned over their subplots in
    `title_font`. With `match_x`, every x axis matches the bottom-left one and only the bottom
    row shows tick labels (`shared_xaxes="all"`)."""

    def __init__(
        self,
        rows: int,
        cols: int,
        titles: Iterable[str],
        *,
        horizontal_spacing: float,
        vertical_spacing: float,
        title_font: dict | None = None,
        match_x: bool = False,
    ) -> None:
        for n, spacing in ((cols, horizontal_spacing), (rows, vertical_spacing)):
            if not 0 <= spacing <= (1 / (n - 1) if n > 1 else 1):
                raise ValueError(f"spacing {spacing} does not fit {n} subplots")
        self.rows, self.cols = rows, cols
        # make_subplots' arithmetic, step by step, so the domains are the same floats
        width = (1.0 - horizontal_spacing * (cols - 1)) / cols
        height = (1.0 - vertical_spacing * (rows - 1)) / rows
        layout: dict[str, Any] = {}
        annotations = []
        titles = list(titles)
        for r in range(rows):
            below = rows - 1 - r  # rows under this one: the grid starts at the top left
            y0 = _snap(sum([height] * below) + below * vertical_spacing)
            y1 = _snap(sum([height] * below) + below * vertical_spacing + height)
            for c in range(cols):
                x0 = sum([width] * c) + c * horizontal_spacing
                x1 = x0 + width
                x_domain, y_domain = [max(0.0, x0), min(1.0, x1)], [max(0.0, y0), min(1.0, y1)]
                n = r * cols + c + 1
                x_ref, y_ref = _ref("x", n), _ref("y", n)
                layout[_axis("x", n)] = {"anchor": y_ref, "domain": x_domain}
                layout[_axis("y", n)] = {"anchor": x_ref, "domain": y_domain}
                title = titles[n - 1] if n <= len(titles) else ""
                if title:
                    annotations.append(
                        {
                            "font": dict(title_font or {"size": 16}),
                            "showarrow": False,
                            "text": title,
                            "x": x_domain[0],
                            "xanchor": "left",
                            "xref": "paper",
                            "y": y_domain[1],
                            "yanchor": "bottom",
                            "yref": "paper",
                        }
                    )
        if match_x:
            first = _ref("x", (rows - 1) * cols + 1)
            for r in range(rows):
                for c in range(cols):
                    axis = layout[_axis("x", r * cols + c + 1)]
                    if (r, c) != (rows - 1, 0):
                        axis["matches"] = first
                    if r < rows - 1:
                        axis["showticklabels"] = False
        layout["annotations"] = annotations
        self.figure: Figure = {"data": [], "layout": layout}

    @property
    def layout(self) -> dict[str, Any]:
        return self.figure["layout"]

    def add(self, trace: dict, row: int, col: int) -> dict:
        """Draw `trace` in the subplot at (`row`, `col`), both from 1; return it."""
        n = self._number(row, col)
        trace.update(xaxis=_ref("x", n), yaxis=_ref("y", n))
        self.figure["data"].append(trace)
        return trace

    def xaxes(self, row: int | None = None, col: int | None = None, **props) -> None:
        """Set `props` on the x axes of `row` and `col` (every row or column when None)."""
        for r in range(1, self.rows + 1) if row is None else [row]:
            for c in range(1, self.cols + 1) if col is None else [col]:
                self.layout[_axis("x", self._number(r, c))].update(props)

    def _number(self, row: int, col: int) -> int:
        if not (1 <= row <= self.rows and 1 <= col <= self.cols):
            raise ValueError(f"no subplot ({row}, {col}) in a {self.rows} × {self.cols} grid")
        return (row - 1) * self.cols + col


def _axis(letter: str, n: int) -> str:
    return f"{letter}axis{n if n > 1 else ''}"


def _ref(letter: str, n: int) -> str:
    return f"{letter}{n if n > 1 else ''}"


def _snap(y: float) -> float:
    """make_subplots' rounding of a y edge a hair outside [0, 1]."""
    return 0.0 if -0.01 < y < 0.0 else 1.0 if 1.0 < y < 1.01 else y


# ---- JSON --------------------------------------------------------------------------------------


def typed_array(values: np.ndarray) -> dict | list:
    """A numeric array as plotly.js's typed-array spec, `{"dtype": "f8", "bdata": <base64 of the
    little-endian bytes>}` (with "shape" when 2-D), as plotly's to_json writes it: 64-bit integers
    narrowed to the smallest type that holds them; anything else (or empty) as a plain list."""
    a = np.asarray(values)
    if a.dtype.kind in _NARROW and a.dtype.itemsize == 8 and a.size:
        low, high = a.min(), a.max()
        fits = [
            t for t in _NARROW[a.dtype.kind] if np.iinfo(t).min <= low and high <= np.iinfo(t).max
        ]
        a = a.astype(fits[0]) if fits else a
    code = _TYPED.get(a.dtype.name)
    if code is None or a.size == 0:
        return _plain(a.tolist())
    spec = {
        "dtype": code,
        "bdata": base64.b64encode(a.astype(a.dtype.newbyteorder("<")).tobytes()).decode("ascii"),
    }
    if a.ndim > 1:
        spec["shape"] = ", ".join(str(n) for n in a.shape)
    return spec


def _plain(value):
    """`value` with numpy arrays as typed arrays, numpy scalars as Python ones and non-finite
    floats as null (JSON has no NaN; plotly.js leaves a gap)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return typed_array(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _numpy(value):
    """json.dumps' hook for what it cannot write: numpy arrays and (non-float) numpy scalars."""
    if isinstance(value, np.ndarray):
        return typed_array(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable: {value!r:.80}")


def to_json(figure: Figure) -> str:
    """The figure's compact JSON, safe to embed in a <script> element: `<` and `>` escaped (so
    no `</script>` or `<!--` can end or upset it), numpy arrays as typed arrays, NaN as null."""
    options = dict(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    try:
        text = json.dumps(figure, default=_numpy, **options)
    except ValueError:  # a NaN or an infinity outside the typed arrays: walk the spec
        text = json.dumps(_plain(figure), default=_numpy, **options)
    for unsafe, safe in _UNSAFE:
        text = text.replace(unsafe, safe)
    return text
