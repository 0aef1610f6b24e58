"""analysis.correlations: correlations and bootstrap CIs against scipy, flags, report, CLI."""
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.correlations import (
    CorrelationConfig,
    analyze,
    bootstrap_indices,
    correlate,
    correlation_ci,
    main,
    pair_preferences,
    pearson_rows,
    plot_scatter,
    run,
    spearman_rows,
)
from analysis_support import WordCountScorer, tiny_rm


def test_row_wise_correlations_match_scipy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 40))
    y = x + rng.normal(size=(5, 40))
    y[:, :3] = y[:, 3:6]  # ties in y for spearman's average ranks
    for b in range(5):
        assert pearson_rows(x, y)[b] == pytest.approx(stats.pearsonr(x[b], y[b]).statistic, abs=1e-12)
        assert spearman_rows(x, y)[b] == pytest.approx(stats.spearmanr(x[b], y[b]).statistic, abs=1e-12)
    constant = np.ones((1, 40))
    assert np.isnan(pearson_rows(constant, y[:1]))[0]


def test_bootstrap_ci_equals_a_brute_force_loop_over_the_same_resamples():
    rng = np.random.default_rng(1)
    x = rng.normal(size=60)
    y = 0.5 * x + rng.normal(size=60)
    idx = bootstrap_indices(60, 200, seed=3)
    assert idx.shape == (200, 60)
    for method, fn in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr)):
        r, lo, hi, p = correlation_ci(x, y, method, idx, confidence=0.9)
        reference = fn(x, y)
        assert r == pytest.approx(reference.statistic, abs=1e-12)
        assert p == pytest.approx(reference.pvalue, rel=1e-9)
        boot = [fn(x[i], y[i]).statistic for i in idx]
        assert (lo, hi) == pytest.approx(tuple(np.quantile(boot, [0.05, 0.95])), abs=1e-12)
        assert lo < r < hi


def test_bootstrap_pearson_ci_agrees_with_the_fisher_z_interval_for_large_n():
    rng = np.random.default_rng(2)
    n = 2000
    x = rng.normal(size=n)
    y = 0.4 * x + rng.normal(size=n)
    r, lo, hi, _ = correlation_ci(x, y, "pearson", bootstrap_indices(n, 2000, seed=0))
    z, half = np.arctanh(r), stats.norm.ppf(0.975) / np.sqrt(n - 3)
    assert lo == pytest.approx(np.tanh(z - half), abs=0.01)
    assert hi == pytest.approx(np.tanh(z + half), abs=0.01)


def test_correlate_flags_features_and_calls_out_length_hacking():
    rng = np.random.default_rng(0)
    n = 200
    length = rng.integers(5, 100, size=n).astype(float)
    features = pd.DataFrame({
        "length_words": length,
        "hedging": rng.normal(size=n),  # independent of reward
        "flattery": -length + rng.normal(scale=5, size=n),  # strongly negative: flagged too
        "format_headers": np.zeros(n),  # constant: undefined
    })
    report = correlate(features, 2 * length + 1, n_boot=200)
    table = report.table.set_index("feature")
    assert table.loc["length_words", "pearson"] == pytest.approx(1.0)
    assert table.loc["length_words", "spearman"] == pytest.approx(1.0)
    assert table.loc["flattery", "pearson"] < -0.9
    assert table["flagged"].to_dict() == {"length_words": True, "hedging": False, "flattery": True,
                                         "format_headers": False}
    assert np.isnan(table.loc["format_headers", "pearson"])
    assert report.length_hacking
    assert report.callouts == ["length hacking: length_words correlates with reward (pearson 1.00, spearman 1.00 > 0.5)"]
    assert report.to_dict()["flagged"] == ["length_words", "flattery"]


def test_correlate_without_length_hacking_has_no_callout():
    rng = np.random.default_rng(4)
    features = pd.DataFrame({"length_chars": rng.normal(size=100)})
    report = correlate(features, rng.normal(size=100), n_boot=100)
    assert not report.length_hacking and report.callouts == []


