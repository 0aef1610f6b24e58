"""What does the reward model reward? Correlate its scores with every response feature.

For each feature in `analysis.features.FEATURES`: Pearson and Spearman correlation with the
reward, each with a paired percentile-bootstrap confidence interval (the same seeded
resamples for every feature) and scipy's p-value. Features with |r| > 0.3 are flagged;
a length feature with r > 0.5 is called out as length hacking.

    python -m analysis.correlations --rm runs/rm/default --data prefs.jsonl --json

`--data` holds `prompt` + `response` rows, or preference rows (both sides are scored).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis.features import FEATURES, feature_table

LENGTH_FEATURES = ("length_chars", "length_words", "length_tokens")


@dataclass
class CorrelationConfig:
    """Correlate reward-model scores with response features."""

    rm: list[str] = field(metadata={"help": "RM checkpoint dir(s) or Hub id(s); several = ensemble"})
    data: str = field(metadata={"help": "prompt+response rows or preference rows (file, export dir, Hub id)"})
    max_rows: int | None = field(default=2000, metadata={"help": "score at most this many responses (seeded subset)"})
    features: list[str] | None = field(default=None, metadata={"help": "feature names (default: all registered)"})
    tokenizer: str | None = field(default=None, metadata={"help": "tokenizer id/path for length_tokens (default: regex)"})
    n_boot: int = field(default=1000, metadata={"help": "bootstrap resamples for the confidence intervals"})
    confidence: float = field(default=0.95, metadata={"help": "confidence level of the intervals"})
    seed: int = field(default=0, metadata={"help": "seed for subsetting and bootstrap resamples"})
    flag_threshold: float = field(default=0.3, metadata={"help": "flag a feature when |r| exceeds this"})
    length_threshold: float = field(default=0.5, metadata={"help": "call out length hacking when a length r exceeds this"})
    out: str | None = field(default="runs/reports/correlations.json", metadata={"help": "JSON report path (PNG beside it)"})
    plot: bool = field(default=True, metadata={"help": "also write a scatter plot PNG next to the report"})


@dataclass
class CorrelationReport:
    """Per-feature correlations (`table`) plus the inputs needed to plot them."""

    table: pd.DataFrame  # one row per feature: pearson(+_lo/_hi/_p), spearman(...), flagged
    n: int
    length_hacking: bool
    callouts: list[str]
    features: pd.DataFrame = field(repr=False)  # (N, F) feature values
    rewards: np.ndarray = field(repr=False)  # (N,) mean reward
    pairs: pd.DataFrame | None = None  # preference data only: see `pair_preferences`
    pair_accuracy: float | None = None  # preference data only: share of pairs the RM ranks as labelled

    def to_dict(self) -> dict[str, Any]:
        out = {"n": self.n, "length_hacking": self.length_hacking, "callouts": self.callouts,
               "flagged": self.table.loc[self.table["flagged"], "feature"].tolist(),
               "correlations": self.table}
        if self.pairs is not None:
            out.update(pair_accuracy=self.pair_accuracy, pair_preferences=self.pairs)
        return out


# ---- math ---------------------------------------------------------------------------------

def bootstrap_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) row indices drawn with replacement, reproducible for `seed`."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise Pearson r of (B, n) arrays -> (B,); NaN where a row is constant."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    denom = np.sqrt((xc * xc).sum(axis=1) * (yc * yc).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(axis=1) / denom
    return np.where(denom > 0, np.clip(r, -1.0, 1.0), np.nan)


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise Spearman rho of (B, n) arrays: Pearson of average ranks, as scipy.stats.spearmanr."""
    return pearson_rows(stats.rankdata(x, axis=1), stats.rankdata(y, axis=1))


METHODS = {  # name -> (row-wise statistic for the bootstrap, scipy test for point + p-value)
    "pearson": (pearson_rows, stats.pearsonr),
    "spearman": (spearman_rows, stats.spearmanr),
}


