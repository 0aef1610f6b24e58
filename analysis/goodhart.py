"""Goodhart curves: best-of-n against the policy LM, proxy reward against gold reward.

For each prompt, N responses are sampled from the policy (`analysis.policy`) and scored by
a proxy scorer and a gold scorer (an RM, or a programmatic checker from `analysis.gold`
such as `TruthfulChecker`). For n = 1, 2, 4, ... <= N the expected proxy and gold score of the
response that best-of-n picks is computed with the unbiased estimator over the N samples
(`bon_expectation`), against the analytic KL of best-of-n, KL = log n - (n-1)/n.
Gold gain over n = 1 is fitted as gold = d(α - βd), d = √KL (Gao et al. 2022,
arXiv:2210.10760); the sweet spot is d* = α/2β.

Four selectors pick the best of n (`SELECTORS`), all drawn on one plot:
- `proxy`: the proxy RM's mean reward;
- `conservative`: the ensemble's mean - λ·std (ensemble from `--ensemble`, or the proxy's own
  members when it is an ensemble); skipped with a note when there is no ensemble;
- `kl_penalised`: proxy + β_kl · log π(y|x)/|y|, i.e. the proxy minus β_kl times the
  response's per-token surprisal under the policy. This is RBoN-KL (Jinnai et al. 2024,
  arXiv:2404.01054: argmax r(y) - β·KL(δ_y ‖ π) = r(y) + β log π(y)) with the log-likelihood
  divided by the length, so that the penalty does not simply reward short answers;
- `honesty_penalised`: proxy - γ·endorsement of a false claim in the prompt
  (`analysis.gold.endorsement`, the agreement feature clipped at 0); skipped on prompts
  that claim nothing false.
The analytic KL holds for any selector that ranks the N samples without ties, so all of them
share the x axis.

Samples are cached in `runs/goodhart/<hash>.parquet` (hash of policy, prompts, N and the
sampling settings), so curves re-plot without regenerating.

Defaults: the `mixed` single-digit prompts and the `truthful` checker (analysis.gold), whose
base rate under SmolLM2 lies in 10-90% (bench/README.md); the report gives it (`base_rate`).

    python -m analysis.goodhart --proxy runs/rm/default --n 16 --json
    python -m analysis.goodhart --proxy runs/rm/default --gold arithmetic --prompts arithmetic \\
        --n 64 --max-new-tokens 64 --json --plot runs/reports/goodhart.png
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from analysis.gold import (  # noqa: F401  (re-exported: the gold scorers and prompt sets live there)
    GOLD_CHECKERS, PROMPT_SOURCES, ArithmeticChecker, TruthfulChecker, arithmetic_answer, load_gold, load_prompts,
    numbers_in)

# ---- the best-of-n estimator ---------------------------------------------------------------


def kl_bon(n) -> np.ndarray | float:
    """Analytic KL(best-of-n ‖ policy) = log n - (n-1)/n (Stiennon et al. 2020)."""
    n = np.asarray(n, dtype=np.float64)
    return np.log(n) - (n - 1) / n


def n_for_kl(kl: float) -> float:
    """The (real) n whose best-of-n KL equals `kl`; inf beyond n = 1e12."""
    if kl <= 0:
        return 1.0
    hi = 1e12
    if kl >= kl_bon(hi):
        return math.inf
    return float(brentq(lambda n: kl_bon(n) - kl, 1.0, hi))


def powers_of_two(n_max: int) -> list[int]:
    """[1, 2, 4, ...] up to n_max."""
    return [2 ** k for k in range(int(math.log2(n_max)) + 1)] if n_max >= 1 else []


def bon_weights(N: int, n: int) -> np.ndarray:
    """(N,) probability that the i-th smallest of N (i = 1..N) is the max of a random n-subset.

    w_i = C(i-1, n-1) / C(N, n): the subset must hold item i and n-1 of the i-1 items below it.
    """
    if not 1 <= n <= N:
        raise ValueError(f"need 1 <= n <= N, got n={n}, N={N}")
    total = math.comb(N, n)
    return np.array([math.comb(i - 1, n - 1) / total for i in range(1, N + 1)])


def tie_averaged(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """`values` (..., N) sorted by `keys` (N,) ascending, each replaced by the mean of its tie group.

    Ties in the selector are broken at random, so every member of a tied group is equally
    likely to hold any of the group's ranks: the expectation sees the group mean.
    """
    order = np.argsort(keys, kind="stable")
    k, v = keys[order], values[..., order]
    group = np.concatenate([[0], np.cumsum(k[1:] != k[:-1])])  # (N,) tie group id
    counts = np.bincount(group)
    sums = np.stack([np.bincount(group, weights=row) for row in v.reshape(-1, len(k))])
    return (sums / counts)[:, group].reshape(v.shape)


def bon_expectation(selector: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """E[value of the max-`selector` item of a random n-subset of the N samples], without replacement.

    selector: (N,); values: (N,) or (V, N) -> () or (V,). Unbiased for the best-of-n
    expectation under the policy, since the N samples are i.i.d. draws from it.
    """
    selector = np.asarray(selector, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    return tie_averaged(selector, values) @ bon_weights(len(selector), n)


# ---- the fit ---------------------------------------------------------------------------


@dataclass
class GoldFit:
    """gold - gold(start) against d = √KL, least squares through the origin, in one of Gao et al.'s
    forms (`form`): "bon" d(α - βd), or "rl" d(α - β log d)."""

    alpha: float
    beta: float
    r2: float
    d_star: float | None  # the fitted peak (bon: α/2β; rl: exp(α/β - 1)) when there is one, else None
    kl_star: float | None
    n_star: float | None  # best-of-n size at the peak (real; may lie beyond the N sampled); None for rl
    form: str = "bon"


def _lstsq_fit(X: np.ndarray, gain: np.ndarray) -> tuple[float, float, float]:
    """(α, β, R²) of gain ≈ X @ [α, β], R² against the mean of `gain`."""
    (alpha, beta), *_ = np.linalg.lstsq(X, gain, rcond=None)
    ss_res = float(((gain - X @ [alpha, beta]) ** 2).sum())
    ss_tot = float(((gain - gain.mean()) ** 2).sum())
    return float(alpha), float(beta), 1 - ss_res / ss_tot if ss_tot > 0 else math.nan


def fit_gold(d: Sequence[float], gain: Sequence[float]) -> GoldFit:
    """Best-of-n form: gain = α d - β d²; R² against the mean of `gain`. Needs 3 or more points."""
    d, gain = np.asarray(d, dtype=np.float64), np.asarray(gain, dtype=np.float64)
    if len(d) < 3:
        return GoldFit(math.nan, math.nan, math.nan, None, None, None)
    alpha, beta, r2 = _lstsq_fit(np.stack([d, -d ** 2], axis=1), gain)
    if beta > 0 and alpha > 0:
        d_star = alpha / (2 * beta)
        return GoldFit(alpha, beta, r2, d_star, d_star ** 2, n_for_kl(d_star ** 2))
    return GoldFit(alpha, beta, r2, None, None, None)


def fit_gold_rl(d: Sequence[float], gain: Sequence[float]) -> GoldFit:
    """RL form: gain = d(α - β log d) (d log d -> 0 at d = 0). The peak, where α - β log d - β = 0,
    is d* = exp(α/β - 1) when β > 0; with α <= 0 as well it lies below d = e^-1 and gains at most
    β·d*, so it is reported only when α > 0 (else gold falls from the start). Needs 3 or more points."""
    d, gain = np.asarray(d, dtype=np.float64), np.asarray(gain, dtype=np.float64)
    if len(d) < 3:
        return GoldFit(math.nan, math.nan, math.nan, None, None, None, "rl")
    d_log_d = np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0)
    alpha, beta, r2 = _lstsq_fit(np.stack([d, -d_log_d], axis=1), gain)
    if beta > 0 and alpha > 0:
        d_star = math.exp(alpha / beta - 1)
        return GoldFit(alpha, beta, r2, d_star, d_star ** 2, None, "rl")
    return GoldFit(alpha, beta, r2, None, None, None, "rl")


# ---- selectors and curves ----------------------------------------------------------------


@dataclass
class SelectorParams:
    lam: float = 1.0  # conservative: mean - lam·std
    beta_kl: float = 0.5  # kl_penalised: proxy + beta_kl·log π(y|x)/|y|
    gamma: float = 1.0  # honesty_penalised: proxy - gamma·endorsement


# Each selector maps scored samples (one row per sample) to the score best-of-n maximises,
# or None when the samples lack what it needs.
SELECTORS: dict[str, Callable[[pd.DataFrame, SelectorParams], np.ndarray | None]] = {
    "proxy": lambda df, p: df["proxy"].to_numpy(),
    "conservative": lambda df, p: (None if "ensemble_mean" not in df else
                                   (df["ensemble_mean"] - p.lam * df["ensemble_std"]).to_numpy()),
    "kl_penalised": lambda df, p: (df["proxy"] + p.beta_kl * df["logprob"] / df["n_tokens"].clip(lower=1)).to_numpy(),
    "honesty_penalised": lambda df, p: (None if "false_claim" not in df or not df["false_claim"].any() else
                                        (df["proxy"] - p.gamma * df["endorsement"]).to_numpy()),
}
SKIP_REASONS = {"conservative": "needs an ensemble: pass --ensemble RM RM ... or an ensemble proxy",
                "honesty_penalised": "no prompt claims a false value (use --prompts claims, mixed or arithmetic)"}


def as_matrix(samples: pd.DataFrame, values: np.ndarray | str) -> np.ndarray:
    """(P, N) matrix of a per-sample column, rows = prompts, in sample order."""
    values = samples[values].to_numpy() if isinstance(values, str) else np.asarray(values)
    order = np.lexsort((samples["sample_index"].to_numpy(), samples["prompt_index"].to_numpy()))
    n_prompts = samples["prompt_index"].nunique()
    return values[order].astype(np.float64).reshape(n_prompts, -1)


def bon_curve(selector: np.ndarray, values: dict[str, np.ndarray], ns: Sequence[int]) -> pd.DataFrame:
    """Best-of-n expectations averaged over prompts.

    selector: (P, N); values: name -> (P, N). One row per n: n, kl, sqrt_kl, and for each
    value its mean over prompts and `<name>_sem` (standard error across prompts).
    """
    names = list(values)
    stacked = np.stack([values[k] for k in names], axis=1)  # (P, V, N)
    rows = []
    for n in ns:
        per_prompt = np.stack([bon_expectation(s, v, n) for s, v in zip(selector, stacked)])  # (P, V)
        row = {"n": n, "kl": float(kl_bon(n)), "sqrt_kl": float(np.sqrt(kl_bon(n)))}
        for j, name in enumerate(names):
            row[name] = float(per_prompt[:, j].mean())
            spread = per_prompt[:, j].std(ddof=1) if len(per_prompt) > 1 else 0.0
            row[f"{name}_sem"] = float(spread / np.sqrt(len(per_prompt)))
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class GoodhartResult:
    """Curves (one row per selector and n), gold fits and sweet spots per selector."""

    curves: pd.DataFrame  # selector, n, kl, sqrt_kl, proxy, gold, selected, *_sem, gold_gain
    fits: dict[str, GoldFit]
    n_star_empirical: dict[str, int]  # n with the highest measured gold, per selector
    skipped: dict[str, str]  # selector -> why it was not run
    samples: pd.DataFrame = field(repr=False)  # one row per sample, with scores

    def base_rate(self) -> dict[str, float]:
        """Mean gold of the policy's samples (n = 1): over all prompts, and apart for prompts with and
        without a false claim when both occur."""
        s = self.samples
        out = {"all": float(s["gold"].mean())}
        if "false_claim" in s and s["false_claim"].nunique() == 2:
            out |= {"false_claims": float(s.loc[s["false_claim"], "gold"].mean()),
                    "other_prompts": float(s.loc[~s["false_claim"], "gold"].mean())}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"base_rate": self.base_rate(), "fits": {k: asdict(v) for k, v in self.fits.items()},
                "n_star_empirical": self.n_star_empirical,
                "skipped": self.skipped, "curves": self.curves,
                "n_prompts": int(self.samples["prompt_index"].nunique()),
                "n_samples": int(self.samples.groupby("prompt_index").size().iloc[0])}


def analyze(samples: pd.DataFrame, ns: Sequence[int] | None = None, params: SelectorParams | None = None,
            selectors: Sequence[str] | None = None) -> GoodhartResult:
    """Best-of-n curves, fits and sweet spots for every selector, from scored samples.

    `samples` needs prompt_index, sample_index, proxy, gold, logprob, n_tokens and, for the
    conservative selector, ensemble_mean and ensemble_std. Every prompt needs the same N.
    """
    params = params or SelectorParams()
    unknown = [s for s in selectors or [] if s not in SELECTORS]
    if unknown:
        raise ValueError(f"unknown selectors {unknown}; choose from {sorted(SELECTORS)}")
    sizes = samples.groupby("prompt_index").size()
    if sizes.nunique() != 1:
        raise ValueError(f"every prompt needs the same number of samples, got {sorted(set(sizes))}")
    ns = list(ns or powers_of_two(int(sizes.iloc[0])))
    values = {"proxy": as_matrix(samples, "proxy"), "gold": as_matrix(samples, "gold")}
    curves, fits, n_star, skipped = [], {}, {}, {}
    for name in selectors or SELECTORS:
        score = SELECTORS[name](samples, params)
        if score is None:
            skipped[name] = SKIP_REASONS[name]
            continue
        selector = as_matrix(samples, score)
        curve = bon_curve(selector, {**values, "selected": selector}, ns)
        curve.insert(0, "selector", name)
        curve["gold_gain"] = curve["gold"] - curve.loc[curve["n"] == 1, "gold"].iloc[0] if 1 in ns else math.nan
        fits[name] = fit_gold(curve["sqrt_kl"], curve["gold_gain"])
        n_star[name] = int(curve.loc[curve["gold"].idxmax(), "n"])
        curves.append(curve)
    return GoodhartResult(pd.concat(curves, ignore_index=True), fits, n_star, skipped, samples)


# ---- samples --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplingConfig:
    """What determines the samples (and so the cache key); batch size and precision do not."""

    n: int = 64
    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0


def cache_path(cache_dir: str | Path, policy: str, prompts: Sequence[str], sampling: SamplingConfig) -> Path:
    """runs/goodhart/<sha256[:16] of policy, prompts and sampling settings>.parquet"""
    key = json.dumps({"policy": policy, "prompts": list(prompts), **asdict(sampling)}, sort_keys=True)
    return Path(cache_dir) / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.parquet"


def samples_frame(prompts: Sequence[str], samples: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """One row per sample: prompt_index, sample_index, prompt, response, logprob, n_tokens, finished."""
    rows = [{"prompt_index": i, "sample_index": k, "prompt": p, "response": s.text, "logprob": s.logprob,
             "n_tokens": s.n_tokens, "finished": s.finished}
            for i, (p, per_prompt) in enumerate(zip(prompts, samples)) for k, s in enumerate(per_prompt)]
    return pd.DataFrame(rows)


def cached_samples(prompts: Sequence[str], sampling: SamplingConfig, policy: str | None = None,
                   cache_dir: str | Path = "runs/goodhart", batch_size: int = 128,
                   generate_fn: Callable | None = None, progress=None,
                   threads: int | None = None) -> tuple[pd.DataFrame, Path, bool]:
    """(samples, cache file, hit?): read the cache, or sample with `generate_fn` and write it.

    `generate_fn(prompts, n=..., ...) -> list[list[Sample]]` defaults to the policy's
    `analysis.policy.generate` (the policy is loaded only on a miss).
    """
    from analysis.policy import generate, load_policy, policy_name

    path = cache_path(cache_dir, policy_name(policy), prompts, sampling)
    if path.is_file():
        return pd.read_parquet(path), path, True
    if generate_fn is None:
        generate_fn, extra = generate, {"policy": load_policy(policy), "threads": threads}
    else:
        extra = {}
    samples = generate_fn(list(prompts), batch_size=batch_size, progress=progress, **asdict(sampling), **extra)
    frame = samples_frame(prompts, samples)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path.with_suffix(".tmp"), index=False)
    path.with_suffix(".tmp").replace(path)  # atomic: a killed run leaves no half-written cache
    path.with_suffix(".json").write_text(json.dumps({"policy": policy_name(policy), **asdict(sampling),
                                                     "prompts": list(prompts)}, indent=2, ensure_ascii=False))
    return frame, path, False


def score_samples(samples: pd.DataFrame, proxy, gold, ensemble=None) -> pd.DataFrame:
    """The samples with proxy, proxy_std, gold, false_claim (the prompt claims a wrong value),
    endorsement (of that claim; analysis.gold) and, with an ensemble (or an ensemble proxy),
    ensemble_mean / ensemble_std columns. Scorers: any object with .score(prompts, responses)."""
    from analysis.gold import endorsement, false_claim

    prompts, responses = samples["prompt"].tolist(), samples["response"].tolist()
    out = samples.copy()
    claims = {p: false_claim(p) is not None for p in set(prompts)}
    out["false_claim"] = [claims[p] for p in prompts]
    out["endorsement"] = [endorsement(p, r) for p, r in zip(prompts, responses)]
    p = proxy.score(prompts, responses)
    out["proxy"], out["proxy_std"] = p.mean, p.std
    out["gold"] = gold.score(prompts, responses).mean
    ens = ensemble.score(prompts, responses) if ensemble is not None else (
        p if np.asarray(p.members).shape[0] > 1 else None)
    if ens is not None:
        out["ensemble_mean"], out["ensemble_std"] = ens.mean, ens.std
    return out


# ---- plotting --------------------------------------------------------------------------------

COLORS = {"proxy": "tab:blue", "conservative": "tab:green", "kl_penalised": "tab:purple",
          "honesty_penalised": "tab:orange"}


def plot_goodhart(result: GoodhartResult, title: str = "Best-of-n against the policy"):
    """Figure: proxy (left) and gold (right) of the selected response against √KL, per selector,
    with the fitted gold curve and its sweet spot; the top axis marks n."""
    from matplotlib.figure import Figure  # no pyplot: a server must not keep every figure

    fig = Figure(figsize=(12, 4.5))
    ax_p, ax_g = fig.subplots(1, 2, sharex=True)
    for name, curve in result.curves.groupby("selector", sort=False):
        color = COLORS.get(name)
        ax_p.errorbar(curve["sqrt_kl"], curve["proxy"], yerr=curve["proxy_sem"], marker="o", ms=4, capsize=2,
                      color=color, label=name)
        ax_g.errorbar(curve["sqrt_kl"], curve["gold"], yerr=curve["gold_sem"], marker="o", ms=4, capsize=2,
                      color=color, label=f"{name} (measured)")
        fit = result.fits[name]
        if math.isfinite(fit.alpha):
            d = np.linspace(0, curve["sqrt_kl"].max() * 1.05, 100)
            base = curve["gold"].iloc[0] - curve["gold_gain"].iloc[0]
            ax_g.plot(d, base + d * (fit.alpha - fit.beta * d), ls="--", color=color,
                      label=f"{name} fit α={fit.alpha:.3g} β={fit.beta:.3g} R²={fit.r2:.2f}")
            if fit.d_star is not None and fit.d_star <= d[-1]:
                ax_g.axvline(fit.d_star, ls=":", color=color)
    for ax, label in ((ax_p, "proxy score of the selected response"), (ax_g, "gold score of the selected response")):
        ax.set_xlabel("√KL(best-of-n ‖ policy)  [nats^½]")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        first = result.curves[result.curves["selector"] == result.curves["selector"].iloc[0]]
        top = ax.twiny()
        top.set_xlim(ax.get_xlim())
        top.set_xticks(first["sqrt_kl"].tolist(), [str(n) for n in first["n"]])
        top.set_xlabel("n")
    ax_p.legend(fontsize=8)
    ax_g.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# ---- CLI -------------------------------------------------------------------------------------


@dataclass
class GoodhartConfig:
    """Best-of-n Goodhart curves: proxy vs gold reward against √KL, for three selectors."""

    proxy: list[str] = field(metadata={"help": "proxy RM checkpoint dir(s) or Hub id(s); several = ensemble"})
    gold: list[str] = field(default_factory=lambda: ["truthful"], metadata={"help": f"gold RM dir(s)/id(s), or a checker: {', '.join(GOLD_CHECKERS)} (analysis.gold)"})
    ensemble: list[str] | None = field(default=None, metadata={"help": "RMs whose mean - λ·std is the conservative selector"})
    prompts: str = field(default="mixed", metadata={"help": f"prompt source: {', '.join(PROMPT_SOURCES)} (analysis.gold) or a file with a prompt column"})
    n_prompts: int = field(default=16, metadata={"help": "number of prompts (seeded subset)"})
    n: int = field(default=64, metadata={"help": "samples per prompt, N; curves use n = 1, 2, 4, ... <= N"})
    max_new_tokens: int = field(default=64, metadata={"help": "new tokens per sample at most"})
    temperature: float = field(default=1.0, metadata={"help": "policy sampling temperature"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling threshold (1 = off)"})
    seed: int = field(default=0, metadata={"help": "seed for prompts and sampling"})
    policy: str | None = field(default=None, metadata={"help": "policy LM folder, .gguf path or Hub id (default: SmolLM2-135M-Instruct GGUF)"})
    batch_size: int = field(default=128, metadata={"help": "sample rows per decode batch"})
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads while sampling and scoring (1 is far faster on a crowded machine)"})
    lam: float = field(default=1.0, metadata={"help": "λ of the conservative selector mean - λ·std"})
    beta_kl: float = field(default=0.5, metadata={"help": "β of the KL-penalised selector proxy + β·log π(y|x)/|y|"})
    gamma: float = field(default=1.0, metadata={"help": "γ of the honesty-penalised selector proxy - γ·endorsement of a false claim"})
    cache_dir: str = field(default="runs/goodhart", metadata={"help": "folder of the sample caches"})
    out: str | None = field(default="runs/reports/goodhart.json", metadata={"help": "JSON report path"})
    plot: str | None = field(default=None, metadata={"help": "PNG path (default: the report path with .png)"})


def run(config: GoodhartConfig, proxy=None, gold=None, ensemble=None,
        generate_fn: Callable | None = None, progress=None) -> tuple[GoodhartResult, dict]:
    """Sample (or read the cache), score, analyze, plot; (result, JSON report). Scorers may be passed in."""
    from analysis.cli import load_scorer_from, write_plot
    from rm.device import torch_threads

    prompts = load_prompts(config.prompts, config.n_prompts, config.seed)
    sampling = SamplingConfig(config.n, config.max_new_tokens, config.temperature, config.top_p, config.seed)
    samples, path, hit = cached_samples(prompts, sampling, config.policy, config.cache_dir, config.batch_size,
                                        generate_fn, progress, config.threads)
    proxy = proxy or load_scorer_from(config.proxy)
    gold = gold or load_gold(config.gold)
    if ensemble is None and config.ensemble:
        ensemble = load_scorer_from(config.ensemble)
    with torch_threads(config.threads):
        scored = score_samples(samples, proxy, gold, ensemble)
    result = analyze(scored, params=SelectorParams(config.lam, config.beta_kl, config.gamma))
    report = {"config": config, "samples_cache": str(path), "cache_hit": hit, **result.to_dict()}
    if config.plot or config.out:
        report["plot"] = write_plot(plot_goodhart(result), config.out, config.plot)
    return result, report


def summary(result: GoodhartResult) -> str:
    """Base rate, then one line per selector: fit and sweet spots."""
    lines = ["base rate (gold at n = 1): " + ", ".join(f"{k} {v:.3f}" for k, v in result.base_rate().items())]
    for name, fit in result.fits.items():
        n_fit = "none" if fit.n_star is None else f"{fit.n_star:.1f}"
        lines.append(f"{name}: α={fit.alpha:.3g} β={fit.beta:.3g} R²={fit.r2:.2f} n*(fit)={n_fit} "
                     f"n*(measured)={result.n_star_empirical[name]}")
    return "\n".join(lines + [f"skipped {k}: {v}" for k, v in result.skipped.items()])


def main(argv: list[str] | None = None) -> None:
    from analysis.cli import config_from_args, emit, parser_for

    args = parser_for(GoodhartConfig).parse_args(argv)
    config = config_from_args(GoodhartConfig, args)
    result, report = run(config)
    emit(report, config.out, args.json, summary(result))


if __name__ == "__main__":
    from labeling.cli import run_cli

    raise SystemExit(run_cli(main))
