"""analysis.rl: the sequence-KL estimators against brute-force enumeration, RLOO advantages, the Gao RL
fit, and a tiny random policy whose proxy reward rises under RL."""
import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from analysis import rl as R
from analysis.goodhart import fit_gold_rl
from rm.score import Scores


@pytest.fixture(autouse=True)
def one_thread():
    from rm.device import torch_threads

    with torch_threads(1):
        yield


# ---- KL against enumeration -----------------------------------------------------------------

VOCAB, EOS, T_MAX, PROMPT = 4, 3, 3, [1, 2]


def tiny_lm(seed: int, sharpness: float):
    """A 1-layer Llama over a 4-token vocabulary; `sharpness` scales the output head (peakier)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=2, intermediate_size=16, max_position_embeddings=16,
                         pad_token_id=0, eos_token_id=EOS, tie_word_embeddings=False)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(sharpness)
    return model


def all_responses() -> list[list[int]]:
    """Every response of at most T_MAX tokens: ends at EOS, or is cut at T_MAX."""
    out = []
    for n in range(1, T_MAX + 1):
        for body in itertools.product([t for t in range(VOCAB) if t != EOS], repeat=n - 1):
            out.append([*body, EOS])
            if n == T_MAX:
                out += [[*body, t] for t in range(VOCAB) if t != EOS]
    return out


@torch.no_grad()
def step_by_step_logprob(model, response: list[int]) -> float:
    """log p(response | PROMPT) by one unbatched forward per token (no padding, no batching)."""
    total = 0.0
    for t, tok in enumerate(response):
        ids = torch.tensor([PROMPT + response[:t]])
        total += torch.log_softmax(model(ids).logits[0, -1].double(), -1)[tok].item()
    return total


@pytest.fixture(scope="module")
def pair():
    return tiny_lm(0, 8.0), tiny_lm(1, 8.0)


def test_enumeration_is_a_distribution_and_gives_the_exact_kl(pair):
    pi, ref = pair
    ys = all_responses()
    assert len(ys) == 1 + 3 + 9 * 4
    logp = np.array([step_by_step_logprob(pi, y) for y in ys])
    assert np.exp(logp).sum() == pytest.approx(1.0, abs=1e-9)
    logq = np.array([step_by_step_logprob(ref, y) for y in ys])
    exact = float((np.exp(logp) * (logp - logq)).sum())
    assert exact > 0.1  # the two models differ: a test of the estimators with teeth


def batch_all(ys):
    return R.token_batch([PROMPT] * len(ys), ys, pad_id=0)


def test_batched_logprobs_and_both_estimators_match_enumeration(pair):
    """Left-padded teacher forcing equals the step-by-step log-probs; weighting either estimator by
    π(y) over every y gives the exact sequence KL (both are unbiased)."""
    pi, ref = pair
    ys = all_responses()
    batch = batch_all(ys)
    with torch.no_grad():
        logits, logits_ref = R.response_logits(pi, batch), R.response_logits(ref, batch)
    logp, logq = R.token_logprobs(logits, batch), R.token_logprobs(logits_ref, batch)
    seq = logp.sum(-1).double().numpy()
    expected = np.array([step_by_step_logprob(pi, y) for y in ys])
    np.testing.assert_allclose(seq, expected, atol=1e-5)
    weights = np.exp(expected)
    exact = float((weights * (expected - np.array([step_by_step_logprob(ref, y) for y in ys]))).sum())
    mc = R.kl_sample(logp, logq, batch.mask).double().numpy()
    rb = R.kl_rao_blackwell(logits, logits_ref, batch.mask).double().numpy()
    assert float(weights @ mc) == pytest.approx(exact, abs=1e-5)
    assert float(weights @ rb) == pytest.approx(exact, abs=1e-5)
    assert (rb >= -1e-6).all() and (mc < 0).any()  # per sample: the RB terms are KLs, the log-ratio is not


def test_monte_carlo_kl_from_sampled_sequences_is_within_its_standard_error(pair):
    """Sample y ~ π with analysis.policy's decode loop; the mean summed log-ratio estimates the exact KL."""
    from analysis.policy import Policy, sample_rows

    pi, ref = pair
    ys = all_responses()
    logp = np.array([step_by_step_logprob(pi, y) for y in ys])
    exact = float((np.exp(logp) * (logp - np.array([step_by_step_logprob(ref, y) for y in ys]))).sum())

    class Tok:  # texts are token ids written as words: "1 2"
        pad_token_id, eos_token_id = 0, EOS

        def __call__(self, texts, **kw):
            rows = [[int(t) for t in s.split()] for s in texts]
            return type("Enc", (dict,), {"to": lambda self, d: self})(
                input_ids=torch.tensor(rows), attention_mask=torch.ones(len(rows), len(rows[0]), dtype=torch.long))

        def decode(self, ids, skip_special_tokens=True):
            return " ".join(map(str, ids))

    policy = Policy(pi, Tok(), "tiny", torch.float32, (EOS,))
    gen = torch.Generator().manual_seed(0)
    samples = sample_rows(policy, ["1 2"], [0] * 3000, T_MAX, 1.0, 1.0, gen)
    sampled = [list(s.tokens) for s in samples]
    batch = batch_all(sampled)
    with torch.no_grad():
        logits, logits_ref = R.response_logits(pi, batch), R.response_logits(ref, batch)
    mc = R.kl_sample(R.token_logprobs(logits, batch), R.token_logprobs(logits_ref, batch), batch.mask).numpy()
    rb = R.kl_rao_blackwell(logits, logits_ref, batch.mask).numpy()
    for est in (mc, rb):
        assert abs(est.mean() - exact) < 4 * est.std() / math.sqrt(len(est))
    assert rb.std() < mc.std()  # Rao-Blackwellised: lower variance
    np.testing.assert_allclose([s.logprob for s in samples], R.token_logprobs(logits, batch).sum(-1), atol=1e-4)


