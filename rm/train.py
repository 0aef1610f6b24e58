"""Bradley-Terry reward-model training: `train(TrainConfig(...)) -> checkpoint folder`.

One loop: length-grouped batches with dynamic padding, bf16 autocast where the hardware has it
(rm.device), AdamW with linear warmup and decay, gradient clipping, evaluation on a held-out
split every epoch with early stopping, then temperature scaling on that split. `--ensemble K`
trains K members (seeds seed..seed+K-1, bootstrap resamples of the training set, or disjoint shares
of it with --ensemble-data disjoint) into
`member_k/` folders. Every checkpoint holds metrics.json and curves.jsonl (one line per step).
A callback that returns False stops the run after the current step; what it has is saved.

Several processes (`accelerate launch --num_processes N -m rm.train ...`, DDP on GPUs or gloo on
CPUs): every process builds the same length-grouped global batches of `batch_size` pairs and
runs forward/backward on its slice only (`shard`); each slice's loss is weighted so that DDP's
gradient average is the whole batch's mean, so steps, schedule and results match one process.
Evaluation runs on every process (same weights, same result); only the main process prints
and writes the checkpoint.
"""
import argparse
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rm.cli import add_dataclass_args, from_dict
from rm.collate import PackedPairCollator, PairCollator, length_grouped_batches
from rm.defaults import default_backbone
from rm.device import PRECISIONS, autocast_dtype, default_device, torch_threads, use_attention
from rm.formatting import Formatter
from rm.loss import bt_loss, center_loss, decorrelation_loss
from rm.metrics import all_metrics, fit_temperature
from rm.model import (POOLING, RewardModel, build_reward_model, count_parameters, freeze_lower, load_tokenizer,
                      use_packing)

Callback = Callable[[dict], bool | None]  # returns False to stop (see `train`)

# transformers/TRL spellings of our settings, for the did-you-mean message
HF_NAMES = {"learning_rate": "lr", "num_train_epochs": "epochs", "per_device_train_batch_size": "batch_size",
            "max_len": "max_length", "model_name_or_path": "backbone", "output_dir": "out",
            "warmup_steps": "warmup_ratio", "dataset_name": "data", "center_rewards_coefficient": "center_coef"}


