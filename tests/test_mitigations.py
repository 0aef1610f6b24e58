"""analysis.mitigations: the debiased RM lowers a planted correlation; disjoint ensembles; run comparison table."""
import json

import numpy as np
import pandas as pd
import pytest

from analysis import mitigations as M
from analysis.goodhart import GoldFit
from analysis.rl import RLResult


def length_biased(n, seed):
    """Chosen responses are longer (the planted nuisance) and mention 'correct'; rejected are short."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        k_good, k_bad = int(rng.integers(1, 9)), int(rng.integers(1, 9))
        good = "correct answer " + "word " * (k_good + 4)
        bad = "wrong answer " + "word " * k_bad
        rows.append({"prompt": f"question {i}", "chosen": good.strip(), "rejected": bad.strip()})
    return pd.DataFrame(rows)


def test_debiased_rm_lowers_the_planted_length_correlation(tmp_path):
    from rm.testing import tiny_backbone
    from rm.train import TrainConfig

    train, held = length_biased(96, 0), length_biased(48, 1)
    train.to_json(tmp_path / "train.jsonl", orient="records", lines=True)
    held.to_json(tmp_path / "held.jsonl", orient="records", lines=True)
    config = TrainConfig(data=str(tmp_path / "train.jsonl"), eval_data=str(tmp_path / "held.jsonl"),
                         out=str(tmp_path / "rm"), backbone=tiny_backbone(tmp_path / "bb"), epochs=4, batch_size=16,
                         lr=1e-3, max_length=48, progress=False, seed=0)
    result = M.debias(config, "length_words", 20.0, held)
    t = result.table.set_index("rm")
    assert t.loc["plain", "corr"] > 0.5  # the plain RM rewards length
    assert abs(t.loc["debiased", "corr"]) < t.loc["plain", "corr"] - 0.3  # the penalty removes most of it
    assert t.loc["debiased", "corr_lo"] <= t.loc["debiased", "corr"] <= t.loc["debiased", "corr_hi"]
    saved = json.loads((tmp_path / "rm" / "debiased" / "rmlab_config.json").read_text())
    assert "'decorrelate': 'length_words'" in json.dumps(saved).replace('"', "'")
    with pytest.raises(ValueError, match="unknown feature"):
        M.feature_values("verbosity")


def fake_run(golds, proxies, kls):
    curve = pd.DataFrame({"step": [0, 5, 10][:len(golds)], "gold": golds, "proxy": proxies, "kl": kls,
                          "sqrt_kl": np.sqrt(kls)})
    return RLResult(curve, GoldFit(1.0, 0.5, 0.9, 2.7, 7.4, None, "rl"), None, pd.DataFrame(), pd.DataFrame())


def test_compare_runs_reports_peak_and_final_gold():
    table = M.compare_runs({"a": fake_run([0.1, 0.3, 0.2], [0.0, 1.0, 2.0], [0.0, 1.0, 4.0]),
                            "b": fake_run([0.1, 0.1, 0.15], [0.0, 0.2, 0.3], [0.0, 0.25, 1.0])}).set_index("run")
    assert table.loc["a", ["gold_peak", "peak_step", "peak_sqrt_kl", "gold_final", "proxy_gain"]].tolist() == [
        0.3, 5, 1.0, 0.2, 2.0]
    assert table.loc["b", "peak_step"] == 10 and table.loc["b", "kl_final"] == 1.0 and table.loc["a", "d_star"] == 2.7


def test_disjoint_ensemble_members_split_the_pairs(tmp_path):
    from rm.testing import tiny_backbone
    from rm.train import ENSEMBLE_DATA, TrainConfig, train

    parts = [ENSEMBLE_DATA["disjoint"](31, k, 3, 5) for k in range(3)]
    assert sorted(np.concatenate(parts).tolist()) == list(range(31)) and [len(p) for p in parts] == [11, 10, 10]
    assert len(ENSEMBLE_DATA["bootstrap"](31, 0, 3, 5)) == 31 and ENSEMBLE_DATA["same"](4, 1, 3, 0).tolist() == [0, 1, 2, 3]
    length_biased(30, 2).to_json(tmp_path / "p.jsonl", orient="records", lines=True)
    out = train(TrainConfig(data=str(tmp_path / "p.jsonl"), out=str(tmp_path / "ens"), backbone=tiny_backbone(tmp_path / "bb"),
                            ensemble=3, ensemble_data="disjoint", batch_size=8, max_length=32, eval_fraction=0,
                            progress=False))
    assert [json.loads((out / f"member_{k}" / "metrics.json").read_text())["n_train"] for k in range(3)] == [10, 10, 10]
    with pytest.raises(ValueError, match="ensemble-data must be one of"):
        train(TrainConfig(data=str(tmp_path / "p.jsonl"), ensemble_data="halves"))
