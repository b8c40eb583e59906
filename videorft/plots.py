"""Small matplotlib figures for asset reports (headless: the Agg backend, no display needed)."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def count_bars(panels: dict[str, dict[str, int]], title: str) -> Any:
    """One horizontal bar chart per panel (e.g. rows by problem type, by category, by quarantine reason)."""
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
