import torch

from rm.testing import tiny_backbone, tiny_decoder


def test_tiny_models_load_with_auto_classes(tmp_path):
    from transformers import AutoModel, AutoTokenizer

    enc_tok = AutoTokenizer.from_pretrained(tiny_backbone(tmp_path / "enc"))
    dec_dir = tiny_decoder(tmp_path / "dec")
    dec_tok = AutoTokenizer.from_pretrained(dec_dir)
    assert enc_tok.unk_token_id not in enc_tok("what is two plus two?")["input_ids"]  # real words, no [UNK]
    assert dec_tok.chat_template and dec_tok.pad_token_id != dec_tok.eos_token_id
    model = AutoModel.from_pretrained(dec_dir)
    assert sum(p.numel() for p in model.parameters()) < 100_000
    out = model(**dec_tok(["hi there"], return_tensors="pt")).last_hidden_state
    assert out.shape[-1] == 32 and torch.isfinite(out).all()
