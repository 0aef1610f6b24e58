"""Dashboard statistics over the `Store.labels()` frame: pure functions returning DataFrames.

Per-annotator tables end with an overall row whose annotator is OVERALL ("(all)").
- labels per annotator (with the share of `fast` labels: time on task under the store's
  `min_seconds`, FastChat's filter for votes cast without reading) and per task kind;
- Krippendorff's alpha (nominal; units = task pairings; value = the winning response
  index, or NO_WINNER for tie and both_bad);
- gold accuracy (share of gold labels whose winner is the known better response; a tie or
  both_bad on a gold task counts as wrong);
- position bias: share of "left" among left/right choices, with an exact binomial CI and
  the two-sided p-value against 0.5;
- agreement bias: share of `agreement` labels where the response agreeing with the false
  claim won (ties count in the denominator), with an exact binomial CI;
- triads: completed = all three pairings labeled by one annotator with a winner each;
  a cycle is a completed triad where every response wins once (a > b > c > a).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import krippendorff
import numpy as np
import pandas as pd
from scipy.stats import binomtest

OVERALL = "(all)"
NO_WINNER = 3  # reliability value for tie / both_bad (response indices are 0..2)


def _per_annotator(labels: pd.DataFrame, fn: Callable[[pd.DataFrame], dict],
                   columns: list[str]) -> pd.DataFrame:
    """fn(rows) -> dict of columns, for each annotator (sorted) and then for everyone."""
    rows = [{"annotator": name, **fn(group)} for name, group in labels.groupby("annotator")]
    rows.append({"annotator": OVERALL, **fn(labels)})
    return pd.DataFrame(rows, columns=["annotator", *columns])


def _binomial(k: int, n: int, confidence: float) -> dict:
    """Share k/n with its exact (Clopper-Pearson) CI and the p-value against 0.5."""
    if n == 0:
        return {"share": math.nan, "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan}
    test = binomtest(k, n, p=0.5)
    ci = test.proportion_ci(confidence_level=confidence, method="exact")
    return {"share": k / n, "ci_low": ci.low, "ci_high": ci.high, "p_value": test.pvalue}


# ---------------------------------------------------------------- volume

def labels_per_annotator(labels: pd.DataFrame) -> pd.DataFrame:
    """annotator, labels, ties (no winner, incl. both_bad), both_bad, median_seconds,
    fast (labels with time on task under the store's min_seconds), fast_share."""
    return _per_annotator(labels, lambda g: {
        "labels": len(g), "ties": int(g.tie.sum()), "both_bad": int(g.both_bad.sum()),
        "median_seconds": float(g.seconds.median()) if len(g) else math.nan,
        "fast": int(g.fast.sum()), "fast_share": float(g.fast.mean()) if len(g) else math.nan,
    }, ["labels", "ties", "both_bad", "median_seconds", "fast", "fast_share"])


def labels_per_kind(labels: pd.DataFrame) -> pd.DataFrame:
    """task_kind, labels, pairings (distinct task pairings labeled), annotators."""
    rows = [{"task_kind": kind, "labels": len(g),
             "pairings": len(g.groupby(["task_id", "pair_index"])),
             "annotators": g.annotator.nunique()}
            for kind, g in labels.groupby("task_kind")]
    return pd.DataFrame(rows, columns=["task_kind", "labels", "pairings", "annotators"])


# ---------------------------------------------------------------- agreement

def reliability_data(labels: pd.DataFrame) -> tuple[np.ndarray, list[str], list[tuple[str, int]]]:
    """(annotators, units) matrix of winner index or NO_WINNER; NaN where not labeled."""
    values = labels.winner.astype("Float64").fillna(NO_WINNER).astype(float)
    table = (labels.assign(value=values.to_numpy())
             .pivot_table(index="annotator", columns=["task_id", "pair_index"], values="value",
                          aggfunc="first"))
    return table.to_numpy(dtype=float), list(table.index), list(table.columns)


def krippendorff_alpha(labels: pd.DataFrame) -> float:
    """Nominal Krippendorff's alpha over task pairings; NaN when it is undefined (no pairing
    with two labels, or only one value ever given)."""
    if labels.empty:
        return math.nan
    data, _, _ = reliability_data(labels)
    pairable = data[:, (~np.isnan(data)).sum(axis=0) >= 2]
    if pairable.size == 0 or len(np.unique(pairable[~np.isnan(pairable)])) < 2:
        return math.nan
    return float(krippendorff.alpha(reliability_data=pairable, level_of_measurement="nominal"))


def alpha_by_kind(labels: pd.DataFrame) -> dict[str, float]:
    """{"all": alpha, kind: alpha of that kind's pairings, ...}."""
    return {"all": krippendorff_alpha(labels),
            **{kind: krippendorff_alpha(g) for kind, g in labels.groupby("task_kind")}}


# ---------------------------------------------------------------- quality and biases

def gold_accuracy(labels: pd.DataFrame) -> pd.DataFrame:
    """annotator, gold_labels, correct, accuracy (ties on gold count as wrong)."""
    gold = labels[labels.task_kind == "gold"]
    return _per_annotator(gold, lambda g: {
        "gold_labels": len(g), "correct": int((g.winner == g.better).fillna(False).sum()),
        "accuracy": (g.winner == g.better).fillna(False).mean() if len(g) else math.nan,
    }, ["gold_labels", "correct", "accuracy"])


def position_bias(labels: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """annotator, left, decisive (left or right choices), share_left, ci_low, ci_high, p_value."""
    def one(g: pd.DataFrame) -> dict:
        left, decisive = int((g.choice == "left").sum()), int(g.choice.isin(["left", "right"]).sum())
        stats = _binomial(left, decisive, confidence)
        return {"left": left, "decisive": decisive, "share_left": stats.pop("share"), **stats}

    return _per_annotator(labels, one, ["left", "decisive", "share_left", "ci_low", "ci_high",
                                        "p_value"])


def agreement_bias(labels: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """annotator, agreement_labels, agreeing_won, correcting_won, no_winner, rate, ci_low, ci_high.

    rate = agreeing_won / agreement_labels: how often the sycophantic response was preferred.
    """
    agreement = labels[labels.task_kind == "agreement"]

    def one(g: pd.DataFrame) -> dict:
        agreeing = int((g.winner == g.agreeing).fillna(False).sum())
        correcting = int((g.winner == 1 - g.agreeing).fillna(False).sum())
        stats = _binomial(agreeing, len(g), confidence)
        return {"agreement_labels": len(g), "agreeing_won": agreeing,
                "correcting_won": correcting, "no_winner": len(g) - agreeing - correcting,
                "rate": stats["share"], "ci_low": stats["ci_low"], "ci_high": stats["ci_high"]}

    return _per_annotator(agreement, one, ["agreement_labels", "agreeing_won", "correcting_won",
                                           "no_winner", "rate", "ci_low", "ci_high"])


# ---------------------------------------------------------------- intransitivity

def completed_triads(labels: pd.DataFrame) -> pd.DataFrame:
    """One row per (annotator, triad) with all three pairings won by someone: annotator,
    task_id, wins (wins per response a, b, c), cycle (every response won exactly once)."""
    triads = labels[(labels.task_kind == "triad") & labels.winner.notna()]
    rows = []
    for (annotator, task_id), g in triads.groupby(["annotator", "task_id"]):
        if g.pair_index.nunique() == 3:
            wins = tuple(int((g.winner == r).sum()) for r in range(3))
            rows.append({"annotator": annotator, "task_id": task_id, "wins": wins,
                         "cycle": wins == (1, 1, 1)})
    return pd.DataFrame(rows, columns=["annotator", "task_id", "wins", "cycle"])


def triad_cycles(labels: pd.DataFrame) -> pd.DataFrame:
    """annotator, completed_triads, cycles, cycle_rate."""
    done = completed_triads(labels)
    return _per_annotator(done, lambda g: {
        "completed_triads": len(g), "cycles": int(g.cycle.sum()),
        "cycle_rate": g.cycle.mean() if len(g) else math.nan,
    }, ["completed_triads", "cycles", "cycle_rate"])


# ---------------------------------------------------------------- everything at once

def _records(frame: pd.DataFrame) -> list[dict]:
    """DataFrame -> JSON-ready records (NaN -> None, numpy scalars -> Python)."""
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _plain(value):
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA:
        return None
    if isinstance(value, tuple):
        return list(value)
    return value


TABLES: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "per_annotator": labels_per_annotator,
    "per_kind": labels_per_kind,
    "gold_accuracy": gold_accuracy,
    "position_bias": position_bias,
    "agreement_bias": agreement_bias,
    "triads": triad_cycles,
}


def summary(labels: pd.DataFrame) -> dict:
    """Every statistic as a JSON-ready dict: counts, alpha (overall and per kind), TABLES."""
    return {"labels": len(labels), "annotators": int(labels.annotator.nunique()),
            "alpha": {k: _plain(v) for k, v in alpha_by_kind(labels).items()},
            **{name: _records(fn(labels)) for name, fn in TABLES.items()}}
