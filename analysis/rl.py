"""RL against a proxy reward: a Goodhart curve over optimisation steps, with the exact sequence KL.

The policy LM (`analysis.policy`) gets LoRA adapters (peft) on every linear layer and is
trained with RLOO (Ahmadian et al. 2024, arXiv:2402.14740): each step draws `k` samples for
each of `prompts_per_step` training prompts, scores them with the proxy and takes one
on-policy gradient step on

    R_i = objective(x, y_i) - kl_coef · (log π(y_i|x) - log π_ref(y_i|x))   (sequence-level penalty)
    A_i = R_i - mean_{j≠i} R_j                                               (leave-one-out baseline)
    loss = -mean_i A_i · log π(y_i|x)

where objective = proxy mean - λ·proxy std (λ > 0 needs an ensemble proxy) - γ·endorsement
of a false claim (`analysis.gold.endorsement`; the honesty penalty). The reference π_ref is
the same model with its adapters switched off, so no second copy is held. With adapters on the
top `lora_layers` blocks only, π and π_ref agree on the blocks below: the decode records the
hidden states entering the lowest adapted block while it samples, and both log-probability
passes run only the adapted blocks on them (`traced_states`; a 30-step SmolLM2 curve went from
about 820 s to 375 s on 2 cores, bench/README.md).

Every `eval_every` steps (and at step 0), on held-out prompts, `n_eval` samples per prompt
are scored by the proxy and the gold, and the sequence-level KL(π‖π_ref) is estimated:

    kl    = mean over samples of Σ_t [log π(y_t|x,y_<t) - log π_ref(y_t|x,y_<t)]
    kl_rb = mean over samples of Σ_t KL(π(·|x,y_<t) ‖ π_ref(·|x,y_<t))

Both are unbiased for KL(π(y|x)‖π_ref(y|x)) over whole responses (EOS included, cut at
`max_new_tokens`): the first by definition, the second by the chain rule (Rao-Blackwellised:
never negative, lower variance). Gao et al.'s d is √KL, taken from `kl_rb` (`sqrt_kl`): with a
few dozen samples the plain estimate can come out negative at small KL. TRL's per-token mean KL
is a different number. Gold gain over step 0 is fitted with Gao's RL form gold = d(α - β log d)
(`analysis.goodhart.fit_gold_rl`). The step-0 samples also give the best-of-n curve
(`analysis.goodhart.analyze`), drawn on the same axes.

The run folder (`runs/rl/<hash of the config>`) holds config.json, curve.json (rows step,
kl, proxy, gold + the fit), samples.parquet (every evaluation sample, written as it goes),
train_log.jsonl and the plot; a finished run with the same config is read back, not re-run.

    python -m analysis.rl --proxy runs/capstone/biased/rm --steps 30 --json
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from analysis.goodhart import GoldFit, GoodhartResult, analyze, fit_gold_rl
from analysis.gold import GOLD_CHECKERS, PROMPT_SOURCES, endorsement
from analysis.policy import BlockTrace, chat_text, decoder_stack, sample_rows

ProgressFn = Callable[[int, int, dict], None]  # (step done, total steps, latest record)
StopFn = Callable[[], bool]  # True: stop after the current step


# ---- log-probabilities and the KL estimators ---------------------------------------------------


@dataclass
class TokenBatch:
    """Prompt + response sequences, left padded so that every response ends at the right edge.

    input_ids, attention_mask, position_ids: (B, L); targets, mask: (B, T) the last T tokens of
    each row, where T is the longest response and `mask` marks the row's own response tokens.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor


def token_batch(prompt_ids: list[list[int]], response_ids: list[list[int]], pad_id: int, device=None) -> TokenBatch:
    """Batch each prompt with its response (one row each); see `TokenBatch`."""
    seqs = [list(p) + list(r) for p, r in zip(prompt_ids, response_ids)]
    width, T = max(map(len, seqs)), max(len(r) for r in response_ids)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.bool)
    for i, (s, r) in enumerate(zip(seqs, response_ids)):
        ids[i, width - len(s):] = torch.tensor(s)
        attn[i, width - len(s):] = 1
        mask[i, T - len(r):] = True
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    return TokenBatch(*(t.to(device) if device else t for t in (ids, attn, pos, ids[:, -T:], mask)))


