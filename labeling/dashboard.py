"""What the dashboard shows about the collected labels: per-annotator and per-kind tables
and the two plots. Pure functions of `Store.labels()`; the app and scripts both call them.

The tables are for people (percentages with 95% CIs as text); `labeling.stats` has the numbers.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from labeling import stats


def plot_literal(text: str) -> str:
    """Untrusted text as a matplotlib label: `$` would start mathtext (and can fail to parse)."""
    return text.replace("$", r"\$")


def percent(x: float | None) -> str:
    return "–" if x is None or pd.isna(x) else f"{100 * x:.0f}%"


def with_ci(x: float, low: float, high: float) -> str:
    return "–" if pd.isna(x) else f"{percent(x)} ({100 * low:.0f}–{100 * high:.0f})"


def summary(labels: pd.DataFrame) -> dict:
    """Headline numbers over all labels: counts, Krippendorff's alpha, gold accuracy, position
    and agreement bias (each with its 95% CI), completed triads and cycles. Empty: {}."""
    if labels.empty:
        return {}
    overall = lambda table: table.iloc[-1]  # noqa: E731 (the OVERALL row comes last)
    bias, agree = overall(stats.position_bias(labels)), overall(stats.agreement_bias(labels))
    gold, triads = overall(stats.gold_accuracy(labels)), overall(stats.triad_cycles(labels))
    return {"labels": len(labels), "annotators": labels.annotator.nunique(),
            "alpha": stats.alpha_by_kind(labels)["all"], "gold_accuracy": gold.accuracy,
            "left_share": (bias.share_left, bias.ci_low, bias.ci_high),
            "agreeing_won": (agree.rate, agree.ci_low, agree.ci_high),
            "completed_triads": int(triads.completed_triads), "cycles": int(triads.cycles)}


def annotator_table(labels: pd.DataFrame) -> pd.DataFrame:
    """One row per annotator (and the overall row): volume, quality and the biases with 95% CIs."""
    keys = ["annotator"]
    volume = stats.labels_per_annotator(labels)
    gold = stats.gold_accuracy(labels)
    bias = stats.position_bias(labels).rename(columns={"ci_low": "left_low", "ci_high": "left_high"})
    agree = stats.agreement_bias(labels).rename(columns={"ci_low": "agree_low", "ci_high": "agree_high"})
    triads = stats.triad_cycles(labels)
    table = (volume.merge(gold, on=keys, how="left").merge(bias, on=keys, how="left")
             .merge(agree, on=keys, how="left").merge(triads, on=keys, how="left"))
    return pd.DataFrame({
        "annotator": table.annotator,
        "labels": table["labels"],
        "tie/both bad": [f"{t} / {b}" for t, b in zip(table.ties, table.both_bad)],
        "median s": table.median_seconds.round(1),
        "fast": [f"{percent(share)} ({int(n)})" for share, n in zip(table.fast_share, table.fast)],
        "gold right": [f"{percent(a)} of {int(n)}" if n else "–"
                       for a, n in zip(table.accuracy, table.gold_labels.fillna(0))],
        "left picks": [with_ci(*r) for r in zip(table.share_left, table.left_low, table.left_high)],
        "agreeing won": [with_ci(*r) for r in zip(table.rate, table.agree_low, table.agree_high)],
        "triads/cycles": [f"{int(c)} / {int(k)}" for c, k in
                            zip(table.completed_triads.fillna(0), table.cycles.fillna(0))],
    })


def kind_table(labels: pd.DataFrame) -> pd.DataFrame:
    alpha = stats.alpha_by_kind(labels)
    table = stats.labels_per_kind(labels)
    table["Krippendorff α"] = [None if pd.isna(a) else round(a, 3) for a in table.task_kind.map(alpha)]
    return table


def plot_label_counts(labels: pd.DataFrame) -> Figure | None:
    """Stacked bars: labels per annotator, by task kind."""
    if labels.empty:
        return None
    counts = labels.pivot_table(index="annotator", columns="task_kind", values="label_id",
                                aggfunc="count", fill_value=0)
    fig = Figure(figsize=(6, 1.5 + 0.4 * len(counts)), layout="constrained")
    ax = fig.add_subplot()
    left = np.zeros(len(counts))
    for kind in counts.columns:
        ax.barh([plot_literal(name) for name in counts.index], counts[kind], left=left, label=kind)
        left += counts[kind].to_numpy()
    ax.invert_yaxis()
    ax.set_title("labels per annotator", pad=22)
    ax.set_xlabel("labels")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=len(counts.columns),
              fontsize="small", frameon=False)
    return fig


def plot_biases(labels: pd.DataFrame) -> Figure | None:
    """Left-pick share and agreeing-won rate per annotator, each with its 95% CI; 0.5 = no bias.

    Both panels share one row per annotator (then the overall row, in black); an annotator
    without agreement labels has an empty row in the second panel.
    """
    if labels.empty:
        return None
    bias = stats.position_bias(labels).set_index("annotator")
    rows = bias.index  # every annotator, then stats.OVERALL
    panels = [("share of left picks", bias, "share_left", 0.5),
              ("agreeing response won", stats.agreement_bias(labels).set_index("annotator").reindex(rows),
               "rate", None)]
    y = np.arange(len(rows))
    fig = Figure(figsize=(7, 1.2 + 0.4 * len(rows)), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (title, table, column, reference) in zip(axes, panels):
        share, low, high = (table[c].to_numpy(dtype=float) for c in (column, "ci_low", "ci_high"))
        for keep, colour in ((rows != stats.OVERALL, "tab:blue"), (rows == stats.OVERALL, "black")):
            ax.errorbar(share[keep], y[keep], xerr=[(share - low)[keep], (high - share)[keep]],
                        fmt="o", capsize=3, color=colour)
        if reference is not None:
            ax.axvline(reference, color="grey", linestyle=":")
        ax.set(title=title, xlim=(0, 1))
    axes[0].set(yticks=y, yticklabels=[plot_literal(name) for name in rows])
    axes[0].invert_yaxis()  # shared: once for both
    return fig
