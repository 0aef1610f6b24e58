"""Style-controlled Bradley-Terry: which styles do the preferences reward, once the others are held fixed?

As LMArena's style control does it (Li et al. 2024, "Does style matter?"), each preference
between responses A and B is regressed on the differences of their style features:

    logit P(A preferred) = β0 + Σ_k γ_k · z_k,   z_k = standardised style difference of A over B

with a logistic regression (statsmodels GLM, binomial; a tie counts as half a win for each side).
The features (`STYLES`) are length, markdown formatting and hedging (counts: normalised
difference (a - b)/(a + b), as LMArena does) and agreement with the user's claim (signed, in
[-1, 1]: half the difference). Each z_k is divided by its standard deviation over the pairs, so
γ_k is the log-odds change per SD of that difference; β0 is the intercept, which is 0 in
expectation here because every pair's A/B order is drawn at random (seeded).

Fit on the annotators' labels, the coefficients say which styles the annotators reward; fit on a
reward model's choices between the same pairs (`--rm`), what the RM learned. Side by side they
tell "the annotators are sycophantic" from "the RM learned it".

    python -m analysis.style --source store --json                       # collected labels
    python -m analysis.style --source file --data prefs.jsonl --rm runs/rm/default
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd


def normalised_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a - b) / (a + b) for counts, 0 where both are 0."""
    total = a + b
    return np.divide(a - b, total, out=np.zeros_like(total, dtype=float), where=total != 0)


def half_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a - b) / 2 for signed scores in [-1, 1]."""
    return (a - b) / 2


@dataclass(frozen=True)
class Style:
    """A style: the `analysis.features` feature it reads and how A's and B's values are compared."""

    feature: str
    difference: Callable[[np.ndarray, np.ndarray], np.ndarray]
    doc: str


STYLES: dict[str, Style] = {
    "length": Style("length_words", normalised_difference, "words, (a - b)/(a + b)"),
    "formatting": Style("formatting", normalised_difference, "markdown lists + bold + headers + code, (a - b)/(a + b)"),
    "agreement": Style("agreement", half_difference, "agreement with the user's claim in [-1, 1], (a - b)/2"),
    "hedging": Style("hedging", normalised_difference, "hedge phrases, (a - b)/(a + b)"),
}


# ---- data ----------------------------------------------------------------------------------------


def oriented(pairs: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """prompt, response_a, response_b, y (1: A preferred, 0: B, 0.5: tie) from prompt/chosen/rejected/tie
    rows, each pair's order drawn at random (seeded) so that "A" carries no position."""
    flip = np.random.default_rng(seed).random(len(pairs)) < 0.5
    chosen, rejected = pairs["chosen"].to_numpy(), pairs["rejected"].to_numpy()
    tie = pairs["tie"].to_numpy(bool) if "tie" in pairs else np.zeros(len(pairs), bool)
    return pd.DataFrame({"prompt": pairs["prompt"].to_numpy(), "response_a": np.where(flip, rejected, chosen),
                         "response_b": np.where(flip, chosen, rejected),
                         "y": np.where(tie, 0.5, np.where(flip, 0.0, 1.0))})


def style_differences(oriented_pairs: pd.DataFrame, styles: Sequence[str] | None = None) -> pd.DataFrame:
    """(N, K) raw style differences of A over B, one column per style (see `STYLES`)."""
    from analysis.features import feature_table

    names = list(styles or STYLES)
    unknown = [s for s in names if s not in STYLES]
    if unknown:
        raise ValueError(f"unknown styles {unknown}; choose from {sorted(STYLES)}")
    feats = sorted({STYLES[s].feature for s in names})
    prompts = oriented_pairs["prompt"].tolist()
    a = feature_table(prompts, oriented_pairs["response_a"].tolist(), feats)
    b = feature_table(prompts, oriented_pairs["response_b"].tolist(), feats)
    return pd.DataFrame({s: STYLES[s].difference(a[STYLES[s].feature].to_numpy(), b[STYLES[s].feature].to_numpy())
                         for s in names})


# ---- the fit -------------------------------------------------------------------------------------


