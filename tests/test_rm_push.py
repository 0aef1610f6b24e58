"""rm.push: the model card from the checkpoint's own records (exact text), the upload replaced at its boundary."""
import json
import os

import huggingface_hub
import pytest

from rm.checkpoint import save_rm
from rm.model import build_reward_model
from rm.push import main
from rm.testing import tiny_backbone

TRAIN_CONFIG = {"data": "me/prefs", "data_dir": None, "split": "train", "backbone": "org/tiny-bert", "pooling": "mean",
                "max_length": 64, "epochs": 2, "batch_size": 8, "lr": 0.001, "weight_decay": 0.0,
                "warmup_ratio": 0.1, "center_coef": 0.0, "dropout": 0.0, "seed": 0, "progress": False}
METRICS = {"n_train": 90, "n_ties_train": 12, "n": 10, "accuracy": 0.8, "ece": 0.05, "ece_calibrated": 0.02,
           "log_loss": 0.41}

CARD = """---
base_model: org/tiny-bert
library_name: transformers
pipeline_tag: text-classification
tags:
- reward-model
- bradley-terry
- rmlab
datasets:
- me/prefs
---

# tiny-rm

A Bradley-Terry reward model trained with the reward-model lab (`python -m rm.train`): `logits[:, 0]` is the reward of a response to a prompt, and P(A better than B) = sigmoid((r_A - r_B) / T) with the fitted temperature T = 1.250.

## Use

```python
from transformers import AutoModelForSequenceClassification, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("me/tiny-rm", trust_remote_code=True)
model = AutoModelForSequenceClassification.from_pretrained("me/tiny-rm", trust_remote_code=True)
inputs = tokenizer(prompt, response, return_tensors="pt")
reward = model(**inputs).logits[0, 0].item()
```

## Model

| base model | pooling | max length | layout |
|---|---|---:|---|
| org/tiny-bert | mean | 64 | pooled (its own code: trust_remote_code=True) |

## Training data

| source | pairs | ties | held out |
|---|---:|---:|---:|
| me/prefs train | 90 | 12 | 10 |

## Evaluation on the held-out pairs

| accuracy | ECE | ECE after temperature | temperature |
|---:|---:|---:|---:|
| 0.800 | 0.050 | 0.020 | 1.250 |

## Sycophancy audit

Latest audit (`sycophancy.json`, 40 cases): the response that agrees with a false claim wins 0.625 of the time [95% CI 0.470, 0.758], mean reward gap 0.310: FLAGGED (threshold 0.50).

## Feature correlations

Features most correlated with the reward (`correlations.json`, 200 responses):

| feature | Pearson r | Spearman rho |
|---|---:|---:|
| length_chars | 0.610 | 0.580 |
| hedging | -0.420 | -0.400 |
| sentiment | 0.300 | 0.280 |
| questions | 0.120 | 0.100 |
| lists | -0.050 | 0.010 |

## Training settings

| setting | value |
|---|---|
| pooling | mean |
| max_length | 64 |
| epochs | 2 |
| batch_size | 8 |
| lr | 0.001 |
| weight_decay | 0.0 |
| warmup_ratio | 0.1 |
| center_coef | 0.0 |
| dropout | 0.0 |
| seed | 0 |
"""


@pytest.fixture
def checkpoint(tmp_path):
    model = build_reward_model(tiny_backbone(tmp_path / "bb"), pooling="mean")
    model.max_length = 64
    ckpt = save_rm(model, model.tokenizer, tmp_path / "rm", TRAIN_CONFIG, METRICS, temperature=1.25)
    reports = tmp_path / "reports"
    reports.mkdir()
    audit = {"config": {"rm": str(ckpt)}, "n": 40, "agree_preferred_rate": 0.625, "rate_ci": [0.47, 0.758],
             "mean_gap": 0.31, "flagged": True, "threshold": 0.5}
    (reports / "old-audit.json").write_text(json.dumps({**audit, "agree_preferred_rate": 0.9}))
    os.utime(reports / "old-audit.json", (1_000, 1_000))  # older than sycophancy.json: not cited
    (reports / "sycophancy.json").write_text(json.dumps(audit))
    (reports / "other-rm.json").write_text(json.dumps({**audit, "config": {"rm": str(tmp_path / "other")}}))
    rows = [("lists", -0.05, 0.01), ("length_chars", 0.61, 0.58), ("questions", 0.12, 0.1), ("empty", None, None),
            ("hedging", -0.42, -0.4), ("sentiment", 0.3, 0.28), ("exclamations", 0.02, 0.0)]
    (reports / "correlations.json").write_text(json.dumps({
        "config": {"rm": [str(ckpt)]}, "n": 200, "length_hacking": True,
        "correlations": [{"feature": f, "pearson": p, "spearman": s} for f, p, s in rows]}))
    return ckpt, reports


def test_push_uploads_the_checkpoint_with_a_card_from_its_records(checkpoint, monkeypatch, capsys):
    ckpt, reports = checkpoint
    calls = []
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create", repo_id, kw)))
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", lambda self, **kw: calls.append(
        ("upload", (ckpt / "README.md").read_text(), kw)))
    assert main(["--rm", str(ckpt), "--repo", "me/tiny-rm", "--private", "--reports", str(reports)]) == \
        "https://huggingface.co/me/tiny-rm"
    assert calls == [("create", "me/tiny-rm", {"repo_type": "model", "private": True, "exist_ok": True}),
                     ("upload", CARD, {"repo_id": "me/tiny-rm", "folder_path": str(ckpt), "repo_type": "model",
                                       "commit_message": "Upload reward model (rmlab)"})]
    assert capsys.readouterr().out == "https://huggingface.co/me/tiny-rm\n"


def test_card_without_reports_or_recorded_ties_and_a_native_model(tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda *a, **k: pytest.fail("a dry run pushes nothing"))
    model = build_reward_model(tiny_backbone(tmp_path / "bb"), pooling=None)
    ckpt = save_rm(model, model.tokenizer, tmp_path / "rm", {"data": str(tmp_path / "export")}, {"n_train": 5})
    card = main(["--rm", str(ckpt), "--repo", "me/native", "--reports", str(tmp_path / "none"), "--dry-run"])
    assert "## Sycophancy audit" not in card and "## Feature correlations" not in card and "datasets:" not in card
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in card  # the offline default backbone's source
    assert f"| {tmp_path / 'export'} | 5 | not recorded | none |" in card
    assert 'from_pretrained("me/native")' in card and "trust_remote_code" not in card


def test_push_refuses_an_ensemble_and_an_old_layout_with_a_fix(tmp_path):
    (tmp_path / "ens" / "member_0").mkdir(parents=True)
    (tmp_path / "ens" / "rmlab_ensemble.json").write_text("{}")
    with pytest.raises(ValueError, match="push each member_k/ folder to its own repo"):
        main(["--rm", str(tmp_path / "ens"), "--repo", "me/ens"])
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "rmlab_config.json").write_text(json.dumps({"layout": "backbone+head"}))
    with pytest.raises(ValueError, match=f"convert it first: python -m rm.convert {tmp_path / 'old'}"):
        main(["--rm", str(tmp_path / "old"), "--repo", "me/old"])
