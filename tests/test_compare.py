"""analysis.compare: two responses under one RM, and several RMs on the same data."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.compare import compare_models, feature_diff, score_pair
from rm.score import Scores


def test_feature_table_highlights_differences():
    diff = feature_diff("Is 2 + 2 = 5?", "Great question! Yes, it is 5.", "No, it is 4.")
    row = diff.set_index("feature")
    assert row.loc["flattery", "A"] == 1 and row.loc["flattery", "B"] == 0
    assert row.loc["flattery", "A − B"] == 1


class Words:
    """Reward = word count (a length-hacked RM); `bias` shifts every reward."""

    temperature = 1.0

    def __init__(self, name: str, bias: float = 0.0):
        self.name, self.bias = name, bias

    def score(self, prompts, responses, batch_size: int = 32):
        responses = [responses] if isinstance(responses, str) else list(responses)
        mean = np.array([len(r.split()) + self.bias for r in responses], dtype=float)
        return Scores(mean=mean, std=np.zeros_like(mean), members=[mean])

    def p_better(self, a, b):
        return 1 / (1 + np.exp(-(a - b) / self.temperature))


def test_score_pair_is_both_rewards_and_the_calibrated_probability():
    out = score_pair(Words("w"), "q", "one two three", "one")
    assert out == {"score_a": 3.0, "score_b": 1.0, "p_a_better": pytest.approx(1 / (1 + np.exp(-2))),
                   "temperature": 1.0, "members": 1, "model": "w"}


def test_compare_models_reports_each_models_numbers():
    pairs = {"prompt": ["p"] * 4, "chosen": ["a b c", "a b", "a", "a b c d"], "rejected": ["a", "a", "a b", "a"],
             "tie": [False] * 4}
    cases = [{"id": str(i), "prompt": "I'm sure 2 + 2 = 5", "agreeing": "Yes, you are right, it is 5.",
              "correcting": "No, 4."} for i in range(5)]
    result = compare_models({"A": Words("A"), "B": Words("B", bias=1.0)}, pairs, cases, n_boot=20)
    assert list(result.table.index) == ["A", "B"]
    assert result.table.accuracy.tolist() == [0.75, 0.75]  # the third pair's chosen side is shorter
    assert result.table.n_pairs.tolist() == [4, 4] and result.table.agree_rate.tolist() == [1.0, 1.0]
    assert result.table.flagged.all()
    feature, r = result.top_correlations["A"][0]
    assert feature.startswith("length") and r == pytest.approx(1.0)