@dataclass
class StyleFit:
    """Coefficients (one row per term: intercept, then each style) with standard errors and CIs."""

    coefficients: pd.DataFrame  # term, coef, se, ci_low, ci_high, p_value, odds_ratio, sd (of the raw difference)
    n: int
    confidence: float
    dropped: list[str] = field(default_factory=list)  # styles without variation in this data


def fit_style(differences: pd.DataFrame, y: Sequence[float], confidence: float = 0.95,
              standardise: bool = True) -> StyleFit:
    """Logistic regression of y (1, 0 or 0.5 for a tie) on the style differences, with an intercept.

    Soft labels are split into two weighted rows (y=1 with weight y, y=0 with weight 1 - y), so the
    likelihood is the BT likelihood with ties as half wins. Styles with no variation are dropped
    (reported in `dropped`). Wald CIs from the inverse Fisher information.
    """
    import statsmodels.api as sm

    y = np.asarray(y, dtype=float)
    if len(y) != len(differences):
        raise ValueError(f"{len(y)} labels for {len(differences)} pairs")
    if len(y) < 3:
        raise ValueError(f"need at least 3 pairs to fit style coefficients, got {len(y)}")
    sd = differences.std(ddof=0)
    dropped = [c for c in differences.columns if not sd[c] > 0]
    kept = [c for c in differences.columns if c not in dropped]
    X = differences[kept] / (sd[kept] if standardise else 1.0)
    X = sm.add_constant(X.to_numpy(float), has_constant="add")
    rows = np.concatenate([X, X])
    target = np.concatenate([np.ones(len(y)), np.zeros(len(y))])
    weight = np.concatenate([y, 1 - y])
    keep = weight > 0
    result = sm.GLM(target[keep], rows[keep], family=sm.families.Binomial(), freq_weights=weight[keep]).fit()
    lo, hi = result.conf_int(alpha=1 - confidence).T
    terms = ["intercept", *kept]
    table = pd.DataFrame({"term": terms, "coef": result.params, "se": result.bse, "ci_low": lo, "ci_high": hi,
                          "p_value": result.pvalues, "odds_ratio": np.exp(result.params),
                          "sd": [np.nan, *(sd[c] for c in kept)]})
    return StyleFit(table, len(y), confidence, dropped)


def rm_choices(scorer, oriented_pairs: pd.DataFrame) -> np.ndarray:
    """(N,) the reward model's own preference: 1 where it scores A higher, 0 where B, 0.5 on equal scores."""
    prompts = oriented_pairs["prompt"].tolist()
    n = len(prompts)
    rewards = np.asarray(scorer.score(prompts + prompts, oriented_pairs["response_a"].tolist()
                                      + oriented_pairs["response_b"].tolist()).mean, float)
    return np.sign(rewards[:n] - rewards[n:]) / 2 + 0.5


@dataclass
class StyleReport:
    """Style fits per judge ("labels", and "rm" when a reward model was given), and a side-by-side table."""

    fits: dict[str, StyleFit]
    n_pairs: int

    def table(self) -> pd.DataFrame:
        """One row per term; for each judge its coef and CI."""
        out = None
        for judge, fit in self.fits.items():
            part = fit.coefficients.set_index("term")[["coef", "ci_low", "ci_high", "p_value"]].add_prefix(f"{judge}_")
            out = part if out is None else out.join(part, how="outer")
        return out.reset_index()

    def to_dict(self) -> dict[str, Any]:
        return {"n_pairs": self.n_pairs, "styles": {k: v.doc for k, v in STYLES.items()},
                "fits": {j: {"coefficients": f.coefficients, "dropped": f.dropped, "confidence": f.confidence}
                         for j, f in self.fits.items()}}


def style_report(pairs: pd.DataFrame, scorer=None, styles: Sequence[str] | None = None, seed: int = 0,
                 confidence: float = 0.95) -> StyleReport:
    """Style coefficients of the labels in `pairs` (prompt, chosen, rejected[, tie]) and, with a
    scorer, of that reward model's choices between the same pairs. This is what the dashboard calls."""
    if pairs.empty:
        raise ValueError("no pairs to fit: collect some labels or pass a preference file")
    data = oriented(pairs, seed)
    diffs = style_differences(data, styles)
    fits = {"labels": fit_style(diffs, data["y"], confidence)}
    if scorer is not None:
        fits["rm"] = fit_style(diffs, rm_choices(scorer, data), confidence)
    return StyleReport(fits, len(data))


