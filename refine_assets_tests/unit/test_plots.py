"""SVG distribution plots for asset metadata."""

from __future__ import annotations

import base64

import numpy as np
from lxml import etree

from refine_assets.lib.plots import MAX_SERIES, bars_svg, distribution_svg, svg_markdown

NS = {"s": "http://www.w3.org/2000/svg"}


def test_one_line_per_sample_and_valid_svg() -> None:
    rng = np.random.default_rng(0)
    values = {f"S{i}": rng.normal(i, 1, 500) for i in range(MAX_SERIES + 3)}
    values["S0"][:10] = np.nan
    root = etree.fromstring(distribution_svg(values, "t <&>").encode())
    lines = root.findall("s:polyline", NS)
    assert len(lines) == MAX_SERIES  # capped
    texts = [t.text for t in root.findall("s:text", NS)]
    assert "t <&>" in texts and "S0" in texts and f"S{MAX_SERIES}" not in texts

    # the sample with the largest mean peaks furthest right
    def peak_x(line):
        pts = [tuple(map(float, p.split(","))) for p in line.get("points").split()]
        return min(pts, key=lambda p: p[1])[0]

    assert peak_x(lines[-1]) > peak_x(lines[0])


def test_empty_and_markdown() -> None:
    svg = distribution_svg({"a": np.array([np.nan])}, "nothing")
    assert "no values" in svg
    md = svg_markdown(svg, "alt")
    assert md.startswith("![alt](data:image/svg+xml;base64,")
    assert base64.b64decode(md.split(",", 1)[1][:-1]).decode() == svg


def test_bars_lowest_first_red_below_threshold() -> None:
    rates = {"SRR3": 93.1, "SRR1": 2.5, "SRR2": 55.0, "SRR4": None}
    root = etree.fromstring(bars_svg(rates, "mapping <rates>", threshold=10.0).encode())
    bars = root.findall("s:rect", NS)[1:]  # the first rect is the background
    assert [b.get("fill") for b in bars] == ["#d62728", "#1f77b4", "#1f77b4"]
    widths = [float(b.get("width")) for b in bars]
    assert widths == sorted(widths) and abs(widths[1] / widths[2] - 55.0 / 93.1) < 1e-3
    labels = [t.text for t in root.findall("s:text", NS)]
    assert labels[:2] == ["mapping <rates>", "SRR1"] and "10%" in labels
    assert root.find("s:line", NS).get("stroke-dasharray") == "4 3"
    empty = etree.fromstring(bars_svg({}, "none").encode())
    assert "no values" in [t.text for t in empty.findall("s:text", NS)]