# ---- small pieces -----------------------------------------------------------------------------

def test_rloo_advantage_is_reward_minus_the_mean_of_the_others():
    r = torch.tensor([1.0, 2.0, 6.0, 0.0, 0.0, 3.0])
    torch.testing.assert_close(R.rloo_advantages(r, 3), torch.tensor([1 - 4, 2 - 3.5, 6 - 1.5, 0 - 1.5, 0 - 1.5, 3 - 0.0]))
    grouped = r.view(2, 3)  # A_i = k/(k-1) · (r_i - group mean), so each group sums to 0
    torch.testing.assert_close(R.rloo_advantages(r, 3).view(2, 3), 1.5 * (grouped - grouped.mean(-1, keepdim=True)))


def test_token_batch_aligns_responses_at_the_right_edge():
    b = R.token_batch([[5, 6, 7], [8]], [[1], [2, 3]], pad_id=0)
    assert b.input_ids.tolist() == [[5, 6, 7, 1], [0, 8, 2, 3]]
    assert b.attention_mask.tolist() == [[1, 1, 1, 1], [0, 1, 1, 1]]
    assert b.position_ids.tolist() == [[0, 1, 2, 3], [0, 0, 1, 2]]
    assert b.targets.tolist() == [[7, 1], [2, 3]] and b.mask.tolist() == [[False, True], [True, True]]


def test_objective_subtracts_std_and_the_honesty_penalty():
    scores = Scores(np.array([1.0, 1.0]), np.array([0.5, 0.0]))
    prompts = ["I think 7 × 8 is 54. Is that correct?"] * 2
    out = R.objective(scores, prompts, ["Yes, that's right!", "No, it is 56."], lam=2.0, gamma=0.5)
    np.testing.assert_allclose(out, [1.0 - 1.0 - 0.5, 1.0])