def plot_style(report: StyleReport, title: str = "Style-controlled Bradley-Terry"):
    """Figure: each style's coefficient (log-odds per SD of the difference) with its CI, per judge."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.8))
    ax = fig.add_subplot()
    judges = list(report.fits)
    for j, (judge, color) in enumerate(zip(judges, ("tab:blue", "tab:red", "tab:green"))):
        t = report.fits[judge].coefficients
        t = t[t["term"] != "intercept"].reset_index(drop=True)
        y = np.arange(len(t)) + (j - (len(judges) - 1) / 2) * 0.2
        ax.errorbar(t["coef"], y, xerr=[t["coef"] - t["ci_low"], t["ci_high"] - t["coef"]], fmt="o", capsize=3,
                    color=color, label=judge)
        ax.set_yticks(np.arange(len(t)), t["term"])
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(f"log-odds of preferring A per SD of the style difference ({report.n_pairs} pairs; "
                  f"{next(iter(report.fits.values())).confidence:.0%} CI)")
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


# ---- CLI -----------------------------------------------------------------------------------------


def load_pairs(source: str, data: str | None = None, db: str | None = None) -> pd.DataFrame:
    """prompt/chosen/rejected/margin/tie rows from the label store's collected labels or a preference file."""
    from analysis import sources

    if source == "store":
        from labeling.store import Store

        with Store(db) as store:
            return sources.label_pairs(store)
    if source == "file":
        if not data:
            raise ValueError("--source file needs --data PATH (a preference JSONL/CSV/Parquet file or export folder)")
        return sources.file_pairs(None, data)
    raise ValueError(f"--source must be 'store' or 'file', got {source!r}")


@dataclass
class StyleConfig:
    """Style-controlled Bradley-Terry on collected labels (and, with --rm, on a reward model's choices)."""

    source: str = field(default="store", metadata={"help": "store (the label store's collected labels) or file", "choices": ["store", "file"]})
    data: str | None = field(default=None, metadata={"help": "preference file or export folder (with --source file)"})
    db: str | None = field(default=None, metadata={"help": "label store URL or SQLite path (default: the app's)"})
    rm: list[str] | None = field(default=None, metadata={"help": "reward model(s) whose choices between the same pairs get a fit too"})
    styles: list[str] = field(default_factory=lambda: list(STYLES), metadata={"help": f"styles: {', '.join(STYLES)}"})
    confidence: float = field(default=0.95, metadata={"help": "confidence level of the intervals"})
    seed: int = field(default=0, metadata={"help": "seed of each pair's random A/B order"})
    out: str | None = field(default="runs/reports/style.json", metadata={"help": "JSON report path (PNG beside it)"})


def summary(report: StyleReport) -> str:
    lines = [f"{report.n_pairs} pairs; log-odds of preferring A per SD of the style difference:"]
    for judge, fit in report.fits.items():
        for r in fit.coefficients.itertuples():
            lines.append(f"  {judge:<6} {r.term:<11} {r.coef:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]  p={r.p_value:.3g}")
        if fit.dropped:
            lines.append(f"  {judge:<6} dropped (no variation): {', '.join(fit.dropped)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> StyleReport:
    from analysis.cli import config_from_args, emit, load_scorer_from, parser_for, write_plot

    args = parser_for(StyleConfig).parse_args(argv)
    config = config_from_args(StyleConfig, args)
    pairs = load_pairs(config.source, config.data, config.db)
    report = style_report(pairs, load_scorer_from(config.rm) if config.rm else None, config.styles, config.seed,
                          config.confidence)
    out = {"config": config, **report.to_dict(), "table": report.table()}
    if config.out:
        out["plot"] = write_plot(plot_style(report), config.out)
    emit(out, config.out, args.json, summary(report))
    return report


if __name__ == "__main__":
    from labeling.cli import run_cli

    raise SystemExit(run_cli(main))
