"""Interop with the ecosystem: TRL's RewardTrainer on our TRL export, a Hub-style decoder RM with a chat template."""
import math

import pytest
import torch

from labeling.export import ExportConfig, export, load_export
from rm.device import torch_threads
from rm.testing import tiny_backbone, tiny_qwen3_rm
from test_export import _peer_store


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models on a shared machine run fastest on one thread (see rm.device.torch_threads)."""
    with torch_threads(1):
        yield


def test_trl_reward_trainer_trains_on_the_trl_export(tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    with _peer_store(tmp_path) as store:
        export(store, ExportConfig(out=str(tmp_path / "trl"), format="parquet", profile="trl"))
    ds = load_export(tmp_path / "trl")
    assert ds.column_names == ["prompt", "chosen", "rejected", "margin"] and len(ds) == 4  # no tie rows
    backbone = tiny_backbone(tmp_path / "bb")
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    tokenizer.eos_token = tokenizer.sep_token  # TRL appends eos; BERT tokenizers have none
    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    before = model.classifier.weight.detach().clone()
    args = RewardConfig(output_dir=str(tmp_path / "out"), max_steps=3, per_device_train_batch_size=2,
                        learning_rate=1e-3, report_to="none", save_strategy="no", logging_steps=1,
                        use_cpu=True, disable_tqdm=True, max_length=64)
    trainer = RewardTrainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer)
    result = trainer.train()
    assert result.global_step == 3 and math.isfinite(result.training_loss)
    assert len(trainer.train_dataset) == 4
    assert not torch.equal(before, model.classifier.weight.detach())


def test_a_decoder_rm_with_a_chat_template_scores_as_its_own_template_says(tmp_path):
    from transformers import AutoModelForSequenceClassification

    from rm.score import load_scorer

    tokenizer = tiny_qwen3_rm(tmp_path / "qwen3-rm")
    prompt, responses = "what is two plus two?", ["four", "it is five, sure", "no"]
    scorer = load_scorer(str(tmp_path / "qwen3-rm"), precision="fp32")
    got = scorer.score(prompt, responses).mean
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "qwen3-rm").eval()
    expected = []
    for response in responses:  # the way the model's own card says to score: its chat template
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt},
                                             {"role": "assistant", "content": response}], tokenize=True)
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids
        with torch.no_grad():
            expected.append(model(input_ids=torch.tensor([ids])).logits[0, 0].item())
    assert scorer.models[0].pooling == "last" and scorer.models[0].native
    assert got.tolist() == pytest.approx(expected, abs=1e-5)
