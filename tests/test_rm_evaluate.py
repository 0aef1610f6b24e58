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
