"""Small matplotlib figures for asset reports (headless: the Agg backend, no display needed)."""

from __future__ import annotations

from typing import Any


def _pyplot() -> Any:
    """pyplot on the Agg backend, imported on first use: it costs most of a second, and a Dagster process that
    loads the definitions but draws nothing (every run worker, the code server) should not pay it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def markdown_image(fig: Any, alt: str, dpi: int = 72) -> str:
    """The figure as a Markdown image with an inline PNG (``data:`` URI): Dagster's asset page renders it, no
    file server needed (Dagster's own tutorial shows plots this way). Closes the figure."""
    plt = _pyplot()
    import base64
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return f"![{alt}](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()})"


def count_bars(panels: dict[str, dict[str, int]], title: str) -> Any:
    """One horizontal bar chart per panel (e.g. rows by problem type, by category, by quarantine reason)."""
    plt = _pyplot()
    panels = {k: v for k, v in panels.items() if v}
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(4.2 * max(1, len(panels)), 3.2), squeeze=False)
    for ax, (name, counts) in zip(axes[0], panels.items(), strict=False):
        labels = list(counts)[::-1]
        values = [counts[k] for k in labels]
        bars = ax.barh(labels, values, color="#4C72B0")
        ax.bar_label(bars, padding=2, fontsize=8)
        ax.set_title(name, fontsize=10)
        ax.tick_params(labelsize=8)
        ax.margins(x=0.15)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def funnel(stages: dict[str, int], title: str) -> Any:
    """Retention funnel: one bar per stage, labelled with the count and the share of the first stage."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 0.55 * len(stages) + 1.2))
    labels = list(stages)[::-1]
    values = [stages[k] for k in labels]
    first = max(next(iter(stages.values()), 0), 1)
    bars = ax.barh(labels, values, color="#55A868")
    ax.bar_label(bars, labels=[f"{v} ({v / first:.0%})" for v in values], padding=3, fontsize=8)
    ax.margins(x=0.2)
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig


def histogram(values: list[int], title: str, xlabel: str, bins: int = 30) -> Any:
    """Distribution with its mean marked (the paper's Fig. 4 style CoT-length plot)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    if values:
        ax.hist(values, bins=bins, color="#4C72B0", edgecolor="white")
        mean = sum(values) / len(values)
        ax.axvline(mean, color="#C44E52", linestyle="--", label=f"mean {mean:.0f}")
        ax.legend(fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("samples")
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig


def line_chart(series: dict[str, list[tuple[float, float]]], title: str, xlabel: str) -> Any:
    """One small panel per series (training curves: loss, each reward, KL, length), sharing the x axis."""
    plt = _pyplot()
    names = list(series)
    cols = min(4, max(1, len(names)))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False, sharex=True)
    for ax, name in zip(axes.flat, names, strict=False):
        xs, ys = zip(*series[name], strict=True) if series[name] else ((), ())
        ax.plot(xs, ys, marker="." if len(xs) < 30 else None, linewidth=1.2)
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel(xlabel, fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def grouped_bars(groups: list[str], series: dict[str, list[float | None]], title: str, ylabel: str,
                 errors: dict[str, list[tuple[float, float] | None]] | None = None,
                 levels: dict[str, list[float | None]] | None = None) -> Any:
    """One group of bars per benchmark, one bar per series (variants); None = no bar. ``errors`` (per series, per
    group: an interval (low, high)) draws error bars; ``levels`` (per name, per group: a value) a dashed line
    across each group's bars, e.g. uniform chance."""
    plt = _pyplot()
    import numpy as np

    fig, ax = plt.subplots(figsize=(max(6.5, 1.3 * len(groups) * max(1, len(series)) / 2), 3.8))
    width = 0.8 / max(1, len(series))
    x = np.arange(len(groups))
    for i, (name, values) in enumerate(series.items()):
        heights = [v if v is not None else 0.0 for v in values]
        centers = x + (i - (len(series) - 1) / 2) * width
        bars = ax.bar(centers, heights, width, label=name)
        intervals = (errors or {}).get(name)
        if intervals:
            pairs = [(c, h, iv) for c, h, iv in zip(centers, heights, intervals, strict=True) if iv is not None]
            if pairs:
                below = [max(0.0, h - iv[0]) for _, h, iv in pairs]
                above = [max(0.0, iv[1] - h) for _, h, iv in pairs]
                ax.errorbar([c for c, _, _ in pairs], [h for _, h, _ in pairs], yerr=[below, above],
                            fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
        for bar, v in zip(bars, values, strict=True):
            if v is not None:
                ax.annotate(f"{v:.1f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                            va="bottom", fontsize=7)
    for style, (name, values) in zip(("--", ":", "-."), (levels or {}).items(), strict=False):
        drawn = [(i, v) for i, v in enumerate(values) if v is not None]
        for j, (i, v) in enumerate(drawn):
            ax.hlines(v, x[i] - 0.45, x[i] + 0.45, colors="black", linestyles=style, linewidth=1.0,
                      label=name if j == 0 else None)
    ax.set_xticks(x, groups, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig
