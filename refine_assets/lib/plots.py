"""Small dependency-free SVG plots for Dagster asset metadata (rendered in the UI as Markdown images).

:func:`distribution_svg` draws one density line per sample (histogram of the values over a common
range, up to :data:`MAX_SERIES` samples), the QC picture people look at before reading numbers: a
sample whose distribution sits apart from its siblings is visible at once.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from html import escape

import numpy as np

MAX_SERIES = 12
_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
)


def distribution_svg(
    values: Mapping[str, np.ndarray], title: str, *, bins: int = 60, width: int = 640, height: int = 300
) -> str:
    """SVG text of per-sample value densities (non-finite values ignored). Empty input: a note."""
    series = {k: np.asarray(v, dtype=float) for k, v in list(values.items())[:MAX_SERIES]}
    series = {k: v[np.isfinite(v)] for k, v in series.items()}
    series = {k: v for k, v in series.items() if v.size}
    pad_l, pad_r, pad_t, pad_b = 50, 150, 30, 35
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        f'font-size="11"><rect width="100%" height="100%" fill="white"/>',
        f'<text x="{pad_l}" y="18" font-size="13">{escape(title)}</text>',
    ]
    if not series:
        parts.append(f'<text x="{pad_l}" y="{height // 2}">no values</text></svg>')
        return "".join(parts)
    allv = np.concatenate(list(series.values()))
    lo, hi = np.percentile(allv, [0.5, 99.5])
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    dens = {k: np.histogram(np.clip(v, lo, hi), bins=edges, density=True)[0] for k, v in series.items()}
    ymax = max(float(d.max()) for d in dens.values()) or 1.0
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b
    centers = (edges[:-1] + edges[1:]) / 2
    xs = pad_l + (centers - lo) / (hi - lo) * pw
    parts.append(f'<line x1="{pad_l}" y1="{pad_t + ph}" x2="{pad_l + pw}" y2="{pad_t + ph}" stroke="black"/>')
    for frac in (0.0, 0.5, 1.0):
        x = pad_l + frac * pw
        parts.append(
            f'<text x="{x:.1f}" y="{pad_t + ph + 15}" text-anchor="middle">{lo + frac * (hi - lo):.3g}</text>'
        )
    for i, (name, d) in enumerate(dens.items()):
        color = _COLORS[i % len(_COLORS)]
        ys = pad_t + ph - d / ymax * ph
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{pts}"/>')
        parts.append(
            f'<text x="{pad_l + pw + 8}" y="{pad_t + 12 + 14 * i}" fill="{color}">{escape(name[:22])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bars_svg(
    values: Mapping[str, float],
    title: str,
    *,
    threshold: float | None = None,
    unit: str = "%",
    max_bars: int = 60,
    width: int = 640,
    bar_height: int = 14,
) -> str:
    """SVG text of one horizontal bar per item (e.g. salmon mapping rate per run), scaled to the largest
    value (at least ``threshold``); bars below ``threshold`` are red and a dashed line marks it. At most
    ``max_bars`` items, lowest values first (the ones an operator looks for)."""
    items = sorted(((k, float(v)) for k, v in values.items() if v is not None), key=lambda kv: (kv[1], kv[0]))
    items = items[:max_bars]
    pad_l, pad_r, pad_t = 110, 60, 30
    height = pad_t + bar_height * max(len(items), 1) + 25
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        f'font-size="11"><rect width="100%" height="100%" fill="white"/>',
        f'<text x="10" y="18" font-size="13">{escape(title)}</text>',
    ]
    if not items:
        parts.append(f'<text x="10" y="{pad_t + 12}">no values</text></svg>')
        return "".join(parts)
    top = max([v for _, v in items] + [threshold or 0.0]) or 1.0
    pw = width - pad_l - pad_r
    for i, (name, v) in enumerate(items):
        y = pad_t + i * bar_height
        w = max(v, 0.0) / top * pw
        color = "#d62728" if threshold is not None and v < threshold else "#1f77b4"
        parts.append(
            f'<text x="{pad_l - 6}" y="{y + bar_height - 3}" text-anchor="end">{escape(name[:18])}</text>'
        )
        parts.append(
            f'<rect x="{pad_l}" y="{y + 1}" width="{w:.1f}" height="{bar_height - 3}" fill="{color}"/>'
        )
        parts.append(f'<text x="{pad_l + w + 4:.1f}" y="{y + bar_height - 3}">{v:.3g}{escape(unit)}</text>')
    if threshold is not None:
        x = pad_l + threshold / top * pw
        y2 = pad_t + len(items) * bar_height
        parts.append(
            f'<line x1="{x:.1f}" y1="{pad_t}" x2="{x:.1f}" y2="{y2}" stroke="black" stroke-dasharray="4 3"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{y2 + 14}" text-anchor="middle">{threshold:g}{escape(unit)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def svg_markdown(svg: str, alt: str) -> str:
    """Markdown image embedding an SVG as a data URI."""
    return f"![{alt}](data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()})"
