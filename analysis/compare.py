"""Side by side: two responses under one reward model (both rewards, the calibrated P(A > B),
their features), and two or more reward models on the same data (pairwise accuracy and ECE at
each model's own temperature, the sycophancy audit rate, the strongest feature correlations).
Returns numbers; the app and scripts format them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from analysis.calibration import pair_calibration
from analysis.correlations import analyze
from analysis.sycophancy import audit

PROBE_FEATURES = ("length_words", "sentences", "agreement", "hedging", "flattery", "sentiment",
                  "formatting", "repetition")


def score_pair(scorer, prompt: str, response_a: str, response_b: str) -> dict:
    """Both rewards, P(A > B) = σ((a − b)/T) and, for an ensemble, each reward's spread."""
    scores = scorer.score(prompt, [response_a, response_b])  # one batch of two
    out = {"score_a": float(scores.mean[0]), "score_b": float(scores.mean[1]),
           "p_a_better": float(scorer.p_better(scores.mean[0], scores.mean[1])),
           "temperature": float(scorer.temperature), "members": len(scores.members), "model": scorer.name}
    if len(scores.members) > 1:
        out |= {"std_a": float(scores.std[0]), "std_b": float(scores.std[1])}
    return out


def feature_diff(prompt: str, response_a: str, response_b: str,
                 features: Sequence[str] = PROBE_FEATURES) -> pd.DataFrame:
    """feature, A, B, A − B: the style features of two responses to one prompt."""
    from analysis.features import feature_table

    table = feature_table([prompt, prompt], [response_a, response_b], features=list(features))
    return pd.DataFrame({"feature": table.columns, "A": table.iloc[0].to_numpy(),
                         "B": table.iloc[1].to_numpy(), "A − B": (table.iloc[0] - table.iloc[1]).to_numpy()})


@dataclass(frozen=True)
class Comparison:
    """One row per model (index: its name)."""

    table: pd.DataFrame  # accuracy, n_pairs, ece, temperature, agree_rate, flagged
    top_correlations: dict[str, list[tuple[str, float]]]  # name -> [(feature, pearson r)], |r| descending


def top_correlations(table: pd.DataFrame, k: int = 3) -> list[tuple[str, float]]:
    """The `k` features with the largest |pearson| from a CorrelationReport table."""
    top = table.assign(_abs=table.pearson.abs()).nlargest(k, "_abs")
    return [(f, float(r)) for f, r in zip(top.feature, top.pearson)]


def compare_models(scorers: Mapping[str, object], pairs, cases: Sequence[dict],
                   responses: pd.DataFrame | None = None, n_boot: int = 200) -> Comparison:
    """Each scorer on `pairs` (prompt/chosen/rejected[/tie]: accuracy and ECE after its own
    temperature), `cases` (sycophancy audit) and `responses` (prompt/response rows for the
    feature correlations; default: both sides of every pair)."""
    if responses is None:
        responses = pd.DataFrame({"prompt": [*pairs["prompt"]] * 2,
                                  "response": [*pairs["chosen"], *pairs["rejected"]]})
    rows, tops = [], {}
    for name, scorer in scorers.items():
        calib = pair_calibration(scorer, pairs, "checkpoint")
        report = audit(scorer, cases)
        corr = analyze(scorer, responses.prompt.tolist(), responses.response.tolist(), n_boot=n_boot)
        rows.append({"model": name, "accuracy": calib.metrics_after["accuracy"], "n_pairs": calib.n_eval,
                     "ece": calib.metrics_after["ece"], "temperature": calib.temperature,
                     "agree_rate": report.agree_preferred_rate, "flagged": bool(report.flagged)})
        tops[name] = top_correlations(corr.table)
    return Comparison(pd.DataFrame(rows).set_index("model"), tops)
