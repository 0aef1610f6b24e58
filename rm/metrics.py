"""Pairwise metrics and calibration of reward models, on numpy arrays of rewards.

Inputs are `r_chosen`, `r_rejected`: (N,) rewards of the preferred and the other response,
and optional `tie`: (N,) bool. The model's probability that `chosen` wins is
p = σ((r_c - r_r) / T); the label is y = 1, or 0.5 for a tie.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

# scipy and pandas load on first use: a training run without evaluation never needs them
# (about 3 s of a short run's start-up on 2 cores; bench/README.md).


def _labels(n: int, tie) -> np.ndarray:
    return np.ones(n) if tie is None else np.where(np.asarray(tie, dtype=bool), 0.5, 1.0)


def _delta(r_chosen, r_rejected) -> np.ndarray:
    return np.asarray(r_chosen, dtype=np.float64) - np.asarray(r_rejected, dtype=np.float64)


def p_better(r_a, r_b, temperature: float = 1.0) -> np.ndarray:
    """P(A preferred over B) = σ((r_A - r_B) / T)."""
    from scipy.special import expit

    return expit(_delta(r_a, r_b) / temperature)


def accuracy(r_chosen, r_rejected, tie=None) -> float:
    """Share of pairs ranked right; equal scores and tie labels count half."""
    d = _delta(r_chosen, r_rejected)
    hit = np.where(d > 0, 1.0, np.where(d == 0, 0.5, 0.0))
    hit = np.where(_labels(len(d), tie) == 0.5, 0.5, hit)
    return float(hit.mean())


def reward_gap(r_chosen, r_rejected) -> float:
    """Mean of r_chosen - r_rejected."""
    return float(_delta(r_chosen, r_rejected).mean())


def log_loss(r_chosen, r_rejected, tie=None, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the labels under p = σ(Δ/T) (the BT loss, in nats)."""
    from scipy.special import log_expit

    z = _delta(r_chosen, r_rejected) / temperature
    y = _labels(len(z), tie)
    return float(-(y * log_expit(z) + (1 - y) * log_expit(-z)).mean())


def brier(r_chosen, r_rejected, tie=None, temperature: float = 1.0) -> float:
    """Mean of (p - y)²."""
    p = p_better(r_chosen, r_rejected, temperature)
    return float(((p - _labels(len(p), tie)) ** 2).mean())


def _symmetric(r_chosen, r_rejected, tie, temperature) -> tuple[np.ndarray, np.ndarray]:
    """Both orientations of every pair: probabilities (2N,) and outcomes (2N,).

    A pair list has y = 1 by construction, so calibration is measured on (p, y) and
    (1-p, 1-y) together; the bins are mirror images, which makes this the usual top-label ECE.
    """
    p = p_better(r_chosen, r_rejected, temperature)
    y = _labels(len(p), tie)
    return np.concatenate([p, 1 - p]), np.concatenate([y, 1 - y])


def reliability_table(r_chosen, r_rejected, tie=None, temperature: float = 1.0, n_bins: int = 10) -> pd.DataFrame:
    """One row per non-empty probability bin: bin_lo, bin_hi, count, mean_p, frac_pos, gap."""
    import pandas as pd

    p, y = _symmetric(r_chosen, r_rejected, tie, temperature)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(p, edges[1:-1], right=True), 0, n_bins - 1)
    rows = []
    for b in np.unique(bins):
        sel = bins == b
        rows.append({"bin_lo": edges[b], "bin_hi": edges[b + 1], "count": int(sel.sum()),
                     "mean_p": float(p[sel].mean()), "frac_pos": float(y[sel].mean())})
    table = pd.DataFrame(rows, columns=["bin_lo", "bin_hi", "count", "mean_p", "frac_pos"])
    table["gap"] = table["frac_pos"] - table["mean_p"]
    return table


def ece(r_chosen, r_rejected, tie=None, temperature: float = 1.0, n_bins: int = 10) -> float:
    """Expected calibration error: Σ_bins (count/total)·|frac_pos - mean_p| (equal-width bins)."""
    table = reliability_table(r_chosen, r_rejected, tie, temperature, n_bins)
    return float((table["count"] * table["gap"].abs()).sum() / table["count"].sum())


def fit_temperature(r_chosen, r_rejected, tie=None, bounds: tuple[float, float] = (1e-2, 1e2)) -> float:
    """T minimising log-loss of σ(Δ/T) (temperature scaling, Guo et al. 2017), on an eval split."""
    from scipy.optimize import minimize_scalar

    result = minimize_scalar(lambda log_t: log_loss(r_chosen, r_rejected, tie, float(np.exp(log_t))),
                             bounds=tuple(np.log(bounds)), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(result.x))


def all_metrics(r_chosen, r_rejected, tie=None, temperature: float = 1.0) -> dict[str, float]:
    """n, accuracy, reward_gap, log_loss, brier, ece (at T=1) and *_calibrated at `temperature`."""
    out = {"n": int(len(np.asarray(r_chosen))), "accuracy": accuracy(r_chosen, r_rejected, tie),
           "reward_gap": reward_gap(r_chosen, r_rejected)}
    for name, fn in {"log_loss": log_loss, "brier": brier, "ece": ece}.items():
        out[name] = fn(r_chosen, r_rejected, tie)
        out[f"{name}_calibrated"] = fn(r_chosen, r_rejected, tie, temperature=temperature)
    out["temperature"] = float(temperature)
    return out
