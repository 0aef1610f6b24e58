"""Reliability diagram of a reward model on a preference set, before and after temperature scaling.

The RM's probability that the chosen response wins is p = σ((r_chosen - r_rejected)/T);
`rm.metrics.reliability_table` bins p (both orientations of every pair) against the share
that actually won. T = 1 is the raw model ("before"); "after" uses a temperature that is
- `fit`: fitted (`rm.metrics.fit_temperature`) on a seeded `fit_fraction` of the pairs, and
  both diagrams are then drawn on the remaining pairs only, so the gain is not in-sample;
- `checkpoint`: the temperature saved with the checkpoint (`Scorer.temperature`);
- a number, e.g. `--temperature 2.5`.

    python -m analysis.calibration --rm runs/rm/default --data prefs.jsonl --json
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rm import metrics as M

SCORES = {"accuracy": M.accuracy, "log_loss": M.log_loss, "brier": M.brier, "ece": M.ece}


@dataclass
class CalibrationResult:
    """Reliability tables and metrics at T = 1 (`before`) and at the chosen T (`after`)."""

    before: pd.DataFrame  # reliability table: bin_lo, bin_hi, count, mean_p, frac_pos, gap
    after: pd.DataFrame
    temperature: float
    temperature_source: str  # "fit", "checkpoint" or "given"
    metrics_before: dict[str, float]
    metrics_after: dict[str, float]
    n_fit: int  # pairs the temperature was fitted on (0 unless source is "fit")
    n_eval: int  # pairs the tables and metrics are computed on

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("temperature", "temperature_source", "n_fit", "n_eval",
                                              "metrics_before", "metrics_after", "before", "after")}


def split_pairs(n: int, fit_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(fit, eval) index arrays: a seeded `fit_fraction` of range(n) and the rest, each sorted."""
    if not 0 < fit_fraction < 1:
        raise ValueError(f"fit_fraction must be in (0, 1), got {fit_fraction}")
    n_fit = int(round(n * fit_fraction))
    if n_fit < 1 or n_fit >= n:
        raise ValueError(f"{n} pairs cannot be split {fit_fraction:.2f}/{1 - fit_fraction:.2f}; need more pairs")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:n_fit]), np.sort(order[n_fit:])


def metrics_at(r_chosen, r_rejected, tie, temperature: float, n_bins: int) -> dict[str, float]:
    """accuracy, log_loss, brier and ece of σ(Δ/T)."""
    out = {}
    for name, fn in SCORES.items():
        kwargs = {} if name == "accuracy" else {"temperature": temperature}
        if name == "ece":
            kwargs["n_bins"] = n_bins
        out[name] = fn(r_chosen, r_rejected, tie, **kwargs)
    return out


def calibration(r_chosen, r_rejected, tie=None, temperature: float | None = None, fit_fraction: float = 0.5,
                n_bins: int = 10, seed: int = 0, source: str = "given") -> CalibrationResult:
    """Reliability before (T = 1) and after temperature scaling.

    `temperature=None` fits T on a seeded `fit_fraction` of the pairs and evaluates on the
    rest; a given temperature is applied to all pairs (`source` records where it came from).
    """
    r_c, r_r = np.asarray(r_chosen, dtype=np.float64), np.asarray(r_rejected, dtype=np.float64)
    tie = np.zeros(len(r_c), dtype=bool) if tie is None else np.asarray(tie, dtype=bool)
    if len(r_c) != len(r_r) or len(r_c) != len(tie):
        raise ValueError(f"got {len(r_c)} chosen, {len(r_r)} rejected and {len(tie)} tie values")
    if temperature is None:
        fit, ev = split_pairs(len(r_c), fit_fraction, seed)
        temperature, source = M.fit_temperature(r_c[fit], r_r[fit], tie[fit]), "fit"
    else:
        fit, ev = np.array([], dtype=int), np.arange(len(r_c))
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    args = (r_c[ev], r_r[ev], tie[ev])
    return CalibrationResult(
        before=M.reliability_table(*args, temperature=1.0, n_bins=n_bins),
        after=M.reliability_table(*args, temperature=temperature, n_bins=n_bins),
        temperature=float(temperature), temperature_source=source,
        metrics_before=metrics_at(*args, 1.0, n_bins), metrics_after=metrics_at(*args, temperature, n_bins),
        n_fit=len(fit), n_eval=len(ev))


