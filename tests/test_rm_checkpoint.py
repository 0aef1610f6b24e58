import os

import pytest
import torch

from rm.checkpoint import list_checkpoints, load_rm, read_rm_config, save_rm
from rm.device import torch_threads
from rm.model import build_reward_model
from rm.testing import tiny_backbone, tiny_decoder


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models on a shared machine run fastest on one thread (see rm.device.torch_threads)."""
    with torch_threads(1):
        yield


def _batch(tokenizer):
    enc = tokenizer(["what is two plus two?", "help me please"], ["four", "sure, here is help"],
                    padding=True, return_tensors="pt")
    return dict(enc)


def _scores(model, batch):
    with torch.no_grad():
        return model.eval()(**batch)


BACKBONES = {"encoder": tiny_backbone, "decoder": tiny_decoder}


@pytest.mark.parametrize("kind, pooling", [("encoder", "cls"), ("encoder", "mean"), ("decoder", "last"), ("decoder", "mean")])
def test_round_trip_gives_identical_scores(tmp_path, kind, pooling):
    torch.manual_seed(0)
    model = build_reward_model(BACKBONES[kind](tmp_path / "bb"), pooling=pooling)
    batch = _batch(model.tokenizer)
    before = _scores(model, batch)
    save_rm(model, model.tokenizer, tmp_path / "rm", config={"lr": 1e-3}, metrics={"accuracy": 0.7}, temperature=1.7)
    loaded = load_rm(tmp_path / "rm")
    torch.testing.assert_close(_scores(loaded, batch), before)  # same weights; BLAS may differ by 1 ulp
    assert (loaded.pooling, loaded.temperature, loaded.native) == (pooling, 1.7, model.native)
    meta = read_rm_config(tmp_path / "rm")
    assert meta["train_config"] == {"lr": 1e-3} and meta["metrics"] == {"accuracy": 0.7}


@pytest.mark.parametrize("kind", ["encoder", "decoder"])
def test_native_checkpoint_loads_in_auto_model_for_sequence_classification(tmp_path, kind):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    model = build_reward_model(BACKBONES[kind](tmp_path / "bb"), pooling=None)
    assert model.native
    save_rm(model, model.tokenizer, tmp_path / "rm")
    hf = AutoModelForSequenceClassification.from_pretrained(tmp_path / "rm").eval()
    batch = _batch(model.tokenizer)  # right padding for the encoder, left for the decoder
    with torch.no_grad():
        torch.testing.assert_close(hf(**batch).logits[:, 0], _scores(load_rm(tmp_path / "rm"), batch), rtol=0, atol=0)


def test_non_native_layout_keeps_hf_from_loading_a_random_head(tmp_path):
    model = build_reward_model(tiny_backbone(tmp_path / "bb"), pooling="mean")
    out = save_rm(model, model.tokenizer, tmp_path / "rm")
    assert not (out / "config.json").exists() and (out / "backbone" / "config.json").exists()


def test_load_plain_hf_reward_model_and_reject_multi_label(tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    bb = tiny_backbone(tmp_path / "bb")
    tok = AutoTokenizer.from_pretrained(bb)
    for labels in (1, 3):
        torch.manual_seed(0)
        hf = AutoModelForSequenceClassification.from_pretrained(bb, num_labels=labels)
        hf.save_pretrained(tmp_path / f"hf{labels}")
        tok.save_pretrained(tmp_path / f"hf{labels}")
    loaded = load_rm(tmp_path / "hf1")
    batch = _batch(tok)
    with torch.no_grad():
        torch.testing.assert_close(_scores(loaded, batch), hf.__class__.from_pretrained(tmp_path / "hf1").eval()(**batch).logits[:, 0])
    assert loaded.pooling == "cls" and loaded.temperature == 1.0
    with pytest.raises(ValueError, match="num_labels=3; a reward model has one scalar output"):
        load_rm(tmp_path / "hf3")


def test_ensemble_folder_is_pointed_to_load_scorer(tmp_path):
    (tmp_path / "ens" / "member_0").mkdir(parents=True)
    with pytest.raises(ValueError, match="ensemble.*load_scorer"):
        load_rm(tmp_path / "ens")


def test_list_checkpoints_finds_single_and_ensemble_folders_newest_first(tmp_path):
    rm_dir = tmp_path / "rm"
    for name, marker, mtime in (("old", "rmlab_config.json", 1_000), ("ens", "rmlab_ensemble.json", 3_000),
                                ("single", "rmlab_config.json", 2_000)):
        (rm_dir / name / "member_0").mkdir(parents=True)
        (rm_dir / name / marker).write_text("{}")
        os.utime(rm_dir / name, (mtime, mtime))
    (rm_dir / "half-written" / "member_0").mkdir(parents=True)  # no config yet: a run in progress
    (rm_dir / "notes.txt").write_text("not a checkpoint")
    assert list_checkpoints(tmp_path) == [("ens", str(rm_dir / "ens")), ("single", str(rm_dir / "single")),
                                          ("old", str(rm_dir / "old"))]
    assert list_checkpoints(str(tmp_path)) == list_checkpoints(tmp_path)
    assert list_checkpoints(tmp_path / "nothing") == []
