"""The synthetic-gold protocol of Gao et al. (2022, arXiv:2210.10760): how over-optimisation scales
with the proxy's data.

1. A gold RM (trained on more data, or an ensemble) relabels a preference set: in each pair the
   response the gold scores higher becomes `chosen` (`labels="hard"`), or is drawn with
   P = σ(Δ_gold / T) (`labels="bt"`, T the gold's fitted temperature).
2. Proxies are trained (rm.train) on nested subsets of the relabelled pairs, one per size.
3. Each proxy's best-of-n curve is measured on the same policy samples (one sample cache), with
   the gold RM as gold, and fitted as gold = d(α - βd) (analysis.goodhart).
4. α, β, the sweet spot n* and each proxy's held-out agreement with the gold labels are reported
   against the proxy's data size.

    python -m analysis.synthetic_gold --gold runs/rm/gold_ensemble --pairs prefs.jsonl \\
        --sizes 64 128 256 --prompts seed --n 16 --json
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from scipy.special import expit

from analysis.goodhart import GoodhartResult, SamplingConfig, analyze, cached_samples, score_samples


def relabel(pairs: pd.DataFrame, gold, labels: str = "hard", seed: int = 0) -> pd.DataFrame:
    """prompt, chosen, rejected, gold_margin (≥ 0 for hard labels): each pair ordered by the gold scorer.

    hard: the higher-scored response is chosen (an exact tie keeps the given order);
    bt: the first response is chosen with P = σ(Δ / T), Δ = gold(chosen) - gold(rejected), T = gold.temperature.
    """
    prompts = pairs["prompt"].tolist()
    n = len(prompts)
    scores = np.asarray(gold.score(prompts + prompts, pairs["chosen"].tolist() + pairs["rejected"].tolist()).mean, float)
    delta = scores[:n] - scores[n:]
    if labels == "hard":
        keep = delta >= 0
    elif labels == "bt":
        p = expit(delta / float(getattr(gold, "temperature", 1.0) or 1.0))
        keep = np.random.default_rng(seed).random(n) < p
    else:
        raise ValueError(f"labels must be 'hard' or 'bt', got {labels!r}")
    chosen = np.where(keep, pairs["chosen"], pairs["rejected"])
    rejected = np.where(keep, pairs["rejected"], pairs["chosen"])
    return pd.DataFrame({"prompt": prompts, "chosen": chosen, "rejected": rejected,
                         "gold_margin": np.where(keep, delta, -delta)})


def nested_subsets(n: int, sizes: Sequence[int], seed: int = 0) -> dict[int, np.ndarray]:
    """size -> the first `size` indices of one seeded permutation (each subset holds the smaller ones)."""
    too_big = [s for s in sizes if not 1 <= s <= n]
    if too_big:
        raise ValueError(f"proxy sizes {too_big} do not fit the {n} relabelled training pairs; choose sizes 1..{n}")
    order = np.random.default_rng(seed).permutation(n)
    return {int(s): np.sort(order[:s]) for s in sorted(sizes)}


@dataclass
class SyntheticGoldResult:
    """`table`: one row per proxy size (held-out accuracy against gold labels, α, β, R², d*, n*);
    `curves`: every proxy's best-of-n curve (column `size`)."""

    table: pd.DataFrame
    curves: pd.DataFrame
    results: dict[int, GoodhartResult] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "curves": self.curves}


@dataclass
class SyntheticGoldConfig:
    """Gao et al.'s synthetic-gold protocol: proxies of several data sizes against one gold RM."""

    gold: list[str] = field(metadata={"help": "gold RM checkpoint dir(s) or Hub id(s); several = an ensemble"})
    pairs: str = field(metadata={"help": "preference file (or export folder) whose response pairs the gold relabels"})
    sizes: list[int] = field(default_factory=lambda: [32, 64, 128], metadata={"help": "training pairs per proxy"})
    labels: str = field(default="hard", metadata={"help": "hard: gold's argmax; bt: drawn with σ(Δ/T)", "choices": ["hard", "bt"]})
    heldout: float = field(default=0.2, metadata={"help": "share of the relabelled pairs held out to measure each proxy's agreement with the gold"})
    backbone: str | None = field(default=None, metadata={"help": "proxy backbone (default: the offline MiniLM)"})
    epochs: int = field(default=2, metadata={"help": "proxy training epochs"})
    batch_size: int = field(default=16, metadata={"help": "pairs per optimiser step"})
    lr: float = field(default=1e-4, metadata={"help": "proxy learning rate"})
    max_length: int = field(default=128, metadata={"help": "tokens per prompt+response"})
    prompts: str = field(default="seed", metadata={"help": "best-of-n prompts: a registered source (analysis.gold) or a file"})
    n_prompts: int = field(default=16, metadata={"help": "number of prompts"})
    n: int = field(default=16, metadata={"help": "samples per prompt, N"})
    max_new_tokens: int = field(default=48, metadata={"help": "new tokens per sample at most"})
    policy: str | None = field(default=None, metadata={"help": "policy LM (default: the offline SmolLM2)"})
    seed: int = field(default=0, metadata={"help": "seed for relabelling, subsets, training and sampling"})
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads"})
    cache_dir: str = field(default="runs/goodhart", metadata={"help": "sample cache folder"})
    out: str = field(default="runs/synthetic_gold", metadata={"help": "folder for relabelled data, proxies and the report"})