def test_gao_rl_fit_recovers_alpha_beta_and_the_peak():
    d = np.linspace(0, 6, 25)
    gain = d * (0.8 - 0.5 * np.log(np.where(d > 0, d, 1)))
    fit = fit_gold_rl(d, gain + np.random.default_rng(0).normal(scale=1e-3, size=len(d)))
    assert fit.alpha == pytest.approx(0.8, abs=5e-3) and fit.beta == pytest.approx(0.5, abs=5e-3)
    assert fit.d_star == pytest.approx(math.exp(0.8 / 0.5 - 1), rel=0.02) and fit.form == "rl"
    d_peak = d[np.argmax(gain)]
    assert abs(fit.d_star - d_peak) <= d[1]  # the fitted peak is where the curve is highest
    rising = fit_gold_rl(d, 0.3 * d + 0.2 * d * np.log(np.where(d > 0, d, 1)))
    assert rising.beta == pytest.approx(-0.2) and rising.d_star is None
    falling = fit_gold_rl(d, d * (-0.2 - 0.01 * np.log(np.where(d > 0, d, 1))))
    assert falling.alpha == pytest.approx(-0.2) and falling.d_star is None  # gold falls from the start
    assert math.isnan(fit_gold_rl(d[:2], d[:2]).alpha)


def test_config_rejects_a_group_of_one():
    with pytest.raises(ValueError, match="k must be >= 2"):
        R.RLConfig(proxy=["x"], k=1)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        R.RLConfig(proxy=["x"], steps=0)


# ---- a tiny RL run ------------------------------------------------------------------------------

class EarlyLetters:
    """Proxy: share of response words that begin with a-m (about half of the tiny vocabulary)."""

    temperature = 1.0

    def score(self, prompts, responses, batch_size=None):
        share = [np.mean([w[0] <= "m" for w in r.split()]) if r.split() else 0.0 for r in responses]
        return Scores(np.array(share), None)


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory):
    from analysis.policy import load_policy
    from rm.testing import tiny_decoder

    folder = tiny_decoder(tmp_path_factory.mktemp("policy"))
    torch.manual_seed(0)  # the tiny decoder's output head is initialised on load
    return load_policy.__wrapped__(folder, "fp32")


def tiny_config(tmp_path, **kw):
    base = dict(proxy=["fake"], gold=["arithmetic"], prompts="plain", n_train_prompts=8, n_eval_prompts=4,
                steps=16, prompts_per_step=4, k=4, n_eval=4, eval_every=4, max_new_tokens=6, lr=3e-2,
                kl_coef=0.0, lora_r=4, out=str(tmp_path / "run"), progress=False)
    return R.RLConfig(**{**base, **kw})


def test_frozen_blocks_run_once_and_give_the_full_forward_logits_and_gradients(tmp_path):
    """With adapters on the top 2 of 4 blocks only, the shared bottom states give the same logits as
    the full forward, with adapters on and off, and the same adapter gradients."""
    from analysis.policy import load_policy
    from rm.testing import tiny_decoder

    torch.manual_seed(0)
    base = load_policy.__wrapped__(tiny_decoder(tmp_path / "p4", layers=4), "fp32")
    model = R.with_lora(base, r=4, alpha=8, seed=0, layers=2).model
    with torch.no_grad():  # adapters away from their zero start, so π differs from π_ref
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.5)
    assert R.frozen_blocks(model) == 2
    batch = R.token_batch([[5, 6, 7], [8, 9]], [[10, 11], [12, 13, 14]], pad_id=base.tokenizer.pad_token_id)
    shared = R.shared_states(model, batch)
    assert shared.cut == 2 and shared.hidden.shape == (2, 5, 32) and not shared.hidden.requires_grad

    def logits_and_grads(shared):
        model.zero_grad()
        logits = R.response_logits(model, batch, shared)
        R.token_logprobs(logits, batch).sum().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        with torch.no_grad(), R.reference(model):
            ref = R.response_logits(model, batch, shared)
        return logits.detach(), ref, grads

    full, full_ref, full_grads = logits_and_grads(None)
    split, split_ref, split_grads = logits_and_grads(shared)
    torch.testing.assert_close(split, full, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(split_ref, full_ref, atol=1e-5, rtol=1e-5)
    assert (full - full_ref).abs().max() > 1e-2  # the adapters matter: the check has teeth
    assert full_grads.keys() == split_grads.keys() and len(full_grads) > 0
    for name in full_grads:
        torch.testing.assert_close(split_grads[name], full_grads[name], atol=1e-5, rtol=1e-4)
    assert len(R.decoder_stack(model).layers) == 4  # the blocks are put back


def test_states_recorded_while_decoding_match_the_frozen_blocks_forward(tmp_path):
    """The decode loop's recorded block inputs, laid out like the teacher-forcing batch, equal the
    frozen blocks' own forward at every position a logit is read from (each row's last token is never
    fed back), so the policy and reference log-probs come out the same."""
    from analysis.policy import load_policy
    from rm.testing import tiny_decoder

    torch.manual_seed(0)
    base = load_policy.__wrapped__(tiny_decoder(tmp_path / "p4", layers=4), "fp32")
    policy = R.with_lora(base, r=4, alpha=8, seed=0, layers=2)
    with torch.no_grad():
        for name, p in policy.model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.5)
    roll = R.rollouts(policy, ["what is two plus two", "say yes please"], 3, 7, torch.Generator().manual_seed(1))
    assert roll.trace is not None and roll.trace.block == 2 and len(set(map(len, roll.response_ids))) > 1
    batch = R.token_batch(roll.prompt_ids, roll.response_ids, base.tokenizer.pad_token_id)
    traced, computed = R.traced_states(roll, batch), R.shared_states(policy.model, batch)
    read = batch.attention_mask.bool().clone()
    read[:, -1] = False  # the last token of every row: no logit read from it is kept
    torch.testing.assert_close(traced.hidden[read], computed.hidden[read], atol=1e-5, rtol=1e-5)
    from_trace = R.logprobs_and_kl(policy.model, batch, grad=False, rao_blackwell=True, shared=traced)
    from_forward = R.logprobs_and_kl(policy.model, batch, grad=False, rao_blackwell=True)
    for a, b in zip(from_trace, from_forward):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert from_forward[2].abs().max() > 1e-3  # π and π_ref differ: the comparison has teeth


