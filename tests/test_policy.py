"""analysis.policy on a tiny random Llama built from a config (no download)."""
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from analysis import policy as P
from rm.testing import tiny_decoder

PROMPTS = ["what is two plus two", "say yes"]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and on a shared machine a second thread stalls them."""
    with P.torch_threads(1):
        yield


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> P.Policy:
    folder = tiny_decoder(tmp_path_factory.mktemp("policy"))
    P.load_policy.cache_clear()
    return P.load_policy(folder, precision="fp32")


def test_chunk_rows_packs_prompts_n_rows_each():
    assert P.chunk_rows(2, 3, 4) == [[0, 0, 0, 1], [1, 1]]
    assert P.chunk_rows(3, 1, 8) == [[0, 1, 2]]


def test_resolve_spec_accepts_gguf_path_tuple_and_id():
    assert P.resolve_spec("models/x/m.Q4.gguf") == ("models/x", "m.Q4.gguf")
    assert P.resolve_spec(("dir", "f.gguf")) == ("dir", "f.gguf")
    assert P.resolve_spec("HuggingFaceTB/SmolLM2-135M-Instruct") == ("HuggingFaceTB/SmolLM2-135M-Instruct", None)
    assert P.policy_name("models/x/m.Q4.gguf") == "m.Q4.gguf"


def test_default_policy_is_the_packaged_gguf():
    folder, gguf = P.default_policy()
    assert gguf == P.GGUF_FILE and (Path(folder) / gguf).is_file()


def test_warpers_reject_bad_settings():
    with pytest.raises(ValueError, match="top_p"):
        P.warpers(1.0, 0.0)
    with pytest.raises(ValueError, match="temperature"):
        P.warpers(-0.5, 1.0)


def test_chat_text_uses_template_and_system(tiny):
    text = P.chat_text(tiny.tokenizer, "hi", system="be kind")
    assert text == "<s><|system|> be kind</s><|user|> hi</s><|assistant|> "


@pytest.mark.parametrize("early_stop", [False, True])
@pytest.mark.parametrize("prune_share", [0.125, 1.0])  # drop finished rows at once / keep them to the end
def test_greedy_matches_transformers_generate(tiny, early_stop, prune_share, monkeypatch):
    """Shared prefill, cache gather to n rows and row dropping give `model.generate`'s tokens."""
    monkeypatch.setattr(P, "PRUNE_SHARE", prune_share)
    tok = tiny.tokenizer
    texts = [P.chat_text(tok, p) for p in PROMPTS]  # different lengths -> left padding
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    ref = tiny.model.generate(**enc, do_sample=False, max_new_tokens=8, pad_token_id=tok.pad_token_id)
    ref = ref[:, enc["input_ids"].shape[1]:].tolist()
    # early_stop: the first prompt's 3rd greedy token becomes a stop token, so its rows leave the batch early
    policy = replace(tiny, stop_ids=(ref[0][2],)) if early_stop else tiny
    ours = P.generate(PROMPTS, n=3, max_new_tokens=8, temperature=0, policy=policy, show_progress=False)
    for row, samples in zip(ref, ours):
        stop = next((i + 1 for i, t in enumerate(row) if t in policy.stop_ids), len(row))
        assert [list(s.tokens) for s in samples] == [row[:stop]] * 3
        assert all(s.finished == (stop < len(row) or row[-1] in policy.stop_ids) for s in samples)
    assert not early_stop or len(ours[0][0].tokens) <= 3


def test_logprob_is_the_teacher_forced_sum(tiny):
    (samples,) = P.generate(PROMPTS[:1], n=3, max_new_tokens=6, seed=1, policy=tiny, show_progress=False)
    prompt = tiny.tokenizer(P.chat_text(tiny.tokenizer, PROMPTS[0]), add_special_tokens=False)["input_ids"]
    for s in samples:
        ids = torch.tensor([prompt + list(s.tokens)])
        with torch.no_grad():
            logp = torch.log_softmax(tiny.model(ids).logits[0, len(prompt) - 1:-1].float(), -1)  # (T, V)
        expected = logp.gather(-1, torch.tensor(s.tokens)[:, None]).sum().item()
        assert s.logprob == pytest.approx(expected, abs=1e-3)
        assert s.n_tokens == len(s.tokens) and 1 <= s.n_tokens <= 6


def test_sampling_is_seeded_and_shaped(tiny):
    kw = dict(n=5, max_new_tokens=6, policy=tiny, show_progress=False, batch_size=4)
    calls = []
    a = P.generate(PROMPTS, seed=3, progress=lambda done, total: calls.append((done, total)), **kw)
    b = P.generate(PROMPTS, seed=3, **kw)
    c = P.generate(PROMPTS, seed=4, **kw)
    assert [len(r) for r in a] == [5, 5]
    assert [[s.tokens for s in r] for r in a] == [[s.tokens for s in r] for r in b]
    assert [[s.tokens for s in r] for r in a] != [[s.tokens for s in r] for r in c]
    assert calls == [(4, 10), (8, 10), (10, 10)]


def test_tiny_top_p_is_greedy(tiny):
    greedy = P.generate(PROMPTS, n=1, max_new_tokens=6, temperature=0, policy=tiny, show_progress=False)
    nucleus = P.generate(PROMPTS, n=2, max_new_tokens=6, top_p=1e-6, seed=9, policy=tiny, show_progress=False)
    assert all(s.tokens == g[0].tokens for g, r in zip(greedy, nucleus) for s in r)


def test_draft_agreeing_and_correcting_steers_with_both_system_prompts(tiny, monkeypatch):
    seen = []
    real = P.generate_chats
    monkeypatch.setattr(P, "generate_chats", lambda texts, *a, **k: seen.extend(texts) or real(texts, *a, **k))
    draft = P.draft_agreeing_and_correcting("two plus two is five right", policy=tiny, max_new_tokens=4)
    assert set(draft) == {"agreeing", "correcting"} and all(isinstance(v, str) for v in draft.values())
    assert P.STEER["agreeing"] in seen[0] and P.STEER["correcting"] in seen[1]


def test_generate_rejects_empty_budget(tiny):
    with pytest.raises(ValueError, match="max_new_tokens"):
        P.generate(PROMPTS, max_new_tokens=0, policy=tiny)


def test_torch_threads_sets_and_restores():
    before = torch.get_num_threads()
    with P.torch_threads(before + 1):
        assert torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before
    with P.torch_threads(None):
        assert torch.get_num_threads() == before