def correlation_ci(x: np.ndarray, y: np.ndarray, method: str, idx: np.ndarray,
                   confidence: float = 0.95) -> tuple[float, float, float, float]:
    """(r, lo, hi, p): scipy's r and p-value, and the percentile CI over resamples `idx` (B, n).

    All NaN when x or y is constant (no correlation is defined).
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return (np.nan,) * 4
    rows, test = METHODS[method]
    res = test(x, y)
    boot = rows(x[idx], y[idx])
    alpha = (1 - confidence) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN only for tiny, degenerate n
        lo, hi = np.nanquantile(boot, [alpha, 1 - alpha])
    return float(res.statistic), float(lo), float(hi), float(res.pvalue)


def correlate(features: pd.DataFrame, rewards: Sequence[float], n_boot: int = 1000, confidence: float = 0.95,
              seed: int = 0, flag_threshold: float = 0.3, length_threshold: float = 0.5) -> CorrelationReport:
    """Correlate every column of `features` (N, F) with `rewards` (N,)."""
    rewards = np.asarray(rewards, float)
    if len(features) != len(rewards):
        raise ValueError(f"{len(features)} feature rows but {len(rewards)} rewards")
    if len(rewards) < 3:
        raise ValueError(f"need at least 3 scored responses to correlate, got {len(rewards)}")
    idx = bootstrap_indices(len(rewards), n_boot, seed)
    rows = []
    for name in features.columns:
        row: dict[str, Any] = {"feature": name}
        for method in METHODS:
            r, lo, hi, p = correlation_ci(features[name].to_numpy(float), rewards, method, idx, confidence)
            row.update({method: r, f"{method}_lo": lo, f"{method}_hi": hi, f"{method}_p": p})
        row["flagged"] = bool(max(abs(row["pearson"]), abs(row["spearman"])) > flag_threshold)  # NaN -> False
        rows.append(row)
    table = pd.DataFrame(rows)
    callouts = [
        f"length hacking: {r['feature']} correlates with reward (pearson {r['pearson']:.2f}, "
        f"spearman {r['spearman']:.2f} > {length_threshold})"
        for r in rows if r["feature"] in LENGTH_FEATURES and max(r["pearson"], r["spearman"]) > length_threshold
    ]
    return CorrelationReport(table=table, n=len(rewards), length_hacking=bool(callouts), callouts=callouts,
                             features=features.reset_index(drop=True), rewards=rewards)


def reward_of(scorer: Any, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
    """(N,) mean reward from any object with `.score(prompts, responses) -> Scores`."""
    return np.asarray(scorer.score(list(prompts), list(responses)).mean, dtype=float)


def analyze(scorer: Any, prompts: Sequence[str], responses: Sequence[str], features: Sequence[str] | None = None,
            tokenizer: Any = None, **correlate_kwargs) -> CorrelationReport:
    """Score the responses, compute their features, and correlate (kwargs go to `correlate`)."""
    table = feature_table(prompts, responses, features=features, tokenizer=tokenizer)
    return correlate(table, reward_of(scorer, prompts, responses), **correlate_kwargs)


def pair_preferences(features: pd.DataFrame, rewards: np.ndarray, side: Sequence[str],
                     pair: Sequence[int]) -> tuple[pd.DataFrame, float]:
    """Do the labels, and does the RM, prefer the response with more of a feature?

    For preference rows (`side` chosen/rejected, `pair` index): per feature, over the pairs
    whose two responses differ on it, the share where the labelled-chosen response has the
    higher value (`human_prefers_higher`) and the share where the higher-reward response
    does (`rm_prefers_higher`). An RM above its labels amplifies the labels' bias. Also
    returns the RM's pairwise accuracy against the labels (ties count half).
    """
    frame = features.assign(_reward=np.asarray(rewards, float), _side=list(side), _pair=list(pair))
    chosen = frame[frame["_side"] == "chosen"].set_index("_pair").sort_index()
    rejected = frame[frame["_side"] == "rejected"].set_index("_pair").loc[chosen.index]
    gap = chosen["_reward"].to_numpy() - rejected["_reward"].to_numpy()  # (P,)
    accuracy = float(np.mean((gap > 0) + 0.5 * (gap == 0)))
    rows = []
    for name in features.columns:
        diff = chosen[name].to_numpy() - rejected[name].to_numpy()
        differ = diff != 0
        rows.append({"feature": name, "n_pairs": int(differ.sum()),
                     "human_prefers_higher": float(np.mean(diff[differ] > 0)) if differ.any() else np.nan,
                     "rm_prefers_higher": float(np.mean(np.sign(diff[differ]) == np.sign(gap[differ])))
                     if differ.any() else np.nan})
    return pd.DataFrame(rows), accuracy


# ---- plotting -----------------------------------------------------------------------------

def plot_scatter(report: CorrelationReport, features: Sequence[str] | None = None, ncols: int = 4):
    """Figure: reward against each feature (default: flagged ones, else all), r in the title."""
    from matplotlib.figure import Figure  # not pyplot: no global registry keeps the figure alive

    table = report.table.set_index("feature")
    names = list(features) if features is not None else (
        table.index[table["flagged"]].tolist() or table.index.tolist())
    ncols = min(ncols, len(names))
    nrows = -(-len(names) // ncols)
    fig = Figure(figsize=(3.2 * ncols, 2.8 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, names):
        ax.scatter(report.features[name], report.rewards, s=6, alpha=0.4)
        r = table.loc[name]
        ax.set_title(f"{name}\npearson {r['pearson']:.2f} [{r['pearson_lo']:.2f}, {r['pearson_hi']:.2f}]",
                     fontsize=8, color="crimson" if r["flagged"] else "black")
        ax.set_xlabel(name, fontsize=8)
        ax.set_ylabel("reward", fontsize=8)
    fig.tight_layout()
    return fig


# ---- CLI ----------------------------------------------------------------------------------

def run(config: CorrelationConfig, scorer: Any = None) -> tuple[CorrelationReport, dict]:
    """Load data and scorer from `config`, analyze, write the report (+PNG); (report, JSON dict)."""
    from analysis.cli import load_scorer_from, write_plot
    from analysis.responses import load_responses

    unknown = [f for f in config.features or [] if f not in FEATURES]
    if unknown:
        raise ValueError(f"unknown features {unknown}; choose from {sorted(FEATURES)}")
    rows = load_responses(config.data, max_rows=config.max_rows, seed=config.seed)
    scorer = scorer or load_scorer_from(config.rm)
    report = analyze(scorer, rows["prompt"].tolist(), rows["response"].tolist(), features=config.features,
                     tokenizer=config.tokenizer, n_boot=config.n_boot, confidence=config.confidence,
                     seed=config.seed, flag_threshold=config.flag_threshold,
                     length_threshold=config.length_threshold)
    if rows["side"].notna().any():
        report.pairs, report.pair_accuracy = pair_preferences(report.features, report.rewards, rows["side"],
                                                              rows["pair"])
    out = {"config": config, **report.to_dict()}
    if config.out and config.plot:
        out["plot"] = write_plot(plot_scatter(report), config.out)
    return report, out


def main(argv: list[str] | None = None) -> None:
    from analysis.cli import config_from_args, emit, parser_for

    args = parser_for(CorrelationConfig).parse_args(argv)
    config = config_from_args(CorrelationConfig, args)
    report, out = run(config)
    flagged = ", ".join(out["flagged"]) or "none"
    emit(out, config.out, args.json, f"{report.n} responses; flagged: {flagged}; " + ("; ".join(report.callouts)
                                                                                     or "no length hacking"))


if __name__ == "__main__":
    from labeling.cli import run_cli

    raise SystemExit(run_cli(main))
