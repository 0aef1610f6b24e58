import json
import random

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rm.device import torch_threads
from rm.testing import tiny_backbone
from rm.train import TrainConfig, bootstrap_indices, main, train


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models on a shared machine run fastest on one thread (see rm.device.torch_threads)."""
    with torch_threads(1):
        yield


GOOD = ["yes good correct answer", "sure thanks help", "good right answer", "correct polite help"]
BAD = ["no bad wrong answer", "rude harmful wrong", "bad worse answer", "wrong illegal rude"]


def separable_pairs(path, n=96, seed=0):
    """Chosen responses use 'good' words, rejected ones 'bad' words, under varied prompts."""
    rng = random.Random(seed)
    rows = [{"prompt": f"what is {rng.choice(['two', 'three', 'four'])} plus {rng.choice(['one', 'five', 'six'])}?",
             "chosen": rng.choice(GOOD), "rejected": rng.choice(BAD)} for _ in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def setup(tmp_path):
    return tiny_backbone(tmp_path / "bb"), separable_pairs(tmp_path / "pairs.jsonl")


def test_tiny_model_learns_a_separable_set(tmp_path, setup):
    backbone, data = setup
    events = []
    out = train(TrainConfig(data=str(data), out=str(tmp_path / "rm"), backbone=backbone, from_scratch=True,
                            epochs=3, batch_size=8, lr=3e-3, max_length=48, eval_fraction=0.25, progress=False,
                            precision="fp32"), callback=events.append)
    curves = [json.loads(line) for line in (out / "curves.jsonl").read_text().splitlines()]
    steps = [c for c in curves if "eval_accuracy" not in c]
    assert sum(c["loss"] for c in steps[:3]) / 3 > sum(c["loss"] for c in steps[-3:]) / 3 + 0.2
    epoch_end = [c for c in curves if "eval_accuracy" in c]
    assert len(epoch_end) == 3 and epoch_end[-1]["accuracy"] > 0.9
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] > 0.9 and metrics["n"] == 24 and metrics["n_train"] == 72
    assert metrics["precision"] == "fp32" and metrics["train_pairs_per_s"] > 0
    start = load_file(f"{backbone}/model.safetensors")
    end = load_file(out / "model.safetensors")  # a "pooled" checkpoint: backbone.* and score.*
    assert not torch.equal(start["encoder.layer.0.attention.self.query.weight"], end["backbone.encoder.layer.0.attention.self.query.weight"])
    assert {"step", "total_steps", "epoch", "loss", "accuracy"} <= set(events[0])
    assert any("eval_accuracy" in e for e in events) and events[-1]["step"] == events[-1]["total_steps"] == 27


def test_unknown_config_key_gets_a_fix_it_message():
    with pytest.raises(TypeError, match="Unknown TrainConfig key 'learning_rate': did you mean"):
        TrainConfig.from_dict({"data": "x", "learning_rate": 1e-3})
    with pytest.raises(ValueError, match="TrainConfig.data is required"):
        train({})


def test_max_pairs_truncation_count_and_explicit_eval(tmp_path, setup):
    backbone, data = setup
    eval_data = separable_pairs(tmp_path / "eval.jsonl", n=10, seed=1)
    out = train(TrainConfig(data=str(data), eval_data=str(eval_data), out=str(tmp_path / "rm"), backbone=backbone,
                            max_pairs=20, max_length=12, batch_size=8, progress=False))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_train"] == 20 and metrics["n"] == 10
    assert 0 < metrics["n_truncated_train"] <= 20  # prompts (~9 tokens) + responses do not fit 12
    assert json.loads((out / "rmlab_config.json").read_text())["train_config"]["max_pairs"] == 20


def test_bootstrap_indices_resample_with_replacement():
    idx = bootstrap_indices(1000, seed=3)
    assert len(idx) == 1000 and len(set(idx.tolist())) < 800 and (idx == bootstrap_indices(1000, seed=3)).all()
    assert not (idx == bootstrap_indices(1000, seed=4)).all()


def test_cli_matches_the_contract(tmp_path, setup, capsys):
    backbone, data = setup
    out = main(["--data", str(data), "--backbone", backbone, "--out", str(tmp_path / "cli"), "--epochs", "1",
                "--batch-size", "16", "--lr", "1e-3", "--max-length", "32", "--pooling", "cls", "--seed", "3",
                "--max-pairs", "32", "--eval-fraction", "0.25", "--no-progress"])
    assert capsys.readouterr().out.strip() == str(tmp_path / "cli")
    config = json.loads((out / "rmlab_config.json").read_text())
    assert (config["pooling"], config["layout"], config["train_config"]["seed"]) == ("cls", "native", 3)


def test_early_stopping_stops_when_eval_accuracy_stalls(tmp_path, setup):
    backbone, data = setup
    events = []
    out = train(TrainConfig(data=str(data), out=str(tmp_path / "rm"), backbone=backbone, epochs=5, lr=0.0,
                            patience=1, max_pairs=32, max_length=32, batch_size=16, progress=False),
                callback=events.append)
    evals = [e for e in events if e.get("event") == "eval"]
    assert [e["epoch"] for e in evals] == [1, 2]  # lr 0: epoch 2 is no better, patience 1 stops
    assert json.loads((out / "metrics.json").read_text())["best_epoch"] == 1
    assert json.loads((out / "rmlab_config.json").read_text())["pooling"] == "mean"  # auto on an encoder


def test_decoder_with_chat_template_trains_and_scores(tmp_path):
    from rm.score import load_scorer
    from rm.testing import tiny_decoder

    data = separable_pairs(tmp_path / "pairs.jsonl", n=32)
    out = train(TrainConfig(data=str(data), out=str(tmp_path / "rm"), backbone=tiny_decoder(tmp_path / "dec"),
                            epochs=1, batch_size=8, lr=3e-3, max_length=48, progress=False))
    config = json.loads((out / "rmlab_config.json").read_text())
    assert (config["pooling"], config["layout"]) == ("last", "native")
    scores = load_scorer(out).score(["what is two plus one?"] * 2, ["good right answer", "a much longer bad worse answer"])
    assert scores.mean.shape == (2,) and np.isfinite(scores.mean).all()


def test_in_memory_dataset_without_eval_split(tmp_path, setup):
    import datasets

    backbone, data = setup
    rows = [json.loads(line) for line in data.read_text().splitlines()][:16]
    out = train(TrainConfig(data=datasets.Dataset.from_list(rows), out=str(tmp_path / "rm"), backbone=backbone,
                            eval_fraction=0.0, max_length=32, batch_size=8, progress=False))
    config = json.loads((out / "rmlab_config.json").read_text())
    assert config["temperature"] == 1.0 and config["train_config"]["data"].startswith("Dataset(")
    assert "accuracy" not in json.loads((out / "metrics.json").read_text())


def stop_at(step: int, events: list):
    """A callback that records every event and asks to stop once `step` is done."""
    def callback(event: dict) -> bool:
        events.append(event)
        return event["step"] < step
    return callback


def test_callback_returning_false_stops_after_that_step_and_saves(tmp_path, setup):
    from rm.score import load_scorer

    backbone, data = setup
    events = []
    out = train(TrainConfig(data=str(data), out=str(tmp_path / "rm"), backbone=backbone, epochs=3, batch_size=8,
                            max_length=32, eval_fraction=0.25, progress=False), callback=stop_at(2, events))
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2]  # of 27
    assert [e["event"] for e in events] == ["step", "step", "eval"]  # the stopped weights are still evaluated
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["stopped"], metrics["steps"], metrics["n"]) == (True, 2, 24) and "ece_calibrated" in metrics
    assert len((out / "curves.jsonl").read_text().splitlines()) == 3
    assert load_scorer(out).score(["what is two plus one?"], ["good right answer"]).mean.shape == (1,)


def test_a_stop_in_an_ensemble_member_trains_no_further_members(tmp_path, setup):
    backbone, data = setup
    events = []
    out = train(TrainConfig(data=str(data), out=str(tmp_path / "ens"), backbone=backbone, ensemble=3, batch_size=8,
                            max_pairs=32, max_length=32, eval_fraction=0.0, progress=False), callback=stop_at(1, events))
    assert [(e["member"], e["step"]) for e in events] == [(0, 1)]
    assert sorted(p.name for p in out.glob("member_*")) == ["member_0"]
    assert json.loads((out / "member_0" / "metrics.json").read_text())["stopped"] is True
    assert json.loads((out / "rmlab_ensemble.json").read_text())["members"] == 1


def test_packed_training_follows_the_padded_run(tmp_path, setup):
    backbone, data = setup
    losses = {}
    for packing in (False, True):
        out = train(TrainConfig(data=str(data), out=str(tmp_path / f"rm{packing}"), backbone=backbone, epochs=1,
                                batch_size=8, lr=1e-3, max_length=48, eval_fraction=0.25, progress=False,
                                precision="fp32", packing=packing))
        curves = [json.loads(line) for line in (out / "curves.jsonl").read_text().splitlines()]
        losses[packing] = [c["loss"] for c in curves if c.get("event") != "eval" and "eval_accuracy" not in c]
        assert json.loads((out / "rmlab_config.json").read_text())["train_config"]["packing"] is packing
        assert json.loads((out / "metrics.json").read_text())["packing"] is packing  # packed batches were used
    assert len(losses[True]) == 9
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-3, atol=1e-4)


def test_frozen_lower_blocks_keep_their_weights_and_the_rest_learns(tmp_path):
    backbone, data = tiny_backbone(tmp_path / "bb", layers=3), separable_pairs(tmp_path / "pairs.jsonl")
    out = train(TrainConfig(data=str(data), out=str(tmp_path / "rm"), backbone=backbone, epochs=3, batch_size=8,
                            lr=3e-3, max_length=48, eval_fraction=0.25, progress=False, precision="fp32",
                            freeze_layers=2))
    start, end = load_file(f"{backbone}/model.safetensors"), load_file(out / "model.safetensors")
    for name in ("embeddings.word_embeddings.weight", "embeddings.LayerNorm.weight",
                 "encoder.layer.0.attention.self.query.weight", "encoder.layer.1.output.dense.weight"):
        assert torch.equal(start[name], end["backbone." + name]), name
    assert not torch.equal(start["encoder.layer.2.attention.self.query.weight"],
                           end["backbone.encoder.layer.2.attention.self.query.weight"])
    assert json.loads((out / "metrics.json").read_text())["accuracy"] > 0.9
    assert json.loads((out / "rmlab_config.json").read_text())["train_config"]["freeze_layers"] == 2