def plot_reliability(result: CalibrationResult, title: str = "Reliability of P(chosen wins)"):
    """Figure: mean predicted p against observed win rate per bin, before and after scaling,
    on the diagonal of perfect calibration; below, how many predictions fall in each bin."""
    from matplotlib.figure import Figure  # no pyplot: a server must not keep every figure

    fig = Figure(figsize=(5.5, 6.5))
    ax, hist = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfectly calibrated")
    width = float((result.before["bin_hi"] - result.before["bin_lo"]).iloc[0]) if len(result.before) else 0.1
    curves = (("before", result.before, result.metrics_before, "tab:red", "T = 1"),
              ("after", result.after, result.metrics_after, "tab:blue", f"T = {result.temperature:.2f}"))
    for i, (name, table, metrics, color, label) in enumerate(curves):
        ax.plot(table["mean_p"], table["frac_pos"], marker="o", color=color,
                label=f"{name} ({label}): ECE {metrics['ece']:.3f}")
        hist.bar(table["bin_lo"] + width * (0.3 + 0.4 * i), table["count"], width=0.4 * width, color=color,
                 alpha=0.7)
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="observed share won", title=title)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    hist.set(xlabel="predicted P(win)", ylabel="count")
    fig.tight_layout()
    return fig


# ---- CLI -------------------------------------------------------------------------------------


@dataclass
class CalibrationConfig:
    """Reliability diagram of a reward model, before and after temperature scaling."""

    rm: list[str] = field(metadata={"help": "RM checkpoint dir(s) or Hub id(s); several = ensemble"})
    data: str = field(metadata={"help": "preferences: export folder, JSONL/CSV/Parquet file or Hub id"})
    data_dir: str | None = field(default=None, metadata={"help": "Hub dataset sub-folder"})
    split: str | None = field(default=None, metadata={"help": "Hub dataset split (default: train)"})
    max_pairs: int | None = field(default=None, metadata={"help": "use only the first N pairs"})
    temperature: str = field(default="fit", metadata={"help": "fit (on --fit-fraction of the pairs), checkpoint, or a number"})
    fit_fraction: float = field(default=0.5, metadata={"help": "share of pairs the temperature is fitted on; the rest are plotted"})
    n_bins: int = field(default=10, metadata={"help": "equal-width probability bins"})
    seed: int = field(default=0, metadata={"help": "seed of the fit/eval split"})
    out: str | None = field(default="runs/reports/calibration.json", metadata={"help": "JSON report path"})
    plot: str | None = field(default=None, metadata={"help": "PNG path (default: the report path with .png)"})


def temperature_from(spec: str, scorer) -> tuple[float | None, str]:
    """(temperature or None to fit, source) from "fit", "checkpoint" or a number."""
    if spec == "fit":
        return None, "fit"
    if spec == "checkpoint":
        return float(getattr(scorer, "temperature", 1.0)), "checkpoint"
    try:
        return float(spec), "given"
    except ValueError:
        raise ValueError(f"--temperature must be fit, checkpoint or a number, got {spec!r}") from None


def pair_calibration(scorer, pairs, temperature: str = "checkpoint", fit_fraction: float = 0.5,
                     n_bins: int = 10, seed: int = 0) -> CalibrationResult:
    """Score a preference set with `scorer` and compute its reliability before and after scaling.

    `pairs` has prompt, chosen, rejected and optionally tie columns (a `datasets.Dataset`, a
    DataFrame or a dict of lists); `temperature` is as in `temperature_from`.
    """
    from rm.evaluate import score_pairs

    names = pairs.column_names if hasattr(pairs, "column_names") else list(pairs)
    columns = {c: list(pairs[c]) for c in ("prompt", "chosen", "rejected", "tie") if c in names}
    t, source = temperature_from(temperature, scorer)
    r_c, r_r = score_pairs(scorer, columns)
    return calibration(r_c, r_r, columns.get("tie"), t, fit_fraction, n_bins, seed, source)


def run(config: CalibrationConfig, scorer=None) -> tuple[CalibrationResult, dict]:
    """Score the pairs, compute the reliability before and after, plot; (result, JSON report)."""
    from analysis.cli import load_scorer_from, write_plot
    from rm.data import load_preferences

    scorer = scorer or load_scorer_from(config.rm)
    ds = load_preferences(config.data, config.data_dir, config.split, config.max_pairs)
    result = pair_calibration(scorer, ds, config.temperature, config.fit_fraction, config.n_bins, config.seed)
    report = {"config": config, "rm": getattr(scorer, "name", None), **result.to_dict()}
    if config.plot or config.out:
        report["plot"] = write_plot(plot_reliability(result), config.out, config.plot)
    return result, report


def main(argv: list[str] | None = None) -> None:
    from analysis.cli import config_from_args, emit, parser_for

    args = parser_for(CalibrationConfig).parse_args(argv)
    config = config_from_args(CalibrationConfig, args)
    result, report = run(config)
    emit(report, config.out, args.json,
         f"{result.n_eval} pairs; ECE {result.metrics_before['ece']:.3f} at T=1 -> "
         f"{result.metrics_after['ece']:.3f} at T={result.temperature:.3f} ({result.temperature_source})")


if __name__ == "__main__":
    from labeling.cli import run_cli

    raise SystemExit(run_cli(main))
