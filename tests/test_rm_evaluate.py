import json

import pytest

from rm.device import torch_threads
from rm.evaluate import EvalConfig, evaluate, main
from rm.metrics import accuracy
from rm.testing import tiny_backbone
from rm.train import TrainConfig, train
from test_rm_train import separable_pairs


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models on a shared machine run fastest on one thread (see rm.device.torch_threads)."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("ev")
    data = separable_pairs(root / "p.jsonl", n=48)
    out = train(TrainConfig(data=str(data), out=str(root / "rm"), backbone=tiny_backbone(root / "bb"),
                            epochs=2, batch_size=8, lr=3e-3, max_length=40, progress=False))
    return out, data


def test_cli_prints_one_json_object_with_the_contract_keys(trained, capsys):
    out, data = trained
    main(["--rm", str(out), "--data", str(data), "--max-pairs", "20", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert {"n", "accuracy", "reward_gap", "log_loss", "brier", "ece", "ece_calibrated"} <= set(report)
    assert report["n"] == 20 and 0 <= report["ece"] <= 1
    assert report["temperature"] == pytest.approx(json.loads((out / "rmlab_config.json").read_text())["temperature"])


class FakeScorer:
    """Any object with .score(prompts, responses) works: reward = 1 for responses with 'good'."""

    name, temperature = "fake", 1.0

    def score(self, prompts, responses, batch_size=32):
        from rm.score import Scores
        import numpy as np
        return Scores(mean=np.array([float("good" in r) for r in responses]), std=None)


def test_evaluate_accepts_any_scorer(trained):
    _, data = trained
    report = evaluate(EvalConfig(rm="fake", data=str(data)), scorer=FakeScorer())
    from rm.data import load_preferences
    ds = load_preferences(data)
    expected = accuracy([float("good" in c) for c in ds["chosen"]], [float("good" in r) for r in ds["rejected"]])
    assert report["accuracy"] == pytest.approx(expected) and report["rm"] == "fake"
    assert sum(row["count"] for row in report["reliability"]) == 2 * report["n"]


class TableScorer:
    """Reward from a fixed table of response texts."""

    name, temperature = "table", 1.0
    REWARDS = {"great": 2.0, "good": 1.0, "meh": 0.5, "bad": 0.0, "worse": -1.0}

    def __init__(self):
        self.calls = []

    def score(self, prompts, responses, batch_size=32):
        from rm.score import Scores
        import numpy as np

        self.calls.append(len(responses))
        return Scores(mean=np.array([self.REWARDS[r] for r in responses]), std=None)


def _rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_rewardbench_v1_subsets_and_section_weighted_score(tmp_path):
    right, wrong = ("good", "bad"), ("bad", "good")
    rows = [("alpacaeval-easy", right), ("alpacaeval-easy", right), ("alpacaeval-hard", right),
            ("alpacaeval-hard", wrong), ("mt-bench-hard", wrong), ("xstest-should-refuse", right),
            ("xstest-should-refuse", right), ("math-prm", right), ("math-prm", wrong), ("hep-python", right),
            ("my-own", right)]
    data = _rows(tmp_path / "rb.jsonl", [{"id": i, "prompt": f"p{i}", "chosen": c, "rejected": r, "subset": s}
                                         for i, (s, (c, r)) in enumerate(rows)])
    report = evaluate(EvalConfig(rm="table", data=data), scorer=TableScorer())
    assert report["per_subset"] == {
        "alpacaeval-easy": {"n": 2, "accuracy": 1.0}, "alpacaeval-hard": {"n": 2, "accuracy": 0.5},
        "mt-bench-hard": {"n": 1, "accuracy": 0.0}, "xstest-should-refuse": {"n": 2, "accuracy": 1.0},
        "math-prm": {"n": 2, "accuracy": 0.5}, "hep-python": {"n": 1, "accuracy": 1.0}, "my-own": {"n": 1, "accuracy": 1.0}}
    chat = (1.0 * 100 + 0.5 * 95) / (100 + 95)  # subsets weighted by RewardBench's example counts
    reasoning = (0.5 * 984 + 1.0 * 164) / (984 + 164)
    assert report["rewardbench"]["sections"] == pytest.approx(
        {"Chat": chat, "Chat Hard": 0.0, "Safety": 1.0, "Reasoning": reasoning})
    assert report["rewardbench"]["score"] == pytest.approx((chat + 0.0 + 1.0 + reasoning) / 4)
    assert report["rewardbench"]["missing_sections"] == [] and report["accuracy"] == pytest.approx(8 / 11)


def test_rewardbench2_best_of_4_rows(tmp_path, capsys):
    rows = [{"prompt": "p1", "chosen": ["good"], "rejected": ["bad", "meh", "worse"], "subset": "Factuality"},
            {"prompt": "p2", "chosen": ["meh"], "rejected": ["good", "bad", "worse"], "subset": "Factuality"},
            {"prompt": "p3", "chosen": ["great"], "rejected": ["good", "meh", "bad"], "subset": "Math"},
            {"prompt": "p4", "chosen": ["good", "great"], "rejected": ["bad", "meh"], "subset": "Ties"}]
    scorer = TableScorer()
    report = evaluate(EvalConfig(rm="table", data=_rows(tmp_path / "rb2.jsonl", rows)), scorer=scorer)
    assert scorer.calls == [16]  # 4 rows hold 16 distinct (prompt, response) pairs, each scored once
    assert report["n"] == 13  # pairs: 3 + 3 + 3 + 2 * 2
    assert report["best_of_n"] == pytest.approx({"n": 4, "accuracy": 0.75, "chance": (3 / 4 + 1 / 6) / 4,
                                                 "subset_mean": (0.5 + 1.0 + 1.0) / 3})
    assert report["per_subset"] == {"Factuality": {"n": 2, "accuracy": 0.5}, "Math": {"n": 1, "accuracy": 1.0},
                                    "Ties": {"n": 1, "accuracy": 1.0}}
    assert "rewardbench" not in report
