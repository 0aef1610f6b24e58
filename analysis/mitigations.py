"""Mitigations of reward hacking, measured on the same axes as the hacking itself.

- KL coefficient sweep (`kl_sweep`): RL runs that differ only in `kl_coef`.
- Ensemble on disjoint data: `rm.train` with `ensemble_data="disjoint"` (each member sees its
  own 1/K of the pairs), used as the proxy with the conservative objective mean - λ·std
  (`RLConfig.lam`; best-of-n: the `conservative` selector).
- Honesty penalty: objective - γ·endorsement of a false claim (`RLConfig.honesty_gamma`;
  best-of-n: the `honesty_penalised` selector).
- Debiased RM (`debias`): the same preferences trained with and without a decorrelation
  penalty between reward and a nuisance feature (rm.loss.decorrelation_loss, ODIN-style);
  reports held-out accuracy and the feature's correlation with the reward, before and after.

`compare_runs` puts any set of RL runs (and their best-of-n curves) on one plot
(`analysis.rl.plot_rl`) and tabulates peak gold, where it was reached, and the fits.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis.rl import RLConfig, RLResult, train_rl


def feature_values(name: str) -> Callable[[list[str], list[str]], list[float]]:
    """analysis.features' feature `name` as rm.train's nuisance function (prompts, responses) -> values."""
    from analysis.features import FEATURES, feature_table

    if name not in FEATURES:
        raise ValueError(f"unknown feature {name!r}; choose from {sorted(FEATURES)}")
    return lambda prompts, responses: feature_table(list(prompts), list(responses), [name])[name].tolist()


# ---- debiased RM -------------------------------------------------------------------------------


@dataclass
class DebiasResult:
    """One row per RM ("plain", "debiased"): held-out accuracy and the reward's correlation with the feature."""

    table: pd.DataFrame  # rm, coef, heldout_accuracy, corr, corr_lo, corr_hi, checkpoint
    feature: str


def reward_feature_correlation(scorer, pairs: pd.DataFrame, values: Callable) -> tuple[float, float, float]:
    """Pearson r (with a Fisher-z 95% CI) of reward with the feature over every held-out response (both sides)."""
    prompts = [*pairs["prompt"], *pairs["prompt"]]
    responses = [*pairs["chosen"], *pairs["rejected"]]
    reward = np.asarray(scorer.score(prompts, responses).mean, float)
    feature = np.asarray(values(prompts, responses), float)
    if reward.std() == 0 or feature.std() == 0:
        return 0.0, 0.0, 0.0
    res = stats.pearsonr(reward, feature)
    ci = res.confidence_interval(0.95)
    return float(res.statistic), float(ci.low), float(ci.high)


def debias(train_config, feature: str, coef: float, heldout: pd.DataFrame, load: Callable | None = None,
           callback: Callable | None = None, plain: str | Path | None = None) -> DebiasResult:
    """Train `train_config` (an rm.train.TrainConfig with eval_data) as it is and with
    decorrelate=feature, coef; compare them on `heldout` (prompt/chosen/rejected rows). `plain`: an
    already trained checkpoint of the same config without the penalty, used instead of training one."""
    import json

    from rm.score import load_scorer
    from rm.train import train

    values = feature_values(feature)
    rows = []
    for name, c in (("plain", 0.0), ("debiased", coef)):
        config = replace(train_config, out=str(Path(train_config.out) / name), decorrelate=feature if c else None,
                         decorrelate_coef=c or 1.0)
        folder = plain if plain and not c else train(config, callback, nuisance=values if c else None)
        metrics = json.loads((Path(folder) / "metrics.json").read_text())
        r, lo, hi = reward_feature_correlation((load or load_scorer)(folder), heldout, values)
        rows.append({"rm": name, "coef": c, "heldout_accuracy": metrics.get("accuracy"), "corr": r,
                     "corr_lo": lo, "corr_hi": hi, "checkpoint": str(folder)})
    return DebiasResult(pd.DataFrame(rows), feature)


# ---- RL comparisons ------------------------------------------------------------------------------


def kl_sweep(config: RLConfig, coefs: Sequence[float], **kwargs) -> dict[str, RLResult]:
    """"kl_coef=c" -> the RL run with that coefficient (each cached in its own run folder)."""
    return {f"kl_coef={c:g}": train_rl(replace(config, kl_coef=float(c), out=None), **kwargs) for c in coefs}


def compare_runs(runs: dict[str, RLResult]) -> pd.DataFrame:
    """One row per run: gold at step 0, peak gold (step, √KL), final gold and proxy gain, Gao RL fit."""
    rows = []
    for name, run in runs.items():
        c = run.curve
        peak = c.loc[c["gold"].idxmax()]
        rows.append({"run": name, "gold_start": float(c["gold"].iloc[0]), "gold_peak": float(peak["gold"]),
                     "peak_step": int(peak["step"]), "peak_sqrt_kl": float(peak["sqrt_kl"]),
                     "gold_final": float(c["gold"].iloc[-1]), "proxy_gain": float(c["proxy"].iloc[-1] - c["proxy"].iloc[0]),
                     "kl_final": float(c["kl"].iloc[-1]), "alpha": run.fit.alpha, "beta": run.fit.beta,
                     "d_star": run.fit.d_star,
                     "bon_gold_max": None if run.bon is None else float(run.bon.curves["gold"].max())})
    return pd.DataFrame(rows)


def plot_bon_mitigations(results: dict, title: str = "Best-of-n: gold of the selected response"):
    """Figure: gold against √KL(best-of-n ‖ policy), one line per (proxy, selector) of
    `results` (name -> analysis.goodhart.GoodhartResult)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.add_subplot()
    for name, result in results.items():
        for selector, curve in result.curves.groupby("selector", sort=False):
            label = name if selector in ("proxy", "conservative") and len(result.fits) == 1 else f"{name}: {selector}"
            ax.errorbar(curve["sqrt_kl"], curve["gold"], yerr=curve["gold_sem"], marker="o", ms=4, capsize=2,
                        label=label)
    ax.set_xlabel("√KL(best-of-n ‖ policy)  [nats^½]")
    ax.set_ylabel("gold score of the selected response")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title)
    fig.tight_layout()
    return fig