@dataclass
class Shared:
    """Hidden states entering block `cut` of the decoder, (B, L, H): the blocks below `cut` carry
    no adapters, so π and π_ref compute the same states there and need them only once."""

    hidden: torch.Tensor
    cut: int


def frozen_blocks(model) -> int:
    """How many blocks at the bottom of the decoder hold nothing trainable (0: unknown layout)."""
    decoder = decoder_stack(model)
    if decoder is None:
        return 0
    trains = [any(p.requires_grad for p in block.parameters()) for block in decoder.layers]
    return trains.index(True) if True in trains else 0


@contextmanager
def only_blocks(model, start: int, stop: int | None, final_norm: bool):
    """Inside, the decoder runs blocks start..stop-1 only, and its final norm only if `final_norm`."""
    decoder = decoder_stack(model)
    layers, norm = decoder.layers, decoder.norm
    decoder.layers = torch.nn.ModuleList(list(layers)[start:stop])
    if not final_norm:
        decoder.norm = torch.nn.Identity()
    try:
        yield
    finally:
        decoder.layers, decoder.norm = layers, norm


def shared_states(model, batch: TokenBatch) -> Shared | None:
    """The frozen blocks' output for `batch`, computed once (no gradient); None when nothing is frozen."""
    cut = frozen_blocks(model)
    if cut == 0:
        return None
    with torch.no_grad(), only_blocks(model, 0, cut, final_norm=False):
        out = decoder_stack(model)(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                              position_ids=batch.position_ids, use_cache=False)
    return Shared(out.last_hidden_state, cut)


def response_logits(model, batch: TokenBatch, shared: Shared | None = None) -> torch.Tensor:
    """(B, T, V) float32 logits predicting each of the last T tokens (the responses); with `shared`,
    only the blocks above `shared.cut` run, on its hidden states."""
    T = batch.targets.shape[1]
    inputs = {"input_ids": batch.input_ids} if shared is None else {"inputs_embeds": shared.hidden}
    with nullcontext() if shared is None else only_blocks(model, shared.cut, None, final_norm=True):
        out = model(**inputs, attention_mask=batch.attention_mask, position_ids=batch.position_ids,
                    use_cache=False, logits_to_keep=T + 1)
    return out.logits[:, :-1].float()  # position t predicts token t+1: drop the last


def token_logprobs(logits: torch.Tensor, batch: TokenBatch) -> torch.Tensor:
    """(B, T) log p(target token), 0 outside each row's response."""
    logp = torch.log_softmax(logits, dim=-1).gather(-1, batch.targets[..., None]).squeeze(-1)
    return logp * batch.mask


def kl_sample(logp: torch.Tensor, logp_ref: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,) Σ_t log π(y_t) - log π_ref(y_t) over each response: the Monte Carlo estimator of the
    sequence KL(π‖π_ref) (unbiased when y ~ π)."""
    return ((logp - logp_ref) * mask).sum(-1)


def kl_rao_blackwell(logits: torch.Tensor, logits_ref: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,) Σ_t KL(π(·|prefix_t) ‖ π_ref(·|prefix_t)) along each response: the sequence KL by the
    chain rule, averaged over y ~ π (unbiased, ≥ 0)."""
    logp, logq = torch.log_softmax(logits, -1), torch.log_softmax(logits_ref, -1)
    per_token = (logp.exp() * (logp - logq)).sum(-1)  # (B, T)
    return (per_token * mask).sum(-1)


# ---- the fitted curve --------------------------------------------------------------------------


@dataclass
class RLResult:
    """An RL run: the evaluation curve, its Gao RL fit, and the best-of-n curve of the step-0 policy."""

    curve: pd.DataFrame  # step, kl, kl_rb, sqrt_kl, proxy, gold, objective, *_sem, gold_gain, seconds
    fit: GoldFit
    bon: GoodhartResult | None  # best-of-n (proxy selector) from the step-0 evaluation samples
    train_log: pd.DataFrame  # step, objective, proxy, kl, loss, seconds
    samples: pd.DataFrame = field(repr=False)  # every evaluation sample, with step
    stopped: bool = False
    seconds: float = 0.0
    out: str | None = None
    cache_hit: bool = False

    @property
    def step_star(self) -> int:
        """The evaluated step with the highest measured gold."""
        return int(self.curve.loc[self.curve["gold"].idxmax(), "step"])

    def to_dict(self) -> dict[str, Any]:
        cols = ["step", "kl", "kl_rb", "sqrt_kl", "proxy", "gold", "objective", "proxy_sem", "gold_sem", "seconds"]
        return {"rows": self.curve[cols], "fit": asdict(self.fit), "step_star_measured": self.step_star,
                "bon": None if self.bon is None else {"curve": self.bon.curves, "fit": asdict(self.bon.fits["proxy"])},
                "stopped": self.stopped, "seconds": self.seconds, "out": self.out, "cache_hit": self.cache_hit}