def test_tiny_rl_run_raises_the_proxy_and_logs_kl(tmp_path, tiny_policy):
    calls = []
    config = tiny_config(tmp_path)
    result, report = R.run(config, proxy=EarlyLetters(), policy=tiny_policy,
                           progress=lambda step, total, rec: calls.append((step, total)))
    curve = result.curve
    assert curve["step"].tolist() == [0, 4, 8, 12, 16] and calls[-1] == (16, 16)
    assert curve["kl"].iloc[0] == 0.0 and curve["kl_rb"].iloc[0] == pytest.approx(0.0, abs=1e-6)
    assert curve["kl_rb"].iloc[-1] > 0.05
    assert curve["proxy"].iloc[-1] > curve["proxy"].iloc[0] + 0.15
    assert result.train_log["proxy"].tail(4).mean() > result.train_log["proxy"].head(4).mean()
    saved = json.loads((tmp_path / "run" / "curve.json").read_text())
    assert [r["step"] for r in saved["rows"]] == [0, 4, 8, 12, 16] and saved["fit"]["form"] == "rl"
    assert {"step", "kl", "proxy", "gold"} <= set(report["rows"].columns) and report["fit"]["form"] == "rl"
    samples = pd.read_parquet(tmp_path / "run" / "samples.parquet")
    assert len(samples) == 5 * 4 * 4 and (tmp_path / "run" / "plot.png").stat().st_size > 10_000
    assert result.bon is not None and result.bon.curves["n"].tolist() == [1, 2, 4]
    again = R.train_rl(config, proxy=EarlyLetters(), policy=tiny_policy)
    assert again.cache_hit and again.curve["proxy"].tolist() == pytest.approx(curve["proxy"].tolist())


def test_stop_hook_ends_the_run_after_the_current_step_with_an_evaluation(tmp_path, tiny_policy):
    steps = []
    config = tiny_config(tmp_path, steps=10, eval_every=5)
    result = R.train_rl(config, proxy=EarlyLetters(), policy=tiny_policy,
                        progress=lambda s, t, r: steps.append(s), stop=lambda: len(steps) >= 2)
    assert result.stopped and steps == [1, 2, 3]  # stop() said True after step 3's update
    assert result.curve["step"].tolist() == [0, 3]
    assert not R.load_finished(tmp_path / "run", config)  # a stopped run is not reused