@dataclass
class TrainConfig:
    """Everything a training run needs; saved with the checkpoint."""

    data: str = field(default=None, metadata={"help": "training preferences: export folder, JSONL/CSV/Parquet file or Hub id"})
    out: str = field(default="runs/rm/default", metadata={"help": "checkpoint folder to write"})
    data_dir: str | None = field(default=None, metadata={"help": "Hub dataset sub-folder (e.g. harmless-base)"})
    split: str | None = field(default=None, metadata={"help": "Hub dataset split (default: train)"})
    eval_data: str | None = field(default=None, metadata={"help": "held-out preferences; default: split off --eval-fraction of --data"})
    eval_split: str | None = field(default=None, metadata={"help": "Hub split of --eval-data (default: --split)"})
    eval_fraction: float = field(default=0.1, metadata={"help": "share of --data held out for evaluation when no --eval-data (0: none)"})
    max_pairs: int | None = field(default=None, metadata={"help": "use only the first N pairs of --data"})
    backbone: str | None = field(default=None, metadata={"help": "backbone path or Hub id (default: the offline all-MiniLM-L6-v2)"})
    from_scratch: bool = field(default=False, metadata={"help": "initialise from the backbone's config instead of its weights"})
    config_overrides: dict = field(default_factory=dict, metadata={"help": "JSON dict of backbone config changes, e.g. '{\"num_hidden_layers\": 2}'"})
    pooling: str = field(default="auto", metadata={"help": "how a sequence becomes one vector (auto: last for decoders, mean for encoders; cls on an encoder and last on a decoder use the model's own head)", "choices": ["auto", *sorted(POOLING)]})
    max_length: int = field(default=256, metadata={"help": "tokens per sequence; the prompt is cut from the left first"})
    dropout: float | None = field(default=0.0, metadata={"help": "dropout probability of every backbone dropout layer (None: keep the backbone's); 0 trains 1.46x faster and no less accurate (bench/README.md)"})
    epochs: int = field(default=1, metadata={"help": "passes over the training pairs"})
    batch_size: int = field(default=16, metadata={"help": "pairs per optimiser step, over all processes (each takes a slice)"})
    lr: float = field(default=1e-4, metadata={"help": "peak AdamW learning rate (1e-4 beat 5e-5 on hh-rlhf and UKPConvArg1: bench/README.md)"})
    head_lr: float | None = field(default=None, metadata={"help": "learning rate of the reward head (default: --lr)"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    warmup_ratio: float = field(default=0.1, metadata={"help": "share of steps with linear warmup, then linear decay to 0"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm (0: off)"})
    center_coef: float = field(default=0.0, metadata={"help": "reward centering coefficient: coef * mean(r^2)"})
    patience: int | None = field(default=None, metadata={"help": "stop after N epochs without better eval accuracy (keeps the best)"})
    ensemble: int = field(default=1, metadata={"help": "train K members (different seeds, bootstrap resamples)"})
    bootstrap: bool = field(default=True, metadata={"help": "legacy switch: --no-bootstrap is --ensemble-data same"})
    ensemble_data: str = field(default="bootstrap", metadata={"help": "what each ensemble member trains on: bootstrap (a resample with replacement), disjoint (its own 1/K of the pairs: no two members share a pair) or same (every pair)", "choices": ["bootstrap", "disjoint", "same"]})
    decorrelate: str | None = field(default=None, metadata={"help": "nuisance feature whose correlation with the reward is penalised in each batch (ODIN-style): 'length' (response characters), or a name whose values the caller computes (train(nuisance=...))"})
    decorrelate_coef: float = field(default=1.0, metadata={"help": "weight of the decorrelation penalty coef·ρ(reward, feature)² (rm.loss.decorrelation_loss)"})
    seed: int = field(default=0, metadata={"help": "random seed (member k uses seed + k)"})
    precision: str = field(default="auto", metadata={"help": "auto: bf16 autocast where the hardware has it", "choices": list(PRECISIONS)})
    freeze_embeddings: bool = field(default=False, metadata={"help": "keep the token embeddings fixed (less optimiser work, less overfitting)"})
    freeze_layers: int = field(default=0, metadata={"help": "keep the embeddings and the lowest N transformer blocks fixed: backward runs through the upper blocks only (MiniLM, N=3: 1.47x faster, but 1.3 points less accurate on UKPConvArg1; bench/README.md)"})
    packing: bool = field(default=False, metadata={"help": "padding-free batches: each batch's sequences end to end, attention kept within each sequence (not for an encoder's native cls head, which then pads)"})
    attn_implementation: str = field(default="auto", metadata={"help": "attention kernel: auto (rm.device.ATTENTION: eager on CPU under bf16, sdpa in fp32 and on GPU), eager or sdpa"})
    compile: bool = field(default=False, metadata={"help": "torch.compile the backbone (fuses element-wise ops; first steps compile)"})
    num_threads: int | None = field(default=None, metadata={"help": "torch CPU threads (default: torch's choice; 1 helps on a crowded machine)"})
    eval_batch_size: int = field(default=64, metadata={"help": "sequences per forward pass when evaluating"})
    log_every: int = field(default=10, metadata={"help": "steps between progress-bar updates"})
    progress: bool = field(default=True, metadata={"help": "show tqdm progress bars"})

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Like TrainConfig(**values) but an unknown key gets a did-you-mean message."""
        return from_dict(cls, values, aliases=HF_NAMES)

    def to_dict(self) -> dict:
        """JSON-ready resolved config (an in-memory dataset is recorded by its repr)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["data"] = self.data if isinstance(self.data, (str, type(None))) else repr(self.data)
        out["backbone"] = self.backbone or default_backbone()
        return out


# --- data -----------------------------------------------------------------------------------

def load_splits(config: TrainConfig):
    """(train, eval or None) preference datasets as described by the config."""
    from rm.data import load_preferences

    data = load_preferences(config.data, config.data_dir, config.split, config.max_pairs)
    if config.eval_data is not None:
        return data, load_preferences(config.eval_data, config.data_dir, config.eval_split or config.split)
    n_eval = int(round(len(data) * config.eval_fraction))
    if n_eval == 0:
        return data, None
    order = np.random.default_rng(config.seed).permutation(len(data))
    return data.select(np.sort(order[n_eval:])), data.select(np.sort(order[:n_eval]))


@dataclass
class PairData:
    """Tokenized pairs: features for PairCollator, plus how many pairs had to be truncated."""

    features: list[dict]
    n_truncated: int

    def __len__(self):
        return len(self.features)

    def lengths(self) -> list[int]:
        return [max(len(f["chosen_ids"]), len(f["rejected_ids"])) for f in self.features]

    def subset(self, idx) -> "PairData":
        return PairData([self.features[i] for i in idx], self.n_truncated)


def tokenize_pairs(formatter: Formatter, ds) -> PairData:
    """Dataset with prompt/chosen/rejected/margin/tie -> PairData (each text tokenized once).

    `formatter` is anything with `.encode(prompts, responses) -> Encoded` (bench/accuracy.py passes
    other encodings for its ablations)."""
    chosen = formatter.encode(ds["prompt"], ds["chosen"])
    rejected = formatter.encode(ds["prompt"], ds["rejected"])
    features = []
    for i, (margin, tie) in enumerate(zip(ds["margin"], ds["tie"])):
        f = {"chosen_ids": chosen.input_ids[i], "rejected_ids": rejected.input_ids[i], "margin": margin, "tie": tie}
        if chosen.token_type_ids is not None:
            f["chosen_types"], f["rejected_types"] = chosen.token_type_ids[i], rejected.token_type_ids[i]
        features.append(f)
    cut = sum(a or b for a, b in zip(chosen.truncated, rejected.truncated))
    return PairData(features, cut)


# --- one model ------------------------------------------------------------------------------

def _move(batch: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _forward(model: RewardModel, batch: dict) -> torch.Tensor:
    keys = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "cu_seq_lens")  # padded or packed
    inputs = {k: batch[k] for k in keys if k in batch}
    return model(**inputs)  # (2B,) first half chosen, second half rejected


@torch.inference_mode()
def pair_rewards(model: RewardModel, data: PairData, collate: PairCollator, batch_size: int, device,
                 dtype: torch.dtype | None) -> tuple[np.ndarray, np.ndarray]:
    """(r_chosen, r_rejected), each (N,), for tokenized pairs; batches sorted by length."""
    was_training = model.training
    model.eval()
    order = np.argsort([-n for n in data.lengths()], kind="stable")
    r_c, r_r = np.empty(len(data)), np.empty(len(data))
    pairs_per_batch = max(1, batch_size // 2)
    for start in range(0, len(order), pairs_per_batch):
        idx = order[start:start + pairs_per_batch]
        batch = _move(collate([data.features[i] for i in idx]), device)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            rewards = _forward(model, batch).float().cpu().numpy()
        r_c[idx], r_r[idx] = rewards[:len(idx)], rewards[len(idx):]
    model.train(was_training)
    return r_c, r_r


def _optimizer(model: RewardModel, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases and norms; the head may have its own learning rate."""
    groups: dict[tuple, list] = {}
    head_params = {id(p) for p in (model.head.parameters() if model.head is not None else [])}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay = config.weight_decay if p.ndim >= 2 else 0.0
        lr = config.head_lr if (config.head_lr and id(p) in head_params) else config.lr
        groups.setdefault((decay, lr), []).append(p)
    params = [{"params": ps, "weight_decay": d, "lr": lr} for (d, lr), ps in groups.items()]
    return torch.optim.AdamW(params, fused=next(model.parameters()).device.type in ("cpu", "cuda"))


def _schedule(optimizer, total_steps: int, warmup_ratio: float):
    warmup = int(math.ceil(total_steps * warmup_ratio))
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def shard(idx: list[int], rank: int, world: int) -> tuple[list[int], float]:
    """This process's slice of a global batch, and the weight of its mean loss: n_local·world/n.

    DDP averages gradients over processes, so weighted slice means average to the batch mean.
    A process left without a pair (a batch smaller than the world) takes the first pair with
    weight 0: it must still run backward for the gradient all-reduce.

    >>> shard([7, 8, 9], 0, 2), shard([7, 8, 9], 1, 2), shard([7], 1, 2)
    (([7, 8], 1.3333333333333333), ([9], 0.6666666666666666), ([7], 0.0))
    """
    mine = [int(i) for i in np.array_split(np.asarray(idx), world)[rank]]
    return (mine, len(mine) * world / len(idx)) if mine else ([int(idx[0])], 0.0)


def weights_on_cpu(accelerator, model) -> dict[str, torch.Tensor]:
    """The whole model's weights as a CPU state dict. Every process must call it (FSDP and ZeRO-3
    gather their shards); only the main process is sure to receive all of them."""
    return {k: v.detach().to("cpu", copy=True) for k, v in accelerator.get_state_dict(model).items()}


def _better(new: dict, best: dict | None) -> bool:
    return best is None or (new["eval_accuracy"], -new["eval_loss"]) > (best["eval_accuracy"], -best["eval_loss"])


def train_member(config: TrainConfig, train_data: PairData, eval_data: PairData | None, out: Path,
                 seed: int, callback: Callback | None = None, member: int = 0) -> tuple[RewardModel, dict]:
    """Train one reward model and save it to `out`; returns (model, metrics).

    With several processes the returned model is a plain copy of the weights on the main
    process and this process's (possibly sharded) model elsewhere.

    `callback` returning False stops after the current step (see `train`); metrics["stopped"] says so.
    """
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, set_seed
    from tqdm.auto import tqdm

    set_seed(seed)
    # One scheduler step per optimiser step: by default accelerate steps it once per process,
    # which suits a sharded dataloader, not our global batches. DDP must not wait for gradients
    # of parameters a pooling leaves unused (e.g. BERT's pooler).
    accelerator = Accelerator(cpu=on_cpu(), step_scheduler_with_optimizer=False,
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if accelerator.num_processes != launched:
        raise ValueError(f"launched as {launched} processes, but accelerate formed a group of "
                         f"{accelerator.num_processes}: each would train alone. Launch with "
                         "`accelerate launch --multi_gpu --num_processes N -m rm.train ...` or torchrun")
    main_process = accelerator.is_main_process
    if accelerator.state.deepspeed_plugin is not None:  # DeepSpeed wants the per-process batch (we slice ours)
        accelerator.state.deepspeed_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = math.ceil(
            config.batch_size / accelerator.num_processes)
    device = accelerator.device
    dtype = autocast_dtype(device, config.precision)
    model = build_reward_model(config.backbone or default_backbone(), config.pooling, config.from_scratch,
                               config.config_overrides, dropout=config.dropout)
    model.max_length = config.max_length
    tokenizer = model.tokenizer
    use_attention(model.body, device, config.attn_implementation, dtype)
    if config.freeze_embeddings:
        model.body.get_input_embeddings().weight.requires_grad_(False)
    freeze_lower(model, config.freeze_layers)
    if config.compile:
        model.body.compile(dynamic=True)
    packing = config.packing and model.packable
    if packing:
        use_packing(model)
    collate = PackedPairCollator() if packing else PairCollator(tokenizer.pad_token_id, tokenizer.padding_side)
    optimizer = _optimizer(model, config)
    steps_per_epoch = math.ceil(len(train_data) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    scheduler = _schedule(optimizer, total_steps, config.warmup_ratio)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    raw = accelerator.unwrap_model(model)

    curves, best, best_state, best_rewards, stale, diverged = [], None, None, None, 0, None
    step, train_seconds, seen, seen_here, stopped = 0, 0.0, 0, 0, False
    bar = tqdm(total=total_steps, desc=f"train{f' member {member}' if config.ensemble > 1 else ''}",
               disable=not (config.progress and main_process), dynamic_ncols=True)
    say = tqdm.write if main_process else (lambda *args, **kwargs: None)
    for epoch in range(config.epochs):
        model.train()
        epoch_hits, epoch_n = 0.0, 0
        for idx in length_grouped_batches(train_data.lengths(), config.batch_size, seed=seed * 1000 + epoch):
            t0 = time.perf_counter()
            mine, weight = shard(idx, accelerator.process_index, accelerator.num_processes)
            batch = _move(collate([train_data.features[i] for i in mine]), device)
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                rewards = _forward(model, batch).float()
            r_c, r_r = rewards.chunk(2)  # (B,), (B,)
            loss = bt_loss(r_c, r_r, batch["margin"], batch["tie"])
            if config.center_coef:
                loss = loss + center_loss(rewards, config.center_coef)
            if config.decorrelate:  # (2B,) nuisance values, laid out as `rewards`: chosen, then rejected
                nuisance = torch.tensor([train_data.features[i]["nuisance"][side] for side in (0, 1) for i in mine],
                                        device=device)
                loss = loss + decorrelation_loss(rewards, nuisance, config.decorrelate_coef)
            loss = loss * weight
            batch_loss = accelerator.reduce(loss.detach(), "mean")  # the global batch's loss, on every process
            if not torch.isfinite(batch_loss):  # diverged: stop before the update, keep the last good weights
                diverged = {"step": step + 1, "total_steps": total_steps, "epoch": epoch + 1, "loss": str(batch_loss.item())}
                break
            accelerator.backward(loss)
            grad_norm = (accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                         if config.max_grad_norm else torch.tensor(float("nan")))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            train_seconds += time.perf_counter() - t0
            seen += len(idx)
            seen_here += len(mine) if weight else 0
            step += 1
            hit = (r_c > r_r).float() + 0.5 * (r_c == r_r).float()  # (B,) equal scores count half
            sums = torch.stack([torch.where(batch["tie"], 0.5, hit).sum(),  # so do tie labels
                                (r_c - r_r).sum()]).detach() * (weight > 0)
            hits, gap = accelerator.reduce(sums, "sum").tolist()  # over the global batch
            epoch_hits, epoch_n = epoch_hits + hits, epoch_n + len(idx)
            record = {"step": step, "total_steps": total_steps,
                      "epoch": epoch + (step - epoch * steps_per_epoch) / steps_per_epoch,
                      "loss": batch_loss.item(), "accuracy": hits / len(idx), "lr": scheduler.get_last_lr()[0],
                      "grad_norm": float("nan" if grad_norm is None else grad_norm), "reward_gap": gap / len(idx),
                      "pairs_per_s": seen / train_seconds, "member": member}
            curves.append(record)
            stopped = callback is not None and callback(dict(record, event="step")) is False
            bar.update(1)
            if step % config.log_every == 0 or step == total_steps:
                bar.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{epoch_hits / epoch_n:.3f}",
                                pairs_s=f"{record['pairs_per_s']:.1f}")
            if stopped:
                say(f"stopped by the callback after step {step} of {total_steps}", file=sys.stderr)
                break
        if diverged:
            break
        if eval_data is None:
            if stopped:
                break
            continue
        r_c, r_r = pair_rewards(model, eval_data, collate, config.eval_batch_size, device, dtype)
        ties = [f["tie"] for f in eval_data.features]
        m = all_metrics(r_c, r_r, ties)
        record = {"event": "eval", "step": step, "total_steps": total_steps, "epoch": epoch + 1,
                  "loss": curves[-1]["loss"], "accuracy": epoch_hits / max(1, epoch_n),
                  "eval_accuracy": m["accuracy"], "eval_loss": m["log_loss"], "member": member}
        curves.append(record)
        stopped = (callback is not None and callback(record) is False) or stopped
        say(f"epoch {epoch + 1}: train acc {record['accuracy']:.3f}  eval acc {m['accuracy']:.3f}  "
            f"eval loss {m['log_loss']:.4f}", file=sys.stderr)
        if _better(record, best):
            best, best_rewards, stale = record, (r_c, r_r), 0
            if config.epochs > 1:
                best_state = weights_on_cpu(accelerator, model)
        else:
            stale += 1
            if config.patience is not None and stale >= config.patience:
                say(f"early stop after epoch {epoch + 1}: no better eval accuracy for {stale} epoch(s)",
                    file=sys.stderr)
                break
        if stopped:
            break
    bar.close()
    if diverged and best_state is None:
        raise TrainingDiverged(diverged_message(config, diverged, None, out))
    keep = best_state if best_state is not None and best is not curves[-1] else None
    if accelerator.num_processes > 1:  # FSDP and ZeRO-3 shard the weights: gather them into a plain copy
        keep = weights_on_cpu(accelerator, model) if keep is None else keep  # same branch everywhere
        if main_process:
            raw = build_reward_model(config.backbone or default_backbone(), config.pooling, True,
                                     config.config_overrides, dropout=config.dropout)
            raw.max_length = config.max_length
    if keep is not None and main_process:
        raw.load_state_dict(keep)

    metrics = {"n_train": len(train_data), "n_truncated_train": train_data.n_truncated, "steps": step,
               "train_seconds": train_seconds, "train_pairs_per_s": seen / max(train_seconds, 1e-9),
               "n_params": count_parameters(raw), "precision": "bf16" if dtype == torch.bfloat16 else "fp32",
               "device": str(device), "best_epoch": best["epoch"] if best else None, "stopped": stopped,
               "n_ties_train": sum(bool(f["tie"]) for f in train_data.features),
               "num_processes": accelerator.num_processes, "packing": packing,
               "pairs_per_process": accelerator.gather(torch.tensor([seen_here], device=device)).tolist(),
               **({"diverged": diverged} if diverged else {})}
    temperature = 1.0
    if eval_data is not None:
        r_c, r_r = best_rewards  # the kept weights' eval rewards
        ties = [f["tie"] for f in eval_data.features]
        temperature = fit_temperature(r_c, r_r, ties)
        metrics |= {"n_truncated_eval": eval_data.n_truncated, **all_metrics(r_c, r_r, ties, temperature)}
    if packing:  # the saved and returned model attends as usual
        use_attention(raw.body, device, config.attn_implementation, dtype)
    raw.eval()
    if main_process:
        save_member(raw, tokenizer, out, config, metrics, curves, temperature)
    accelerator.wait_for_everyone()
    if diverged:
        raise TrainingDiverged(diverged_message(config, diverged, best, out))
    return raw, metrics


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite; the message says what was kept and what to change."""


def diverged_message(config: TrainConfig, diverged: dict, kept: dict | None, out: Path) -> str:
    """What happened, what was kept (the best evaluated epoch before it, or nothing), how to fix it."""
    kept_text = (f"kept the weights of epoch {kept['epoch']} (eval accuracy {kept['eval_accuracy']:.3f}) in {out}"
                 if kept else f"nothing was saved to {out} (no evaluated epoch before it to keep)")
    return (f"training diverged: the loss became {diverged['loss']} at step {diverged['step']} of "
            f"{diverged['total_steps']} (epoch {diverged['epoch']}) with --lr {config.lr:g}; {kept_text}. "
            f"Lower --lr (the default is {TrainConfig.lr:g}), keep --max-grad-norm on, or raise --warmup-ratio")


def save_member(model: RewardModel, tokenizer, out: Path, config: TrainConfig, metrics: dict,
                curves: list[dict], temperature: float) -> Path:
    from rm.checkpoint import save_rm

    save_rm(model, tokenizer, out, config.to_dict(), metrics, temperature)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "curves.jsonl").write_text("".join(json.dumps(r) + "\n" for r in curves))
    return out


# --- the public entry point ------------------------------------------------------------------

def bootstrap_indices(n: int, seed: int) -> np.ndarray:
    """n indices drawn with replacement (a bootstrap resample), sorted."""
    return np.sort(np.random.default_rng(seed).integers(0, n, size=n))


def disjoint_indices(n: int, k: int, members: int, seed: int) -> np.ndarray:
    """Member k's share of a seeded permutation of range(n) cut into `members` near-equal parts, sorted."""
    return np.sort(np.array_split(np.random.default_rng(seed).permutation(n), members)[k])


# --ensemble-data: (n pairs, member k, K members, run seed) -> the member's training pair indices
ENSEMBLE_DATA: dict[str, Callable[[int, int, int, int], np.ndarray]] = {
    "bootstrap": lambda n, k, K, seed: bootstrap_indices(n, seed + k),
    "disjoint": lambda n, k, K, seed: disjoint_indices(n, k, K, seed),
    "same": lambda n, k, K, seed: np.arange(n),
}

# --decorrelate features that rm can compute itself: (prompts, responses) -> one value per response
NUISANCE: dict[str, Callable[[list[str], list[str]], list[float]]] = {
    "length": lambda prompts, responses: [float(len(r)) for r in responses],
}
Nuisance = Callable[[list[str], list[str]], list[float]]


def attach_nuisance(data: PairData, ds, fn: Nuisance) -> None:
    """Store (chosen value, rejected value) of the nuisance feature in each pair's features."""
    chosen, rejected = fn(ds["prompt"], ds["chosen"]), fn(ds["prompt"], ds["rejected"])
    for f, c, r in zip(data.features, chosen, rejected):
        f["nuisance"] = (float(c), float(r))


def train(config: TrainConfig | dict, callback: Callback | None = None, nuisance: Nuisance | None = None) -> Path:
    """Train a reward model (or an ensemble) as configured; return the checkpoint folder.

    `callback(event)` gets every step ({"event": "step", "step", "total_steps", "epoch", "loss",
    "accuracy", "member", ...}) and every evaluation ({"event": "eval", ..., "eval_accuracy"}).
    If it returns False (None or True carry on), training stops cleanly after the current step:
    the epoch's evaluation still runs when there is a held-out split, then the weights are saved
    as usual (the best evaluated ones, as after early stopping) with metrics["stopped"] = True.
    In an ensemble no further members are trained; the folder holds the members trained so far.
    `nuisance(prompts, responses)` computes the --decorrelate feature when rm does not know it
    (NUISANCE), e.g. analysis.features' agreement.
    """
    config = TrainConfig.from_dict(config) if isinstance(config, dict) else config
    if config.data is None:
        raise ValueError("TrainConfig.data is required: a label export folder, a JSONL/CSV/Parquet file or a Hub id")
    for key in ("ensemble", "epochs", "batch_size", "max_length"):
        if getattr(config, key) < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be >= 1 (TrainConfig.{key}), got {getattr(config, key)}")
    if not (config.lr >= 0 and math.isfinite(config.lr)):
        raise ValueError(f"--lr must be a finite number >= 0 (TrainConfig.lr), got {config.lr}")
    if config.ensemble_data not in ENSEMBLE_DATA:
        raise ValueError(f"--ensemble-data must be one of {sorted(ENSEMBLE_DATA)}, got {config.ensemble_data!r}")
    if config.decorrelate and nuisance is None and config.decorrelate not in NUISANCE:
        raise ValueError(f"--decorrelate {config.decorrelate!r}: rm.train computes only {sorted(NUISANCE)}; "
                         "other features need their values passed in (train(nuisance=...))")
    with torch_threads(config.num_threads):
        return _train(config, callback, nuisance or NUISANCE.get(config.decorrelate))


MIN_DECIDED_PAIRS = 8  # fewer pairs with a winner than this: train, with a warning


def check_signal(ds, what: str = "training data") -> None:
    """Refuse data whose pairs are all ties (no preference to learn, ValueError); warn on stderr
    when fewer than MIN_DECIDED_PAIRS pairs have a winner (one pair trains, but says little)."""
    decided = len(ds) - sum(bool(t) for t in ds["tie"])
    if decided == 0:
        raise ValueError(f"{what}: all {len(ds)} pairs are ties (no response preferred), so a reward model has "
                         "nothing to learn; label which response is better in some pairs")
    if decided < MIN_DECIDED_PAIRS:
        print(f"warning: {what}: only {decided} pair(s) with a winner; the model will learn little and its "
              "held-out numbers will mean little", file=sys.stderr)


def _train(config: TrainConfig, callback: Callback | None, nuisance: Nuisance | None = None) -> Path:
    train_ds, eval_ds = load_splits(config)
    check_signal(train_ds)
    formatter = Formatter(load_tokenizer(config.backbone or default_backbone()), config.max_length)
    train_data = tokenize_pairs(formatter, train_ds)
    eval_data = tokenize_pairs(formatter, eval_ds) if eval_ds is not None else None
    if config.decorrelate:
        attach_nuisance(train_data, train_ds, nuisance)
    main_process = is_main_process()
    for name, data in (("train", train_data), ("eval", eval_data)):
        if data is not None and data.n_truncated and main_process:
            print(f"{name}: {data.n_truncated} of {len(data)} pairs longer than max_length={config.max_length}; "
                  "kept with the prompt cut from the left", file=sys.stderr)
    out = Path(config.out)
    if config.ensemble == 1:
        train_member(config, train_data, eval_data, out, config.seed, callback)
        return out
    eval_rewards = []  # per member: (r_chosen, r_rejected) on the shared eval split
    for k in range(config.ensemble):
        seed = config.seed + k
        mode = config.ensemble_data if config.bootstrap else "same"
        data = train_data.subset(ENSEMBLE_DATA[mode](len(train_data), k, config.ensemble, config.seed))
        model, metrics = train_member(config, data, eval_data, out / f"member_{k}", seed, callback, member=k)
        if eval_data is not None and main_process:
            device = next(model.parameters()).device
            collate = PairCollator(model.tokenizer.pad_token_id, model.tokenizer.padding_side)
            eval_rewards.append(pair_rewards(model, eval_data, collate, config.eval_batch_size, device,
                                             autocast_dtype(device, config.precision)))
        del model
        if metrics["stopped"]:
            break
    if main_process:
        write_ensemble_info(out, config, eval_rewards, [f["tie"] for f in eval_data.features] if eval_data else None,
                            members=k + 1, stopped=metrics["stopped"])
    return out


def on_cpu() -> bool:
    """Whether training runs on CPUs (rm.device's choice); then several processes use gloo."""
    return default_device().type == "cpu"


def is_main_process() -> bool:
    """True in a single process, and in process 0 of an `accelerate launch` / torchrun group."""
    from accelerate import PartialState

    return PartialState(cpu=on_cpu()).is_main_process


def write_ensemble_info(out: Path, config: TrainConfig, eval_rewards: list[tuple], ties, members: int | None = None,
                        stopped: bool = False) -> dict:
    """Metrics of the members' mean reward and its temperature -> rmlab_ensemble.json, metrics.json.

    `members`: how many were trained (default: config.ensemble; fewer when a callback stopped the run).
    """
    from rm.checkpoint import ENSEMBLE_FILE

    info = {"members": members or config.ensemble, "stopped": stopped, "train_config": config.to_dict(),
            "temperature": 1.0}
    if eval_rewards:
        r_c, r_r = (np.mean([pair[i] for pair in eval_rewards], axis=0) for i in (0, 1))
        info["temperature"] = fit_temperature(r_c, r_r, ties)
        info["metrics"] = all_metrics(r_c, r_r, ties, info["temperature"])
        info["metrics"]["member_accuracy"] = [all_metrics(c, r, ties)["accuracy"] for c, r in eval_rewards]
        (out / "metrics.json").write_text(json.dumps(info["metrics"], indent=2))
    (out / ENSEMBLE_FILE).write_text(json.dumps(info, indent=2, default=str))
    return info


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m rm.train", description=__doc__.splitlines()[0])
    add_dataclass_args(parser, TrainConfig, required=("data",))
    args = vars(parser.parse_args(argv))
    out = train(TrainConfig.from_dict(args))
    if is_main_process():
        print(out)
    return out


if __name__ == "__main__":
    from labeling.cli import run_cli

    raise SystemExit(run_cli(main))
