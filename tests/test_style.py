"""analysis.style: style differences exactly, planted coefficients recovered, ties, an RM's own choices, the CLI."""
import json

import numpy as np
import pandas as pd
import pytest

from analysis import style as S
from analysis_support import WordCountScorer


def test_differences_are_normalised_for_counts_and_halved_for_agreement():
    np.testing.assert_allclose(S.normalised_difference(np.array([3.0, 0.0, 1.0]), np.array([1.0, 0.0, 3.0])),
                               [0.5, 0.0, -0.5])
    pairs = pd.DataFrame({"prompt": ["Is 2 + 2 = 5?"] * 2,
                          "response_a": ["Yes, that's right. It might be 5.", "- **No**: 4"],
                          "response_b": ["No, it is 4.", "It is 4, not 5."]})
    diffs = S.style_differences(pairs)
    assert list(diffs.columns) == ["length", "formatting", "agreement", "hedging"]
    # a: 7 words, b: 4 words; hedging 1 vs 0; agreement +1 (yes, right) vs -1 ("no,")
    np.testing.assert_allclose(diffs.iloc[0], [(7 - 4) / 11, 0.0, 1.0, 1.0])
    # a: a list item and a bold span (2) vs none; "no" is no interjection inside bold, "not 5" contradicts b
    assert diffs.loc[1, "formatting"] == 1.0 and diffs.loc[1, "hedging"] == 0.0
    with pytest.raises(ValueError, match="unknown styles"):
        S.style_differences(pairs, ["verbosity"])


def test_oriented_draws_each_pairs_order_and_keeps_ties_at_a_half():
    pairs = pd.DataFrame({"prompt": list("pqrstu"), "chosen": list("ABCDEF"), "rejected": list("abcdef"),
                          "tie": [False, False, False, False, False, True]})
    out = S.oriented(pairs, seed=1)
    for r in out.itertuples():
        if r.prompt == "u":
            assert r.y == 0.5
        else:
            assert (r.y == 1.0) == r.response_a.isupper() and (r.y == 0.0) == r.response_b.isupper()
    assert 0 < out["y"].iloc[:5].sum() < 5  # both orders occur
    assert out.equals(S.oriented(pairs, seed=1))


def test_fit_recovers_planted_coefficients():
    rng = np.random.default_rng(0)
    n, planted = 6000, {"intercept": 0.3, "length": 1.2, "formatting": 0.0, "agreement": 0.8, "hedging": -0.6}
    X = pd.DataFrame(rng.normal(size=(n, 4)) * [1.0, 0.5, 2.0, 1.5], columns=list(planted)[1:])
    logit = planted["intercept"] + X.to_numpy() @ np.array(list(planted.values())[1:])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    fit = S.fit_style(X, y, standardise=False).coefficients.set_index("term")
    for term, value in planted.items():
        assert abs(fit.loc[term, "coef"] - value) < 3.5 * fit.loc[term, "se"], term
        assert fit.loc[term, "se"] < 0.08
    assert fit.loc["formatting", "ci_low"] < 0 < fit.loc["formatting", "ci_high"]
    assert fit.loc["length", "p_value"] < 1e-10 and fit.loc["length", "odds_ratio"] == pytest.approx(
        np.exp(fit.loc["length", "coef"]))
    standardised = S.fit_style(X, y).coefficients.set_index("term")  # per SD: coef × the column's SD
    assert standardised.loc["agreement", "coef"] == pytest.approx(fit.loc["agreement", "coef"] * X["agreement"].std(ddof=0),
                                                                   rel=1e-6)


def test_all_ties_give_zero_coefficients_and_constant_styles_are_dropped():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"length": rng.normal(size=200), "formatting": np.zeros(200)})
    fit = S.fit_style(X, np.full(200, 0.5))
    np.testing.assert_allclose(fit.coefficients["coef"], 0.0, atol=1e-8)
    assert fit.dropped == ["formatting"] and fit.coefficients["term"].tolist() == ["intercept", "length"]
    with pytest.raises(ValueError, match="at least 3 pairs"):
        S.fit_style(X.iloc[:2], [1, 0])


def length_biased_pairs(n=240, seed=0):
    """The longer response is chosen in 85% of the pairs; agreement and hedging are random."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        short, long = rng.integers(2, 6), rng.integers(8, 16)
        texts = [" ".join(["yes"] if rng.random() < 0.5 else ["no,"]) + " word" * k for k in (short, long)]
        texts = [t + (" maybe" if rng.random() < 0.3 else "") for t in texts]
        chosen, rejected = (texts[1], texts[0]) if rng.random() < 0.85 else (texts[0], texts[1])
        rows.append({"prompt": f"Is {i} right?", "chosen": chosen, "rejected": rejected, "tie": False})
    return pd.DataFrame(rows)


def test_report_finds_the_labels_length_bias_and_the_rm_one():
    report = S.style_report(length_biased_pairs(), scorer=WordCountScorer())
    labels = report.fits["labels"].coefficients.set_index("term")
    rm = report.fits["rm"].coefficients.set_index("term")
    assert labels.loc["length", "ci_low"] > 0.5  # the annotators reward length
    assert labels.loc["agreement", "ci_low"] < 0 < labels.loc["agreement", "ci_high"]  # not agreement
    assert rm.loc["length", "coef"] > labels.loc["length", "coef"]  # the word-count RM rewards it even more
    table = report.table()
    assert {"labels_coef", "rm_coef", "labels_ci_low"} <= set(table.columns) and "length" in set(table["term"])
    assert len(S.plot_style(report).axes) == 1


def test_cli_on_a_preference_file(tmp_path, capsys):
    path = tmp_path / "prefs.jsonl"
    length_biased_pairs(60).to_json(path, orient="records", lines=True)
    S.main(["--source", "file", "--data", str(path), "--out", str(tmp_path / "style.json"), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["n_pairs"] == 60 and report["config"]["source"] == "file"
    assert [r["term"] for r in report["fits"]["labels"]["coefficients"]][0] == "intercept"
    assert (tmp_path / "style.png").is_file()
    with pytest.raises(ValueError, match="needs --data"):
        S.main(["--source", "file", "--out", ""])
