import json
import os

import pytest
import torch

from rm.checkpoint import NotACheckpoint, list_checkpoints, load_rm, locate, read_rm_config, save_rm
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


@pytest.fixture
def remote_code_cache(tmp_path, monkeypatch):
    """transformers copies a checkpoint's code into HF_MODULES_CACHE: keep it under tmp_path."""
    import sys

    import transformers.dynamic_module_utils as dynamic

    monkeypatch.setattr(dynamic, "HF_MODULES_CACHE", str(tmp_path / "hf_modules"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in [n for n in sys.modules if n.split(".")[0] == "transformers_modules"]:
        monkeypatch.delitem(sys.modules, name)


def test_pooled_checkpoint_is_a_hf_folder_that_transformers_loads_with_its_own_code(tmp_path, remote_code_cache):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rm.score import load_scorer

    torch.manual_seed(0)
    model = build_reward_model(tiny_backbone(tmp_path / "bb"), pooling="mean")
    out = save_rm(model, model.tokenizer, tmp_path / "rm", temperature=1.3)
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["RmlabRewardModel"] and config["model_type"] == "rmlab_reward"
    assert config["auto_map"] == {"AutoConfig": "modeling_rmlab.RmlabRewardConfig",
                                  "AutoModelForSequenceClassification": "modeling_rmlab.RmlabRewardModel"}
    assert {"model.safetensors", "modeling_rmlab.py", "pooling.py", "tokenizer.json", "rmlab_config.json"} <= {
        p.name for p in out.iterdir()}
    assert not (out / "backbone").exists() and read_rm_config(out)["layout"] == "pooled"
    with pytest.raises(ValueError, match="trust_remote_code=True"):  # never a random head, silently
        AutoModelForSequenceClassification.from_pretrained(out)
    hf = AutoModelForSequenceClassification.from_pretrained(out, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(out, trust_remote_code=True)
    prompts = ["what is two plus two?", "help me please", "is it safe?"]
    responses = ["four", "sure, here is help for you today", "yes"]
    with torch.no_grad():
        logits = hf(**tokenizer(prompts, responses, padding=True, return_tensors="pt")).logits
    assert logits.shape == (3, 1)
    expected = load_scorer(out, precision="fp32").score(prompts, responses).mean
    torch.testing.assert_close(logits[:, 0].double(), torch.from_numpy(expected), rtol=0, atol=1e-4)


def _write_old_layout(model, folder):
    """A checkpoint as rm.checkpoint wrote it before format rmlab-rm/2: backbone/ + head.safetensors."""
    from safetensors.torch import save_file

    model.body.save_pretrained(folder / "backbone")
    save_file({k: v.contiguous() for k, v in model.head.state_dict().items()}, folder / "head.safetensors")
    model.tokenizer.save_pretrained(folder)
    meta = {"format": "rmlab-rm/1", "layout": "backbone+head", "pooling": model.pooling, "max_length": 64,
            "temperature": 2.0, "train_config": {"lr": 0.001}, "metrics": {"accuracy": 0.75}}
    (folder / "rmlab_config.json").write_text(json.dumps(meta))
    (folder / "metrics.json").write_text(json.dumps(meta["metrics"]))


def test_old_layout_still_loads_and_converts_to_the_new_one(tmp_path, capsys):
    from rm.convert import main as convert_main

    torch.manual_seed(0)
    model = build_reward_model(tiny_backbone(tmp_path / "bb"), pooling="mean")
    _write_old_layout(model, tmp_path / "old")
    batch = _batch(model.tokenizer)
    old = load_rm(tmp_path / "old")
    torch.testing.assert_close(_scores(old, batch), _scores(model, batch))
    assert (old.temperature, old.max_length) == (2.0, 64)

    assert convert_main([str(tmp_path / "old"), "--out", str(tmp_path / "new")]) == [tmp_path / "new"]
    new = tmp_path / "new"
    assert read_rm_config(new)["layout"] == "pooled" and read_rm_config(new)["train_config"] == {"lr": 0.001}
    assert (new / "metrics.json").is_file() and not (new / "backbone").exists()
    torch.testing.assert_close(_scores(load_rm(new), batch), _scores(model, batch))
    assert convert_main([str(tmp_path / "old")]) == [tmp_path / "old"]  # in place: the old files go
    assert not (tmp_path / "old" / "backbone").exists() and not (tmp_path / "old" / "head.safetensors").exists()
    assert convert_main([str(new)]) == []
    assert "already a Hugging Face model folder" in capsys.readouterr().out


def test_a_nan_model_is_never_saved(tmp_path):
    model = build_reward_model(tiny_backbone(tmp_path / "bb"), pooling="mean")
    with torch.no_grad():
        model.head.weight[0, 3] = float("nan")
    with pytest.raises(ValueError, match=r"parameter head.weight holds NaN or inf values \(training diverged\)"):
        save_rm(model, model.tokenizer, tmp_path / "rm")
    assert not (tmp_path / "rm").exists()


def test_a_folder_holding_a_checkpoint_below_says_did_you_mean(tmp_path):
    model = build_reward_model(tiny_backbone(tmp_path / "bb"), pooling="mean")
    save_rm(model, model.tokenizer, tmp_path / "capstone" / "biased" / "rm")
    (tmp_path / "capstone" / "notes").mkdir()
    with pytest.raises(NotACheckpoint, match=f"did you mean {tmp_path}/capstone/biased/rm\\?"):
        load_rm(tmp_path / "capstone")
    with pytest.raises(NotACheckpoint, match=r"\(no rmlab_config.json or config.json\); give a folder written by"):
        load_rm(tmp_path / "capstone" / "notes")
    with pytest.raises(FileNotFoundError, match="no such checkpoint folder"):
        load_rm(tmp_path / "capstone" / "typo")
    assert locate("owner/name") == "owner/name"  # a Hub id is left to transformers


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


def test_list_checkpoints_leaves_out_diverged_runs(tmp_path):
    rm_dir = tmp_path / "rm"
    records = {"good": ({"metrics": {"accuracy": 0.8, "log_loss": 0.4}, "temperature": 1.2}, 0.5),
               "nan-metric": ({"metrics": {"accuracy": 0.0, "log_loss": float("nan")}, "temperature": 1.0}, 0.5),
               "nan-loss": ({"metrics": {}, "temperature": 1.0}, float("nan"))}
    for name, (meta, last_loss) in records.items():
        (rm_dir / name).mkdir(parents=True)
        (rm_dir / name / "rmlab_config.json").write_text(json.dumps(meta))
        (rm_dir / name / "curves.jsonl").write_text(json.dumps({"step": 1, "loss": 0.6}) + "\n" +
                                                     json.dumps({"step": 2, "loss": last_loss}) + "\n")
    assert list_checkpoints(tmp_path) == [("good", str(rm_dir / "good"))]
