"""Statistics, markdown tables and the SVG chart of the benchmark runner."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class Metric:
    """One figure a case measures per run."""

    key: str
    """Its key in each run's dict."""
    label: str
    """What the table calls it, with its unit."""
    lower_is_better: bool
    """Whether a smaller figure is the better one (a time, a size)."""
    spec: str = ",.1f"
    """How the table formats it."""


def stats(values: Sequence[float]) -> dict[str, Any] | None:
    """Min, median and max of the runs' values (None when there are none)."""
    if not values:
        return None
    return {
        "runs": list(values),
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
    }


def summarize(
    runs_by_client: Mapping[str, Sequence[Mapping[str, Any]]],
    metrics: Iterable[Metric],
    baseline: str,
) -> dict[str, dict[str, Any]]:
    """Statistics of each metric per client, with the ratio of medians to `baseline`.

    A run without a figure (it failed) is left out of the statistics; its error stays
    in the runs.

    Returns:
        Metric key -> client -> `stats()` plus `ratio` (median / baseline's median).
    """
    summary: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        by_client: dict[str, Any] = {}
        for name, runs in runs_by_client.items():
            values = [float(run[metric.key]) for run in runs if run.get(metric.key) is not None]
            by_client[name] = stats(values)
        base = by_client.get(baseline)
        for row in by_client.values():
            if row is not None:
                row["ratio"] = row["median"] / base["median"] if base and base["median"] else None
        summary[metric.key] = by_client
    return summary


def errors(runs_by_client: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """Every error of every run, as 'client, run N: error' lines."""
    return [
        f"{name}, run {number}: {text}"
        for name, runs in runs_by_client.items()
        for number, run in enumerate(runs, start=1)
        for text in run.get("errors", [])
    ]


def _cell(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def table(summary: Mapping[str, Mapping[str, Any]], metrics: Iterable[Metric]) -> str:
    """A markdown table: one row per metric and client, min / median / max and the ratio."""
    lines = [
        "| figure | client | min | median | max | ours / official (median) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for metric in metrics:
        better = "lower" if metric.lower_is_better else "higher"
        for name, row in summary[metric.key].items():
            if row is None:
                lines.append(f"| {metric.label} | {name} | n/a | n/a | n/a | n/a |")
                continue
            ratio = row["ratio"]
            lines.append(
                f"| {metric.label} ({better} is better) | {name} "
                f"| {_cell(row['min'], metric.spec)} | {_cell(row['median'], metric.spec)} "
                f"| {_cell(row['max'], metric.spec)} "
                f"| {'n/a' if ratio is None else f'{ratio:.2f}'} |"
            )
    return "\n".join(lines)


# --- the chart ------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    """One bar of the chart: a case, a client, and its cost relative to the official client."""

    case: str
    client: str
    cost_ratio: float
    """Ours / official as a cost (time, memory, size): < 1 means ours is cheaper."""


_PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def svg_chart(bars: Sequence[Bar], title: str) -> str:
    """Horizontal bars of each cost ratio on a log scale, with a line at 1.0.

    Bars start at 1.0: to the left, ours costs less than the official client; to the
    right, more. Each case is a group of bars, one per client, coloured by client.

    Args:
        bars: The bars, in the order to draw them (grouped by case).
        title: The chart's title.

    Returns:
        A standalone SVG document.
    """
    clients = list(dict.fromkeys(bar.client for bar in bars))
    colours = {name: _PALETTE[index % len(_PALETTE)] for index, name in enumerate(clients)}
    finite = [bar.cost_ratio for bar in bars if bar.cost_ratio > 0]
    # A symmetric log2 axis, at least 1/4 .. 4, wide enough for every bar.
    reach = max([2, *(math.ceil(abs(math.log2(value))) for value in finite)])
    label_width, plot_width, bar_height, gap = 300, 520, 14, 10
    left = label_width + 10
    centre = left + plot_width / 2

    def x_of(ratio: float) -> float:
        return centre + math.log2(ratio) / reach * plot_width / 2

    body: list[str] = []
    y = 60.0
    for case in dict.fromkeys(bar.case for bar in bars):
        group = [bar for bar in bars if bar.case == case]
        body.append(
            f'<text x="{label_width}" y="{y + len(group) * bar_height / 2 + 4:.1f}" '
            f'text-anchor="end" font-size="12">{escape(case)}</text>'
        )
        for bar in group:
            end = x_of(bar.cost_ratio)
            start, width = min(centre, end), abs(end - centre)
            body.append(
                f'<rect x="{start:.1f}" y="{y:.1f}" width="{max(width, 1.0):.1f}" '
                f'height="{bar_height - 2}" fill="{colours[bar.client]}">'
                f"<title>{escape(bar.client)}: {bar.cost_ratio:.2f}</title></rect>"
            )
            anchor, shift = ("start", 4) if end >= centre else ("end", -4)
            body.append(
                f'<text x="{end + shift:.1f}" y="{y + bar_height - 4:.1f}" '
                f'text-anchor="{anchor}" font-size="10">{bar.cost_ratio:.2f}</text>'
            )
            y += bar_height
        y += gap
    height = y + 30 + 18 * len(clients)
    ticks = []
    for power in range(-reach, reach + 1):
        x = x_of(2.0**power)
        text = f"{2.0**power:g}" if power >= 0 else f"1/{2**-power}"
        ticks.append(
            f'<line x1="{x:.1f}" y1="50" x2="{x:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{x:.1f}" y="{y + 14:.1f}" text-anchor="middle" font-size="10">{text}</text>'
        )
    legend = []
    for index, name in enumerate(clients):
        legend_y = y + 34 + 18 * index
        legend.append(
            f'<rect x="{left}" y="{legend_y - 10}" width="12" height="12" '
            f'fill="{colours[name]}"/><text x="{left + 18}" y="{legend_y}" '
            f'font-size="12">{escape(name)}</text>'
        )
    width = left + plot_width + 40
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:.0f}" '
            f'viewBox="0 0 {width} {height:.0f}" font-family="sans-serif">',
            f'<rect width="{width}" height="{height:.0f}" fill="white"/>',
            f'<text x="{width / 2:.0f}" y="20" text-anchor="middle" font-size="14" '
            f'font-weight="bold">{escape(title)}</text>',
            f'<text x="{centre:.0f}" y="40" text-anchor="middle" font-size="11">'
            "ours / official, as a cost (median; log scale): left of 1 is cheaper</text>",
            *ticks,
            *body,
            f'<line x1="{centre:.1f}" y1="50" x2="{centre:.1f}" y2="{y:.1f}" '
            'stroke="black" stroke-width="1.5"/>',
            *legend,
            "</svg>",
            "",
        ]
    )