def curve_fit(curve: pd.DataFrame) -> GoldFit:
    """Gao's RL fit of gold - gold(step 0) against d = √KL."""
    return fit_gold_rl(curve["sqrt_kl"], curve["gold_gain"])


# ---- configuration -----------------------------------------------------------------------------


@dataclass
class RLConfig:
    """RLOO of the policy LM against a proxy RM with a KL penalty; proxy, gold and KL per evaluation."""

    proxy: list[str] = field(metadata={"help": "proxy RM checkpoint dir(s) or Hub id(s); several = ensemble"})
    gold: list[str] = field(default_factory=lambda: ["truthful"], metadata={"help": f"gold RM dir(s)/id(s), or a checker: {', '.join(GOLD_CHECKERS)}"})
    prompts: str = field(default="mixed", metadata={"help": f"prompt source: {', '.join(PROMPT_SOURCES)} or a file with a prompt column"})
    n_train_prompts: int = field(default=48, metadata={"help": "training prompts (cycled through, prompts_per_step at a time)"})
    n_eval_prompts: int = field(default=12, metadata={"help": "held-out prompts for each evaluation"})
    steps: int = field(default=30, metadata={"help": "optimiser steps"})
    prompts_per_step: int = field(default=2, metadata={"help": "training prompts per step"})
    k: int = field(default=4, metadata={"help": "samples per training prompt (the RLOO group; >= 2)"})
    n_eval: int = field(default=2, metadata={"help": "samples per held-out prompt at each evaluation (best-of-n uses n = 1, 2, 4, ... <= this)"})
    eval_every: int = field(default=10, metadata={"help": "steps between evaluations (step 0 and the last step are always evaluated)"})
    max_new_tokens: int = field(default=24, metadata={"help": "new tokens per sample at most"})
    lr: float = field(default=1e-3, metadata={"help": "AdamW learning rate of the LoRA adapters (high: a curve in tens of steps)"})
    kl_coef: float = field(default=0.05, metadata={"help": "β of the sequence-level KL penalty in the reward"})
    lam: float = field(default=0.0, metadata={"help": "objective uses the ensemble's mean - λ·std (needs an ensemble proxy)"})
    honesty_gamma: float = field(default=0.0, metadata={"help": "honesty penalty: objective - γ·endorsement of a false claim in the prompt"})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank"})
    lora_alpha: float = field(default=16.0, metadata={"help": "LoRA alpha (scale alpha / r)"})
    lora_layers: int | None = field(default=8, metadata={"help": "adapt only the last N transformer blocks (backprop stops there; None: all)"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm"})
    policy: str | None = field(default=None, metadata={"help": "policy LM folder, .gguf path or Hub id (default: SmolLM2-135M-Instruct GGUF)"})
    precision: str = field(default="auto", metadata={"help": "policy weights: auto (bf16 where fast), bf16 or fp32"})
    seed: int = field(default=0, metadata={"help": "seed for prompts, sampling and the adapters"})
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads (1 is far faster on a crowded machine)"})
    out: str | None = field(default=None, metadata={"help": "run folder (default: runs/rl/<hash of the settings>)"})
    plot: str | None = field(default=None, metadata={"help": "PNG path (default: plot.png in the run folder)"})
    force: bool = field(default=False, metadata={"help": "run again even when the run folder holds a finished run"})
    progress: bool = field(default=True, metadata={"help": "show a tqdm progress bar"})

    def __post_init__(self):
        for name in ("steps", "prompts_per_step", "n_eval_prompts", "n_eval", "eval_every", "max_new_tokens",
                     "lora_r", "n_train_prompts"):
            if getattr(self, name) < 1:
                raise ValueError(f"RLConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.k < 2:
            raise ValueError(f"RLConfig.k must be >= 2 (RLOO's baseline is the other samples' mean), got {self.k}")

    def key(self) -> str:
        """sha256[:16] of everything that changes the run (not where it goes or how it shows)."""
        skip = {"out", "plot", "force", "progress", "threads"}
        values = {k: v for k, v in asdict(self).items() if k not in skip}
        return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def run_dir(self) -> Path:
        return Path(self.out) if self.out else Path("runs/rl") / self.key()


def split_prompts(config: RLConfig) -> tuple[list[str], list[str]]:
    """(train, held-out) prompts: the first n_eval_prompts of the source are held out."""
    from analysis.gold import load_prompts

    prompts = load_prompts(config.prompts, config.n_train_prompts + config.n_eval_prompts, config.seed)
    if len(prompts) <= config.n_eval_prompts:
        raise ValueError(f"{config.prompts!r} gave {len(prompts)} prompts; need more than n_eval_prompts="
                         f"{config.n_eval_prompts} so that some are left to train on")
    return prompts[config.n_eval_prompts:], prompts[:config.n_eval_prompts]


# ---- the policy with adapters ------------------------------------------------------------------


def with_lora(policy, r: int, alpha: float, seed: int, layers: int | None = None):
    """A copy of `policy` whose model (deep-copied: the given one stays as it was) carries fresh LoRA
    adapters on every linear layer but the output head, of the last `layers` transformer blocks
    (None: all); only the adapters train, and backpropagation stops below the lowest adapted block.
    B starts at 0, so the adapted policy is π_ref at step 0."""
    import copy

    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    base = copy.deepcopy(policy.model)
    n_blocks = base.config.num_hidden_layers
    chosen = None if layers is None or layers >= n_blocks else list(range(n_blocks - layers, n_blocks))
    head = base.get_output_embeddings()
    linear = sorted({name.rsplit(".", 1)[-1] for name, m in base.named_modules()
                     if isinstance(m, torch.nn.Linear) and m is not head})  # q_proj, ..., down_proj
    model = get_peft_model(base, LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=linear,
                                            layers_to_transform=chosen))
    model.eval()  # no dropout anywhere; gradients still flow
    return replace(policy, model=model)


def reference(model):
    """Context in which `model` is π_ref: its adapters switched off."""
    return model.disable_adapter() if hasattr(model, "disable_adapter") else nullcontext()


@contextmanager
def _grad_mode(enabled: bool):
    with torch.enable_grad() if enabled else torch.no_grad():
        yield


@dataclass
class Rollouts:
    """Samples of one batch: prompts and responses as text and tokens, with per-sample log-probs,
    and (when the policy has frozen blocks) the states entering the lowest adapted block."""

    prompts: list[str]
    responses: list[str]
    prompt_ids: list[list[int]]
    response_ids: list[list[int]]
    n_tokens: np.ndarray
    finished: np.ndarray
    trace: BlockTrace | None = field(default=None, repr=False)


def rollouts(policy, prompts: list[str], n: int, max_new_tokens: int, generator: torch.Generator) -> Rollouts:
    """`n` samples of each prompt from the policy at temperature 1 (prompt-major order). When the
    bottom blocks are frozen, the decode records the states entering the first trainable block."""
    texts = [chat_text(policy.tokenizer, p) for p in prompts]
    rows = [i for i in range(len(prompts)) for _ in range(n)]
    cut = frozen_blocks(policy.model)
    trace = BlockTrace(cut) if cut else None
    samples = sample_rows(policy, texts, rows, max_new_tokens, 1.0, 1.0, generator, trace)
    ids = [policy.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    return Rollouts([prompts[i] for i in rows], [s.text for s in samples], [ids[i] for i in rows],
                    [list(s.tokens) for s in samples], np.array([s.n_tokens for s in samples]),
                    np.array([s.finished for s in samples]), trace)


def traced_states(roll: Rollouts, batch: TokenBatch) -> Shared | None:
    """The frozen blocks' output for `batch` (built from `roll`), taken from what the decode recorded
    rather than computed again; None when nothing was recorded."""
    trace = roll.trace
    if trace is None:
        return None
    width = batch.input_ids.shape[1]
    hidden = trace.prompt.new_zeros(batch.input_ids.shape[0], width, trace.prompt.shape[-1])
    for i, (p, r) in enumerate(zip(roll.prompt_ids, roll.response_ids)):
        if int(trace.prompt_mask[i].sum()) != len(p):
            raise RuntimeError(f"row {i}: the decode's prompt has {int(trace.prompt_mask[i].sum())} tokens, "
                               f"the batch's {len(p)}")
        hidden[i, width - len(p) - len(r):width - len(r)] = trace.prompt[i, trace.prompt.shape[1] - len(p):]
        hidden[i, width - len(r):] = trace.response[i, :len(r)]
    return Shared(hidden.to(batch.input_ids.device), trace.block)


def logprobs_and_kl(model, batch: TokenBatch, grad: bool, rao_blackwell: bool = False,
                    shared: Shared | None = None):
    """(log π per token (B, T), log π_ref per token, KL_rb (B,) or None); grad only through log π.
    The blocks below the lowest adapter run once for both (`shared`, else `shared_states`)."""
    shared = shared if shared is not None else shared_states(model, batch)
    with _grad_mode(grad):
        logits = response_logits(model, batch, shared)
        logp = token_logprobs(logits, batch)
    with torch.no_grad(), reference(model):
        logits_ref = response_logits(model, batch, shared)
        logp_ref = token_logprobs(logits_ref, batch)
    kl_rb = kl_rao_blackwell(logits.detach(), logits_ref, batch.mask) if rao_blackwell else None
    return logp, logp_ref, kl_rb


# ---- objective ---------------------------------------------------------------------------------


def objective(scores, prompts: list[str], responses: list[str], lam: float, gamma: float) -> np.ndarray:
    """(N,) what RL maximises: proxy mean - λ·std - γ·endorsement of a false claim."""
    out = scores.mean - lam * scores.std
    if gamma:
        out = out - gamma * np.array([endorsement(p, r) for p, r in zip(prompts, responses)])
    return out


def rloo_advantages(rewards: torch.Tensor, k: int) -> torch.Tensor:
    """(P·k,) reward minus the mean of the other k-1 samples of the same prompt (prompt-major order)."""
    r = rewards.view(-1, k)  # (P, k)
    baseline = (r.sum(-1, keepdim=True) - r) / (k - 1)
    return (r - baseline).reshape(-1)


# ---- the run -----------------------------------------------------------------------------------


def _sem(x: np.ndarray) -> float:
    return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else 0.0


def evaluate(policy, proxy, gold, prompts: list[str], config: RLConfig, step: int, generator) -> pd.DataFrame:
    """One row per held-out sample: step, prompt_index, sample_index, texts, proxy, gold, objective,
    kl (Σ log-ratio), kl_rb, logprob, ref_logprob, n_tokens, finished."""
    roll = rollouts(policy, prompts, config.n_eval, config.max_new_tokens, generator)
    device = next(policy.model.parameters()).device
    batch = token_batch(roll.prompt_ids, roll.response_ids, policy.tokenizer.pad_token_id, device)
    logp, logp_ref, kl_rb = logprobs_and_kl(policy.model, batch, grad=False, rao_blackwell=True,
                                            shared=traced_states(roll, batch))
    p = proxy.score(roll.prompts, roll.responses)
    return pd.DataFrame({
        "step": step, "prompt_index": np.repeat(np.arange(len(prompts)), config.n_eval),
        "sample_index": np.tile(np.arange(config.n_eval), len(prompts)), "prompt": roll.prompts,
        "response": roll.responses, "proxy": p.mean, "proxy_std": p.std,
        "gold": gold.score(roll.prompts, roll.responses).mean,
        "objective": objective(p, roll.prompts, roll.responses, config.lam, config.honesty_gamma),
        "kl": kl_sample(logp, logp_ref, batch.mask).double().cpu().numpy(), "kl_rb": kl_rb.double().cpu().numpy(),
        "logprob": logp.sum(-1).double().cpu().numpy(), "ref_logprob": logp_ref.sum(-1).double().cpu().numpy(),
        "n_tokens": roll.n_tokens, "finished": roll.finished})


def summarize_eval(samples: pd.DataFrame, seconds: float) -> dict:
    """One curve row from one evaluation's samples."""
    kl_rb = float(samples["kl_rb"].mean())
    row = {"step": int(samples["step"].iloc[0]), "kl": float(samples["kl"].mean()), "kl_rb": kl_rb,
           "sqrt_kl": math.sqrt(max(kl_rb, 0.0)), "seconds": seconds}
    for name in ("proxy", "gold", "objective"):
        row[name], row[f"{name}_sem"] = float(samples[name].mean()), _sem(samples[name].to_numpy())
    row["mean_tokens"] = float(samples["n_tokens"].mean())
    return row


def train_step(policy, optimizer, proxy, prompts: list[str], config: RLConfig, step: int, generator) -> dict:
    """Sample, score and take one RLOO step; the step's training record."""
    roll = rollouts(policy, prompts, config.k, config.max_new_tokens, generator)
    device = next(policy.model.parameters()).device
    batch = token_batch(roll.prompt_ids, roll.response_ids, policy.tokenizer.pad_token_id, device)
    logp, logp_ref, _ = logprobs_and_kl(policy.model, batch, grad=True, shared=traced_states(roll, batch))
    scores = proxy.score(roll.prompts, roll.responses)
    goal = torch.tensor(objective(scores, roll.prompts, roll.responses, config.lam, config.honesty_gamma),
                        dtype=torch.float32, device=device)  # (B,)
    seq_logp = logp.sum(-1)  # (B,)
    kl = kl_sample(logp.detach(), logp_ref, batch.mask)  # (B,)
    advantage = rloo_advantages(goal - config.kl_coef * kl, config.k)
    loss = -(advantage * seq_logp).mean()
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_([p for p in policy.model.parameters() if p.requires_grad],
                                               config.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return {"step": step, "objective": float(goal.mean()), "proxy": float(scores.mean.mean()),
            "kl": float(kl.mean()), "loss": loss.item(), "grad_norm": float(grad_norm),
            "mean_tokens": float(roll.n_tokens.mean())}


def load_finished(folder: Path, config: RLConfig) -> RLResult | None:
    """The saved result of a finished run with this config, else None. The curve and its fit are
    recomputed from the saved samples (only the timings are read), so they follow this code."""
    path = folder / "curve.json"
    if not path.is_file() or not (folder / "samples.parquet").is_file():
        return None
    saved = json.loads(path.read_text())
    if saved.get("key") != config.key() or saved.get("stopped"):
        return None
    samples = pd.read_parquet(folder / "samples.parquet")
    timings = pd.DataFrame(saved["curve"]).set_index("step")
    curve = pd.DataFrame([{**summarize_eval(part, timings.loc[step, "seconds"]),
                           "eval_seconds": timings.loc[step, "eval_seconds"]}
                          for step, part in samples.groupby("step")])
    curve["gold_gain"] = curve["gold"] - curve["gold"].iloc[0]
    return RLResult(curve, curve_fit(curve), bon_from(samples), pd.DataFrame(saved["train_log"]), samples,
                    False, saved["seconds"], str(folder), cache_hit=True)


def bon_from(samples: pd.DataFrame) -> GoodhartResult | None:
    """Best-of-n (proxy selector) over the step-0 evaluation samples, when there are 2 or more per prompt."""
    first = samples[samples["step"] == samples["step"].min()]
    if first.groupby("prompt_index").size().min() < 2:
        return None
    return analyze(first, selectors=["proxy"])


def train_rl(config: RLConfig, proxy=None, gold=None, policy=None, progress: ProgressFn | None = None,
             stop: StopFn | None = None) -> RLResult:
    """Run (or read back) an RL curve; see the module docstring. Scorers and the base policy
    (`analysis.policy.Policy`) may be passed in; the policy is not modified (adapters go on a copy).

    `progress(step, total, record)` is called after every step; `stop()` returning True ends the
    run after the current step, with a last evaluation, and the result has stopped=True.
    """
    from tqdm.auto import tqdm

    from analysis.cli import load_scorer_from
    from analysis.gold import load_gold
    from analysis.policy import load_policy
    from rm.device import torch_threads

    folder = config.run_dir()
    if not config.force and (done := load_finished(folder, config)) is not None:
        return done
    train_prompts, eval_prompts = split_prompts(config)
    proxy = proxy or load_scorer_from(config.proxy)
    gold = gold or load_gold(config.gold)
    if config.lam and np.asarray(proxy.score(train_prompts[:1], ["x"]).members).shape[0] < 2:
        raise ValueError("lam > 0 needs an ensemble proxy (several --proxy RMs, or an ensemble folder)")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({**asdict(config), "key": config.key()}, indent=2))
    start = time.perf_counter()
    with torch_threads(config.threads):
        policy = with_lora(policy or load_policy(config.policy, config.precision), config.lora_r, config.lora_alpha,
                           config.seed, config.lora_layers)
        params = [p for p in policy.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
        device = next(policy.model.parameters()).device
        gen = torch.Generator(device=device).manual_seed(config.seed)
        eval_gen = lambda step: torch.Generator(device=device).manual_seed(config.seed + 7919 * (step + 1))  # noqa: E731
        evals, rows, log = [], [], []

        def run_eval(step: int) -> None:
            t0 = time.perf_counter()
            samples = evaluate(policy, proxy, gold, eval_prompts, config, step, eval_gen(step))
            evals.append(samples)
            rows.append(summarize_eval(samples, time.perf_counter() - start))
            pd.concat(evals, ignore_index=True).to_parquet(folder / "samples.parquet", index=False)
            rows[-1]["eval_seconds"] = time.perf_counter() - t0

        run_eval(0)
        stopped = False
        bar = tqdm(total=config.steps, desc="rl", unit="step", disable=not config.progress, dynamic_ncols=True)
        for step in range(1, config.steps + 1):
            t0 = time.perf_counter()
            first = (step - 1) * config.prompts_per_step
            batch_prompts = [train_prompts[(first + j) % len(train_prompts)] for j in range(config.prompts_per_step)]
            record = train_step(policy, optimizer, proxy, batch_prompts, config, step, gen)
            record["seconds"] = time.perf_counter() - t0
            log.append(record)
            stopped = bool(stop and stop())
            if step % config.eval_every == 0 or step == config.steps or stopped:
                run_eval(step)
                record = {**record, **{f"eval_{k}": v for k, v in rows[-1].items()}}
            with (folder / "train_log.jsonl").open("a" if step > 1 else "w") as f:
                f.write(json.dumps(log[-1]) + "\n")
            bar.update(1)
            bar.set_postfix(proxy=f"{record['proxy']:.3f}", kl=f"{record['kl']:.2f}")
            if progress:
                progress(step, config.steps, record)
            if stopped:
                break
        bar.close()
    curve = pd.DataFrame(rows)
    curve["gold_gain"] = curve["gold"] - curve["gold"].iloc[0]
    samples = pd.concat(evals, ignore_index=True)
    result = RLResult(curve, curve_fit(curve), bon_from(samples), pd.DataFrame(log), samples, stopped,
                      time.perf_counter() - start, str(folder))
    (folder / "curve.json").write_text(json.dumps(jsonable_result(result, config), indent=2))
    return result


def jsonable_result(result: RLResult, config: RLConfig) -> dict:
    from analysis.cli import jsonable

    return jsonable({"key": config.key(), "config": config, **result.to_dict(), "curve": result.curve,
                     "train_log": result.train_log})


# ---- plots ---------------------------------------------------------------------------------------

PALETTE = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:pink", "tab:gray")


def plot_rl(runs: dict[str, RLResult] | RLResult, title: str = "RL against the proxy", gain: bool | None = None):
    """Figure: proxy (left) and gold (right) against √KL(π‖π_ref) for each run (solid, with the Gao RL
    fit dotted and its sweet spot), and each run's best-of-n curve of the step-0 policy (dashed) on
    the same axes. `gain` plots proxy - proxy at step 0 (default when runs use different proxies)."""
    from matplotlib.figure import Figure

    runs = {"RL": runs} if isinstance(runs, RLResult) else runs
    gain = len(runs) > 1 if gain is None else gain
    fig = Figure(figsize=(12, 4.8))
    ax_p, ax_g = fig.subplots(1, 2, sharex=True)
    for (name, run), color in zip(runs.items(), PALETTE * 4):
        c = run.curve
        p0 = c["proxy"].iloc[0] if gain else 0.0
        ax_p.errorbar(c["sqrt_kl"], c["proxy"] - p0, yerr=c["proxy_sem"], marker="o", ms=4, capsize=2, color=color,
                      label=f"{name}: RL")
        ax_g.errorbar(c["sqrt_kl"], c["gold"], yerr=c["gold_sem"], marker="o", ms=4, capsize=2, color=color,
                      label=f"{name}: RL")
        fit = run.fit
        if math.isfinite(fit.alpha) and c["sqrt_kl"].max() > 0 and len(c) >= 4:  # 2 parameters: 3 points fit any curve
            d = np.linspace(1e-3, c["sqrt_kl"].max() * 1.05, 100)
            ax_g.plot(d, c["gold"].iloc[0] + d * (fit.alpha - fit.beta * np.log(d)), ls=":", color=color,
                      label=f"{name}: fit α={fit.alpha:.3g} β={fit.beta:.3g} R²={fit.r2:.2f}")
            if fit.d_star is not None and fit.d_star <= d[-1]:
                ax_g.axvline(fit.d_star, ls=":", color=color, lw=0.8)
        if run.bon is not None:
            b = run.bon.curves
            b = b[b["selector"] == b["selector"].iloc[0]]  # the plain proxy selector
            b0 = b["proxy"].iloc[0] if gain else 0.0
            ax_p.plot(b["sqrt_kl"], b["proxy"] - b0, ls="--", marker="s", ms=3, color=color, alpha=0.7,
                      label=f"{name}: best-of-n")
            ax_g.plot(b["sqrt_kl"], b["gold"], ls="--", marker="s", ms=3, color=color, alpha=0.7,
                      label=f"{name}: best-of-n")
    ax_p.set_ylabel("proxy reward - its value at step 0" if gain else "proxy reward")
    ax_g.set_ylabel("gold score")
    for ax in (ax_p, ax_g):
        ax.set_xlabel("√KL(π ‖ π_ref)  [nats^½]  (best-of-n: analytic KL)")
        ax.grid(alpha=0.3)
    ax_p.legend(fontsize=7)
    ax_g.legend(fontsize=6)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# ---- CLI -----------------------------------------------------------------------------------------


def run(config: RLConfig, proxy=None, gold=None, policy=None, progress: ProgressFn | None = None,
        stop: StopFn | None = None) -> tuple[RLResult, dict]:
    """Train (or read back), plot; (result, JSON report)."""
    from analysis.cli import write_plot

    result = train_rl(config, proxy, gold, policy, progress, stop)
    folder = Path(result.out)
    report = {"config": config, "key": config.key(), **result.to_dict()}
    report["plot"] = write_plot(plot_rl(result, f"RLOO against {'+'.join(config.proxy)} (kl_coef {config.kl_coef})"),
                                None, config.plot or folder / "plot.png")
    return result, report


def summary(result: RLResult) -> str:
    """The curve as a small table, then the fit."""
    lines = [f"{'step':>5} {'KL':>8} {'√KL':>6} {'proxy':>8} {'gold':>6}"]
    lines += [f"{r.step:>5} {r.kl:>8.3f} {r.sqrt_kl:>6.3f} {r.proxy:>8.3f} {r.gold:>6.3f}"
              for r in result.curve.itertuples()]
    fit = result.fit
    peak = "none (no over-optimisation in range)" if fit.d_star is None else f"d*={fit.d_star:.3g} (KL*={fit.kl_star:.3g})"
    lines.append(f"fit gold - gold0 = d(α - β log d): α={fit.alpha:.3g} β={fit.beta:.3g} R²={fit.r2:.2f}, "
                 f"sweet spot {peak}; best measured step {result.step_star}"
                 + (" (read from the run folder)" if result.cache_hit else "")
                 + (" (stopped early)" if result.stopped else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from analysis.cli import config_from_args, emit, parser_for

    args = parser_for(RLConfig).parse_args(argv)
    config = config_from_args(RLConfig, args)
    result, report = run(config)
    emit(report, Path(result.out) / "report.json", args.json, summary(result))


if __name__ == "__main__":
    from labeling.cli import run_cli

    raise SystemExit(run_cli(main))
