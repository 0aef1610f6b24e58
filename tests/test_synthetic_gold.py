"""analysis.synthetic_gold: relabelling by a gold scorer, nested subsets, and the protocol end to end on tiny models."""
import json

import numpy as np
import pandas as pd
import pytest

from analysis import synthetic_gold as SG
from analysis.policy import Sample
from analysis_support import WordCountScorer


def pairs(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame([{"prompt": f"What is {i % 7} + 2?", "chosen": "yes " * int(rng.integers(1, 9)),
                          "rejected": "no " * int(rng.integers(1, 9))} for i in range(n)])


def test_hard_relabel_orders_each_pair_by_the_gold():
    data = pairs()
    out = SG.relabel(data, WordCountScorer())
    longer = [len(c.split()) >= len(r.split()) for c, r in zip(data["chosen"], data["rejected"])]
    assert (out["chosen"].str.split().str.len() >= out["rejected"].str.split().str.len()).all()
    assert (out["gold_margin"] >= 0).all() and (out["chosen"] == data["chosen"]).tolist() == longer
    assert set(zip(out["chosen"], out["rejected"])) | set(zip(out["rejected"], out["chosen"])) >= set(
        zip(data["chosen"], data["rejected"]))  # every pair kept, maybe swapped


def test_bt_relabel_is_hard_at_a_tiny_temperature_and_a_coin_at_a_huge_one():
    data = pairs(400)
    gold = WordCountScorer()
    gold.temperature = 1e-6
    hard = SG.relabel(data, WordCountScorer())
    ties = hard["gold_margin"] == 0
    assert (SG.relabel(data, gold, "bt")["chosen"] == hard["chosen"])[~ties].all()
    gold.temperature = 1e6
    kept = (SG.relabel(data, gold, "bt", seed=3)["chosen"] == data["chosen"]).mean()
    assert 0.4 < kept < 0.6
    with pytest.raises(ValueError, match="'hard' or 'bt'"):
        SG.relabel(data, gold, "soft")


def test_nested_subsets_are_nested_and_sized():
    subsets = SG.nested_subsets(50, [20, 5, 10], seed=1)
    assert list(subsets) == [5, 10, 20] and [len(v) for v in subsets.values()] == [5, 10, 20]
    assert set(subsets[5]) <= set(subsets[10]) <= set(subsets[20])
    with pytest.raises(ValueError, match="do not fit"):
        SG.nested_subsets(10, [5, 11])


def fake_generate(prompts, n, max_new_tokens, temperature, top_p, seed, batch_size, progress=None):
    return [[Sample("yes " * (k + 1), -float(k + 1), k + 1, True) for k in range(n)] for _ in prompts]


def test_protocol_end_to_end_on_tiny_proxies(tmp_path, tmp_path_factory):
    from rm.testing import tiny_backbone

    path = tmp_path / "pairs.jsonl"
    pairs(40).to_json(path, orient="records", lines=True)
    backbone = tiny_backbone(tmp_path_factory.getbasetemp() / "sg_backbone")
    config = SG.SyntheticGoldConfig(gold=["unused"], pairs=str(path), sizes=[8, 24], backbone=backbone, epochs=1,
                                    batch_size=8, max_length=32, prompts="plain", n_prompts=2, n=4,
                                    cache_dir=str(tmp_path / "cache"), out=str(tmp_path / "sg"))
    result = SG.run(config, gold=WordCountScorer(), generate_fn=fake_generate)
    assert result.table["size"].tolist() == [8, 24]
    assert result.table["heldout_gold_agreement"].between(0, 1).all()
    assert sorted(result.curves["size"].unique()) == [8, 24] and set(result.curves["n"]) == {1, 2, 4}
    for size in (8, 24):
        assert json.loads((tmp_path / "sg" / f"proxy_{size}" / "metrics.json").read_text())["n_train"] == size
    # the gold is word count and sample k has k+1 words: best-of-n gold is the gold of the proxy's pick
    curve = result.curves[result.curves["size"] == 8]
    assert curve.loc[curve["n"] == 1, "gold"].item() == pytest.approx(2.5)
    assert len(SG.plot_synthetic_gold(result).axes) == 2 and "size" in SG.summary(result)