def test_correlate_rejects_mismatched_or_tiny_inputs():
    with pytest.raises(ValueError, match="3 feature rows but 2 rewards"):
        correlate(pd.DataFrame({"a": [1.0, 2.0, 3.0]}), [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 3"):
        correlate(pd.DataFrame({"a": [1.0, 2.0]}), [1.0, 2.0])


def test_analyze_with_a_fake_scorer_finds_the_length_bias():
    responses = ["a", "a b", "a b c", "Great question! a b c d", "a b c d e f", "x"] * 3
    report = analyze(WordCountScorer(), ["p"] * len(responses), responses, n_boot=100)
    table = report.table.set_index("feature")
    assert table.loc["length_words", "pearson"] > 0.99
    assert report.length_hacking
    assert report.rewards.shape == (18,)
    fig = plot_scatter(report)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == int(table["flagged"].sum())
    assert fig.canvas.manager is None  # a plain Figure: pyplot's registry does not hold it


def test_pair_preferences_compare_labels_and_rm_on_each_feature():
    # 3 pairs: chosen is longer in pairs 0 and 1, shorter in pair 2; equal hedging everywhere but pair 0.
    features = pd.DataFrame({"length_words": [5, 2, 4, 1, 1, 3], "hedging": [1, 0, 0, 0, 0, 0]}, dtype=float)
    rewards = np.array([1.0, 0.0, 0.0, 1.0, 0.0, 2.0])  # RM: right on pair 0, wrong on 1 and 2
    table, accuracy = pair_preferences(features, rewards, ["chosen", "rejected"] * 3, [0, 0, 1, 1, 2, 2])
    assert accuracy == pytest.approx(1 / 3)
    rows = table.set_index("feature")
    # RM picks the longer side in pairs 0 and 2 (right on 0, wrong on 2), the shorter in pair 1
    assert rows.loc["length_words"].tolist() == [3, pytest.approx(2 / 3), pytest.approx(2 / 3)]
    assert rows.loc["hedging"].tolist() == [1, 1.0, 1.0]


def test_run_writes_a_json_report_with_config_and_a_plot(tmp_path):
    data = tmp_path / "responses.jsonl"
    rows = [{"prompt": "q", "response": " ".join(["w"] * k) + "."} for k in range(1, 13)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "report.json"
    config = CorrelationConfig(rm=["fake"], data=str(data), n_boot=50, out=str(out),
                               features=["length_words", "format_headers"])
    report, payload = run(config, scorer=WordCountScorer())
    assert not out.exists()  # run() only returns; main() writes
    assert report.n == 12
    assert payload["flagged"] == ["length_words"]
    assert (tmp_path / "report.png").stat().st_size > 0
    from analysis.cli import emit

    emit(payload, out, print_json=False, summary="")
    written = json.loads(out.read_text())
    assert written["config"]["n_boot"] == 50
    assert written["correlations"][1]["pearson"] is None  # constant feature: NaN -> null
    assert written["length_hacking"] is True


def test_cli_end_to_end_with_a_tiny_model_on_preference_rows(tmp_path, tmp_path_factory, capsys):
    rm_dir = tiny_rm(tmp_path_factory)
    data = tmp_path / "prefs.jsonl"
    pairs = [{"prompt": f"q{i}", "chosen": "a careful correct answer " * (i % 3 + 1), "rejected": "wrong " * (i % 4 + 1)}
             for i in range(10)]
    data.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    out = tmp_path / "corr.json"
    main(["--rm", str(rm_dir), "--data", str(data), "--n-boot", "50", "--out", str(out), "--json"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["n"] == 20  # both sides of 10 pairs
    assert 0.0 <= printed["pair_accuracy"] <= 1.0
    assert printed["pair_preferences"][1]["feature"] == "length_words"
    assert printed["pair_preferences"][1]["human_prefers_higher"] == 1.0  # every chosen here is longer
    assert printed["config"]["rm"] == [str(rm_dir)]
    assert [row["feature"] for row in printed["correlations"]][:3] == ["length_chars", "length_words", "length_tokens"]
    assert isinstance(printed["length_hacking"], bool)
    assert json.loads(out.read_text())["n"] == 20 and out.with_suffix(".png").is_file()
