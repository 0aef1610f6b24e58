import pytest
import torch

from rm.device import torch_threads
from rm.collate import PackedPairCollator, PairCollator
from rm.model import (POOLING, RewardModel, build_reward_model, freeze_lower, hf_source, native_pooling,
                      transformer_blocks, use_packing)
from rm.testing import tiny_backbone, tiny_decoder


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models on a shared machine run fastest on one thread (see rm.device.torch_threads)."""
    with torch_threads(1):
        yield


def _pad(seqs, side, value=0):
    width = max(map(len, seqs))
    rows = [([value] * (width - len(s)) + s) if side == "left" else (s + [value] * (width - len(s))) for s in seqs]
    return torch.tensor(rows)


@pytest.mark.parametrize("name", sorted(POOLING))
def test_pooling_registry_ignores_padding_side(name):
    torch.manual_seed(0)
    lengths = [3, 5, 1]
    content = [torch.randn(n, 4) for n in lengths]
    width = max(lengths)
    right, left = torch.full((3, width, 4), 99.0), torch.full((3, width, 4), -99.0)
    for i, c in enumerate(content):
        right[i, :len(c)], left[i, width - len(c):] = c, c
    mask_r, mask_l = _pad([[1] * n for n in lengths], "right"), _pad([[1] * n for n in lengths], "left")
    out_r, out_l = POOLING[name](right, mask_r), POOLING[name](left, mask_l)
    torch.testing.assert_close(out_r, out_l)
    expected = {"last": [c[-1] for c in content], "cls": [c[0] for c in content], "mean": [c.mean(0) for c in content]}
    torch.testing.assert_close(out_r, torch.stack(expected[name]))


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_decoder_rewards_equal_for_left_and_right_padding(tmp_path, pooling):
    torch.manual_seed(0)
    model = build_reward_model(tiny_decoder(tmp_path / "dec"), pooling=pooling).eval()
    seqs = [[2, 4, 40, 41, 42, 3], [2, 4, 50, 3]]
    pad = model.tokenizer.pad_token_id
    with torch.no_grad():
        right = model(_pad(seqs, "right", pad), _pad([[1] * len(s) for s in seqs], "right"))
        left = model(_pad(seqs, "left", pad), _pad([[1] * len(s) for s in seqs], "left"))
    torch.testing.assert_close(right, left, atol=1e-5, rtol=1e-4)
    assert model.native == (pooling == "last")


def test_native_pooling_reads_the_config(tmp_path):
    from transformers import AutoConfig

    assert native_pooling(AutoConfig.from_pretrained(tiny_backbone(tmp_path / "enc"))) == "cls"
    assert native_pooling(AutoConfig.from_pretrained(tiny_decoder(tmp_path / "dec"))) == "last"


def test_unknown_pooling_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="pooling must be one of"):
        RewardModel(torch.nn.Identity(), "max", torch.nn.Linear(2, 1))


def test_head_runs_in_fp32_under_bf16_autocast(tmp_path):
    model = build_reward_model(tiny_backbone(tmp_path / "enc"), pooling="mean").eval()
    ids = torch.tensor([[2, 40, 41, 3]])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(ids, torch.ones_like(ids))
    assert out.dtype == torch.float32


def test_from_scratch_uses_config_overrides(tmp_path):
    model = build_reward_model(tiny_backbone(tmp_path / "enc"), pooling="mean", from_scratch=True,
                               config_overrides={"num_hidden_layers": 1}, dropout=0.0)
    assert model.config.num_hidden_layers == 1 and model.config.hidden_dropout_prob == 0.0


PAIRS = [{"chosen_ids": [2, 40, 41, 42, 3], "rejected_ids": [2, 40, 3], "chosen_types": [0, 0, 0, 1, 1],
          "rejected_types": [0, 0, 1], "margin": 0.0, "tie": False},
         {"chosen_ids": [2, 43, 3], "rejected_ids": [2, 44, 45, 46, 47, 3], "chosen_types": [0, 0, 1],
          "rejected_types": [0, 0, 0, 1, 1, 1], "margin": 0.0, "tie": False}]


@pytest.mark.parametrize("kind,pooling", [("enc", "mean"), ("enc", "last"), ("dec", "last"), ("dec", "mean")])
def test_packed_batches_give_the_padded_rewards_and_gradients(tmp_path, kind, pooling):
    folder = (tiny_backbone if kind == "enc" else tiny_decoder)(tmp_path / kind)
    feats = PAIRS if kind == "enc" else [{k: v for k, v in f.items() if "types" not in k} for f in PAIRS]
    torch.manual_seed(0)
    model = build_reward_model(folder, pooling)
    padded = PairCollator(model.tokenizer.pad_token_id, model.tokenizer.padding_side)(feats)
    padded = {k: padded[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in padded}
    reference = model(**padded)
    reference.pow(2).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    use_packing(model)
    packed = PackedPairCollator()(feats)
    rewards = model(**{k: packed[k] for k in ("input_ids", "position_ids", "cu_seq_lens", "token_type_ids") if k in packed})
    torch.testing.assert_close(rewards, reference, atol=1e-5, rtol=1e-4)
    rewards.pow(2).sum().backward()
    for name, grad in grads.items():
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, grad, atol=1e-5, rtol=1e-3)
    torch.testing.assert_close(model(**padded), reference)  # padded batches still work after use_packing
    assert model.packable and model.native == (kind == "dec" and pooling == "last")


def test_native_encoder_head_refuses_packed_batches(tmp_path):
    model = build_reward_model(tiny_backbone(tmp_path / "enc"), pooling="cls")
    packed = PackedPairCollator()(PAIRS)
    assert not model.packable
    with pytest.raises(ValueError, match="train with packing off"):
        model(packed["input_ids"], position_ids=packed["position_ids"], cu_seq_lens=packed["cu_seq_lens"])


def test_hf_source_splits_gguf_paths():
    assert hf_source("/m/x/SmolLM2.Q4_1.gguf") == ("/m/x", {"gguf_file": "SmolLM2.Q4_1.gguf"})
    assert hf_source("org/name") == ("org/name", {})


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")  # block 2's inputs need no gradient: the point
@pytest.mark.parametrize("kind,pooling", [("encoder", "mean"), ("encoder", "cls"), ("decoder", "last")])
def test_freeze_lower_stops_the_backward_at_the_first_trained_block(tmp_path, kind, pooling):
    make = tiny_backbone if kind == "encoder" else tiny_decoder
    model = build_reward_model(make(tmp_path / kind, layers=3), pooling, dropout=0.0)
    blocks = transformer_blocks(model.body)
    assert len(blocks) == 3
    freeze_lower(model, 2)
    ran = []  # blocks whose backward ran
    for i, block in enumerate(blocks):
        block.register_full_backward_pre_hook(lambda module, grad, i=i: ran.append(i))
    ids = torch.randint(5, 90, (2, 7))
    model(ids, torch.ones_like(ids)).sum().backward()
    assert ran == [2]
    frozen = {id(p) for block in blocks[:2] for p in block.parameters()}
    frozen |= {id(p) for p in model.body.get_input_embeddings().parameters()}
    for name, p in model.named_parameters():
        if id(p) in frozen:
            assert not p.requires_grad and p.grad is None, name
    trained = [name for name, p in model.named_parameters() if p.grad is not None]
    assert trained and all(p.requires_grad for p in model.parameters() if p.grad is not None)
    assert any(".2." in name for name in trained)  # the top block
    assert any(name.startswith("head") or "classifier" in name or "score" in name for name in trained)


def test_freeze_lower_checks_the_block_count(tmp_path):
    model = build_reward_model(tiny_backbone(tmp_path / "bb", layers=2), "mean")
    with pytest.raises(ValueError, match="between 0 and 2"):
        freeze_lower(model, 3)
    freeze_lower(model, 0)
    assert all(p.requires_grad for p in model.parameters())