def train_proxies(config: SyntheticGoldConfig, train: pd.DataFrame, heldout: pd.DataFrame,
                  callback: Callable | None = None) -> dict[int, Path]:
    """size -> proxy checkpoint trained on that nested subset (evaluated on the held-out gold labels)."""
    from rm.train import TrainConfig, train as train_rm

    folder = Path(config.out)
    folder.mkdir(parents=True, exist_ok=True)
    held = folder / "heldout.jsonl"
    heldout.to_json(held, orient="records", lines=True, force_ascii=False)
    out = {}
    for size, idx in nested_subsets(len(train), config.sizes, config.seed).items():
        data = folder / f"train_{size}.jsonl"
        train.iloc[idx].to_json(data, orient="records", lines=True, force_ascii=False)
        out[size] = train_rm(TrainConfig(data=str(data), eval_data=str(held), out=str(folder / f"proxy_{size}"),
                                         backbone=config.backbone, epochs=config.epochs, batch_size=config.batch_size,
                                         lr=config.lr, max_length=config.max_length, seed=config.seed,
                                         progress=False), callback)
    return out


def run(config: SyntheticGoldConfig, gold=None, generate_fn: Callable | None = None, progress=None,
        load_proxy: Callable[[Path], Any] | None = None) -> SyntheticGoldResult:
    """Relabel, train the proxies, sample once, score and fit every proxy; see the module docstring."""
    import json

    from analysis.cli import load_scorer_from
    from analysis.gold import load_prompts
    from rm.data import load_preferences
    from rm.score import load_scorer

    gold = gold or load_scorer_from(config.gold)
    pairs = load_preferences(config.pairs).to_pandas()
    relabelled = relabel(pairs, gold, config.labels, config.seed)
    order = np.random.default_rng(config.seed + 1).permutation(len(relabelled))
    n_held = max(1, int(round(config.heldout * len(relabelled))))
    heldout, train = relabelled.iloc[order[:n_held]], relabelled.iloc[order[n_held:]].reset_index(drop=True)
    proxies = train_proxies(config, train, heldout)
    prompts = load_prompts(config.prompts, config.n_prompts, config.seed)
    sampling = SamplingConfig(config.n, config.max_new_tokens, 1.0, 1.0, config.seed)
    samples, _, _ = cached_samples(prompts, sampling, config.policy, config.cache_dir, generate_fn=generate_fn,
                                   progress=progress, threads=config.threads)
    rows, curves, results = [], [], {}
    for size, path in proxies.items():
        scored = score_samples(samples, (load_proxy or load_scorer)(path), gold)
        result = analyze(scored, selectors=["proxy"])
        results[size] = result
        fit = result.fits["proxy"]
        metrics = json.loads((Path(path) / "metrics.json").read_text())
        rows.append({"size": size, "heldout_gold_agreement": metrics.get("accuracy"), "alpha": fit.alpha,
                     "beta": fit.beta, "r2": fit.r2, "d_star": fit.d_star, "n_star": fit.n_star,
                     "n_star_measured": result.n_star_empirical["proxy"], "checkpoint": str(path)})
        curves.append(result.curves.assign(size=size))
    return SyntheticGoldResult(pd.DataFrame(rows), pd.concat(curves, ignore_index=True), results)


def plot_synthetic_gold(result: SyntheticGoldResult, title: str = "Synthetic gold: proxies of several sizes"):
    """Figure: gold of best-of-n against √KL per proxy size (left); fitted α and β against size (right)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.5))
    ax_g, ax_f = fig.subplots(1, 2)
    for size, curve in result.curves.groupby("size"):
        ax_g.errorbar(curve["sqrt_kl"], curve["gold"], yerr=curve["gold_sem"], marker="o", ms=4, capsize=2,
                      label=f"{size} pairs")
    ax_g.set_xlabel("√KL(best-of-n ‖ policy)")
    ax_g.set_ylabel("gold RM score of the selected response")
    ax_g.legend(fontsize=8)
    ax_g.grid(alpha=0.3)
    t = result.table
    ax_f.plot(t["size"], t["alpha"], marker="o", label="α")
    ax_f.plot(t["size"], t["beta"], marker="s", label="β")
    ax_f.set_xscale("log")
    ax_f.set_xlabel("proxy training pairs")
    ax_f.set_ylabel("fitted coefficient of gold = d(α − βd)")
    ax_f.legend()
    ax_f.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def summary(result: SyntheticGoldResult) -> str:
    lines = [f"{'size':>6} {'agree':>6} {'α':>8} {'β':>8} {'R²':>5} {'n*':>7}"]
    for r in result.table.itertuples():
        n_star = "none" if r.n_star is None or not np.isfinite(r.n_star) else f"{r.n_star:.1f}"
        agree = float("nan") if r.heldout_gold_agreement is None else r.heldout_gold_agreement
        lines.append(f"{r.size:>6} {agree:>6.3f} {r.alpha:>8.3g} {r.beta:>8.3g} {r.r2:>5.2f} {n_star:>7}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> SyntheticGoldResult:
    from analysis.cli import config_from_args, emit, parser_for, write_plot

    args = parser_for(SyntheticGoldConfig).parse_args(argv)
    config = config_from_args(SyntheticGoldConfig, args)
    result = run(config)
    report_path = Path(config.out) / "report.json"
    report = {"config": asdict(config), **result.to_dict(),
              "plot": write_plot(plot_synthetic_gold(result), report_path)}
    emit(report, report_path, args.json, summary(result))
    return result


if __name__ == "__main__":
    from labeling.cli import run_cli

    raise SystemExit(run_cli(main))
