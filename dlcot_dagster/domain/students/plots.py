"""Small PNG plots of the student stage (matplotlib, Agg)."""

from __future__ import annotations

import io

import polars as pl


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=80)
    finally:
        plt.close(fig)
    return buf.getvalue()


def loss_curve_png(losses: list[tuple[int, float]], title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    if losses:
        ax.plot([s for s, _ in losses], [l for _, l in losses], marker=".")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    return _png(fig)


def scores_png(table: pl.DataFrame, title: str) -> bytes:
    """pass@1 and mean output tokens per benchmark, one bar per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benches = sorted(set(table["benchmark"].to_list()))
    variants = sorted(set(table["variant"].to_list()))
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    width = 0.8 / max(1, len(variants))
    for j, v in enumerate(variants):
        rows = {r["benchmark"]: r for r in table.filter(pl.col("variant") == v).iter_rows(named=True)}
        xs = [i + j * width for i in range(len(benches))]
        axes[0].bar(xs, [rows.get(b, {}).get("pass_at_1") or 0 for b in benches], width, label=v)
        axes[1].bar(xs, [rows.get(b, {}).get("output_tokens") or 0 for b in benches], width, label=v)
    for ax, label in zip(axes, ("pass@1", "output tokens")):
        ax.set_xticks([i + width * (len(variants) - 1) / 2 for i in range(len(benches))], benches, rotation=30)
        ax.set_ylabel(label)
        ax.legend()
    fig.suptitle(title)
    return _png(fig)
