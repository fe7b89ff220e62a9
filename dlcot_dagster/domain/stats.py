"""Summary statistics and plots for token counts."""

from __future__ import annotations

import base64
import io
from typing import Sequence

import polars as pl


def token_stats(values: pl.Series | Sequence[int]) -> dict[str, float]:
    """min / median / p95 / max / mean of a token-count column (zeros when empty)."""
    s = values if isinstance(values, pl.Series) else pl.Series(values, dtype=pl.Int64)
    s = s.drop_nulls()
    if s.len() == 0:
        return {"count": 0, "min": 0, "median": 0, "p95": 0, "max": 0, "mean": 0}
    return {
        "count": int(s.len()),
        "min": int(s.min()),
        "median": float(s.median()),
        "p95": float(s.quantile(0.95, interpolation="nearest")),
        "max": int(s.max()),
        "mean": round(float(s.mean()), 1),
    }


def histogram_png(series: dict[str, Sequence[int]], title: str, xlabel: str = "tokens", bins: int = 30) -> bytes:
    """A PNG histogram of one or more token-count series (overlaid)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    try:
        for label, values in series.items():
            vals = list(values)
            if vals:
                ax.hist(vals, bins=bins, alpha=0.6, label=f"{label} (n={len(vals)})")
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("records")
        if any(len(list(v)) for v in series.values()):
            ax.legend()
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)


def png_markdown(png: bytes, alt: str) -> str:
    """Markdown that embeds a PNG inline (the Dagster UI renders it)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def markdown_table(frame: pl.DataFrame, max_rows: int = 5, max_chars: int = 80) -> str:
    """A small Markdown preview of a frame, long text cut."""
    if frame.height == 0:
        return "_(no rows)_"
    cols = frame.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.head(max_rows).iter_rows():
        cells = []
        for v in row:
            t = "" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))  # 0.1667, not 0.16666666666666666
            t = t.replace("\n", " ").replace("|", "\\|")
            cells.append(t if len(t) <= max_chars else t[: max_chars - 1] + "…")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
