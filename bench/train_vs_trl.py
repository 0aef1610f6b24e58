"""Training throughput, MFU and held-out accuracy: rm.train against TRL's RewardTrainer, one run.

  .venv/bin/python bench/train_vs_trl.py [--train-pairs 1800 --eval-pairs 512 --epochs 1]
        [--batch-size 16 --lr 5e-5 --max-length 256] [--runs ours,trl-default,trl-best]
  .venv/bin/python bench/train_vs_trl.py --processes ours,trl-default,ours,trl-default --train-pairs 480

`--processes`: whole-process time, each trainer as the command a user runs (`python -m
rm.train ...`, TRL's own `trl reward` script `python -m trl.scripts.reward ...`) on the same
JSONL file, in the order given (interleave names to see the load drift; the best of each name
is compared): startup, imports, tokenization, training and saving the model, no evaluation.

Same data (hh-rlhf harmless-base: the first N pairs train, the last M evaluate, as
bench/accuracy.py), same backbone (the offline MiniLM), batch size, learning rate, epochs and
max length for every trainer. TRL runs:
- trl-default: RewardConfig defaults for everything else (gradient checkpointing on, bf16 on,
  dropout off, random sampler, over-long pairs dropped). TRL needs an eos token: BERT has none,
  so it is [SEP], as TRL's docs ask for models without one.
- trl-best: the fastest RewardConfig we found: no gradient checkpointing,
  `train_sampling_strategy="group_by_length"` (lengths precomputed). TRL 1.16's RewardConfig
  has no padding-free option (only SFT has one).
Throughput = trained pairs / seconds in the training loop (TRL: `train_runtime`; ours: the
step time rm.train reports). MFU = 6 · N · T / t / peak, where N = parameters of the Linear
layers (the matmul weights; embeddings do lookups, not FLOPs), T = real (non-pad) tokens
trained, and peak = the bf16 (or fp32) torch.matmul rate measured in this same run.
Accuracy is on all eval pairs (over-long ones truncated keeping the response end, TRL's model
too) and on the subset TRL keeps (both sequences within max length).
"""
import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root: rm, bench

from bench._machine import load_line, load_text, machine_line, matmul_peak  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


def matmul_params(model) -> int:
    """Weights of all Linear layers: the parameters that cost 2 FLOPs per token per pass."""
    from torch import nn

    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))


def trl_texts(ds, eos: str) -> tuple[list[str], list[str], list[str]]:
    """TRL's non-conversational input: prompt + response + eos (RewardTrainer._prepare_dataset)."""
    add = lambda r: r if r.endswith(eos) else r + eos  # noqa: E731
    return list(ds["prompt"]), [add(r) for r in ds["chosen"]], [add(r) for r in ds["rejected"]]


def trl_ids(tokenizer, prompts: list[str], responses: list[str]) -> list[list[int]]:
    return tokenizer([p + r for p, r in zip(prompts, responses)], verbose=False)["input_ids"]


def keep_end(ids: list[int], max_length: int) -> list[int]:
    """First token ([CLS]) plus the last max_length-1: how we score TRL's model on long pairs."""
    return ids if len(ids) <= max_length else [ids[0], *ids[len(ids) - max_length + 1:]]


def score_ids(model, seqs: list[list[int]], pad_id: int, batch_size: int = 64) -> np.ndarray:
    """Rewards (N,) of token-id sequences for any model whose forward gives (B,) or `.logits`."""
    import torch

    from rm.collate import SequenceCollator, sorted_batches
    from rm.device import autocast_dtype

    device = next(model.parameters()).device
    dtype = autocast_dtype(device)
    collate, out = SequenceCollator(pad_id), np.empty(len(seqs))
    model.eval()
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        for idx in sorted_batches([len(s) for s in seqs], batch_size):
            batch = {k: v.to(device) for k, v in collate([seqs[i] for i in idx]).items()}
            r = model(**batch)
            r = r.logits[:, 0] if hasattr(r, "logits") else r
            out[idx] = r.float().cpu().numpy()
    return out


def accuracies(r_c: np.ndarray, r_r: np.ndarray, kept: np.ndarray) -> dict:
    from rm.metrics import accuracy

    return {"accuracy": accuracy(r_c, r_r), "accuracy_trl_kept": accuracy(r_c[kept], r_r[kept])}


# --- the trainers ------------------------------------------------------------------------------

def run_ours(args, train_ds, eval_ds, kept, tmp: Path, **overrides) -> dict:
    """rm.train at its TrainConfig defaults, with the shared batch/lr/epochs/max length (+ overrides)."""
    from bench.accuracy import pair_data
    from rm.formatting import Formatter
    from rm.model import load_tokenizer
    from rm.train import TrainConfig, train_member

    config = TrainConfig(data="in-memory", out=str(tmp / "ours"), epochs=args.epochs, batch_size=args.batch_size,
                         lr=args.lr, max_length=args.max_length, seed=args.seed, progress=False,
                         **overrides)
    tokenizer = load_tokenizer(config.backbone or args.backbone)
    encode = Formatter(tokenizer, args.max_length).encode
    train_data, eval_data = pair_data(encode, train_ds), pair_data(encode, eval_ds)
    config.backbone = args.backbone
    cpu0 = time.process_time()
    model, metrics = train_member(config, train_data, None, Path(config.out), config.seed)
    cpu_seconds = time.process_time() - cpu0
    tokens = args.epochs * sum(len(f["chosen_ids"]) + len(f["rejected_ids"]) for f in train_data.features)
    r_c = score_ids(model, [f["chosen_ids"] for f in eval_data.features], tokenizer.pad_token_id)
    r_r = score_ids(model, [f["rejected_ids"] for f in eval_data.features], tokenizer.pad_token_id)
    return {"pairs": len(train_data) * args.epochs, "seconds": metrics["train_seconds"], "tokens": tokens,
            "cpu_seconds": cpu_seconds,
            "n_matmul_params": matmul_params(model), "n_params": metrics["n_params"],
            "truncated_train": train_data.n_truncated, **accuracies(r_c, r_r, kept)}


TRL_SETTINGS = {
    "trl-default": {},
    "trl-fp32": {"bf16": False},
    "trl-best": {"gradient_checkpointing": False, "train_sampling_strategy": "group_by_length",
                 "remove_unused_columns": False},
}


def run_trl(args, name: str, train_ds, eval_ds, kept, tmp: Path) -> dict:
    import torch
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    from rm.model import load_tokenizer, quiet_transformers

    tokenizer = load_tokenizer(args.backbone)
    tokenizer.eos_token = tokenizer.sep_token  # TRL appends eos; BERT tokenizers have none
    with quiet_transformers():
        model = AutoModelForSequenceClassification.from_pretrained(args.backbone, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    config = RewardConfig(output_dir=str(tmp / name), per_device_train_batch_size=args.batch_size,
                          learning_rate=args.lr, num_train_epochs=args.epochs, max_length=args.max_length,
                          seed=args.seed, report_to="none", save_strategy="no", disable_tqdm=True,
                          logging_steps=10**6, use_cpu=not torch.cuda.is_available(), **TRL_SETTINGS[name])
    columns = ["prompt", "chosen", "rejected"]
    trainer = RewardTrainer(model=model, args=config, train_dataset=train_ds.select_columns(columns),
                            processing_class=tokenizer)
    if config.train_sampling_strategy == "group_by_length":
        trainer.train_dataset = trainer.train_dataset.map(
            lambda x: {"length": max(len(x["chosen_ids"]), len(x["rejected_ids"]))})
    kept_train = trainer.train_dataset
    tokens = args.epochs * sum(len(c) + len(r) for c, r in zip(kept_train["chosen_ids"], kept_train["rejected_ids"]))
    cpu0 = time.process_time()
    result = trainer.train()
    cpu_seconds = time.process_time() - cpu0
    prompts, chosen, rejected = trl_texts(eval_ds, tokenizer.eos_token)
    r_c = score_ids(model, [keep_end(s, args.max_length) for s in trl_ids(tokenizer, prompts, chosen)],
                    tokenizer.pad_token_id)
    r_r = score_ids(model, [keep_end(s, args.max_length) for s in trl_ids(tokenizer, prompts, rejected)],
                    tokenizer.pad_token_id)
    return {"pairs": len(kept_train) * args.epochs, "seconds": result.metrics["train_runtime"], "tokens": tokens,
            "cpu_seconds": cpu_seconds,
            "n_matmul_params": matmul_params(model), "n_params": sum(p.numel() for p in model.parameters()),
            "dropped_train": len(train_ds) - len(kept_train), **accuracies(r_c, r_r, kept)}


def trl_kept_mask(backbone: str, eval_ds, max_length: int) -> np.ndarray:
    """(M,) bool: eval pairs that TRL keeps (both prompt+response+eos within max_length)."""
    from rm.model import load_tokenizer

    tokenizer = load_tokenizer(backbone)
    prompts, chosen, rejected = trl_texts(eval_ds, tokenizer.sep_token)
    lengths = [(len(a), len(b)) for a, b in zip(trl_ids(tokenizer, prompts, chosen), trl_ids(tokenizer, prompts, rejected))]
    return np.array([max(a, b) <= max_length for a, b in lengths])


def report(results: dict, peak: float, base: str = "trl-default") -> list[str]:
    import torch

    lines = [f"{'run':<12} {'pairs/s':>8} {'x ' + base:>16} {'tokens/s':>9} {'MFU':>6} {'MFU/cpu':>8} {'acc':>6} {'acc(TRL kept)':>14}"]
    for name, r in results.items():
        r["pairs_per_s"] = r["pairs"] / r["seconds"]
        r["tokens_per_s"] = r["tokens"] / r["seconds"]
        r["mfu"] = 6 * r["n_matmul_params"] * r["tokens_per_s"] / peak
        r["mfu_all_params"] = 6 * r["n_params"] * r["tokens_per_s"] / peak
        # per CPU-second the process got (peak per thread): MFU net of the other jobs on the machine
        r["mfu_cpu_time"] = 6 * r["n_matmul_params"] * r["tokens"] / r["cpu_seconds"] / (peak / torch.get_num_threads())
    for name, r in results.items():
        ratio = r["pairs_per_s"] / results[base]["pairs_per_s"] if base in results else float("nan")
        r["ratio_vs_" + base] = ratio
        lines.append(f"{name:<12} {r['pairs_per_s']:>8.2f} {ratio:>16.2f} {r['tokens_per_s']:>9.0f} {r['mfu']:>6.3f} {r['mfu_cpu_time']:>8.3f} "
                     f"{r['accuracy']:>6.3f} {r['accuracy_trl_kept']:>14.3f}")
    return lines


RUNS = {"ours": run_ours,  # TrainConfig defaults: dropout 0 since bench/README.md's run 3
        "ours-dropout0.1": lambda *a: run_ours(*a, dropout=0.1),  # the backbone's own dropout (the old default)
        "ours-packing": lambda *a: run_ours(*a, packing=True),
        "ours-padded": lambda *a: run_ours(*a, packing=False),
        "trl-default": lambda *a: run_trl(a[0], "trl-default", *a[1:]),
        "trl-fp32": lambda *a: run_trl(a[0], "trl-fp32", *a[1:]),
        "trl-best": lambda *a: run_trl(a[0], "trl-best", *a[1:])}


# --- whole process: each trainer as the command a user runs ------------------------------------

def ours_command(args, data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "rm.train", "--data", str(data), "--out", str(out), "--backbone", args.backbone,
            "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
            "--max-length", str(args.max_length), "--seed", str(args.seed), "--eval-fraction", "0",
            "--no-progress", *extra]


def trl_command(args, data: Path, out: Path, *extra: str) -> list[str]:
    """TRL's reward script at its defaults; BERT has no eos token, so [SEP] (TRL's docs' advice)."""
    return [sys.executable, "-m", "trl.scripts.reward", "--model_name_or_path", args.backbone,
            "--dataset_name", str(data.parent), "--output_dir", str(out), "--per_device_train_batch_size",
            str(args.batch_size), "--learning_rate", str(args.lr), "--num_train_epochs", str(args.epochs),
            "--max_length", str(args.max_length), "--seed", str(args.seed), "--eos_token", "[SEP]",
            "--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true", *extra]


PROCESSES = {
    "ours": lambda a, d, o: ours_command(a, d, o),  # TrainConfig defaults
    "ours-packing": lambda a, d, o: ours_command(a, d, o, "--packing"),
    "ours-padded": lambda a, d, o: ours_command(a, d, o, "--no-packing"),
    "ours-1thread": lambda a, d, o: ours_command(a, d, o, "--num-threads", "1"),
    "ours-all-blocks": lambda a, d, o: ours_command(a, d, o, "--freeze-layers", "0"),  # every block trains (the default; named for freeze runs)
    "ours-freeze2": lambda a, d, o: ours_command(a, d, o, "--freeze-layers", "2"),  # backward through 4 of 6 blocks
    "ours-freeze3": lambda a, d, o: ours_command(a, d, o, "--freeze-layers", "3"),
    "trl-default": lambda a, d, o: trl_command(a, d, o),  # bf16 on: RewardConfig's default
    "trl-fp32": lambda a, d, o: trl_command(a, d, o, "--bf16", "false"),  # what this CPU should use
    "trl-best": lambda a, d, o: trl_command(a, d, o, "--bf16", "false", "--gradient_checkpointing", "false",
                                            "--train_sampling_strategy", "group_by_length"),
}


def write_pairs(n: int, folder: Path) -> Path:
    """The first n hh-rlhf rows as they are in the file (chosen/rejected transcripts) as the one
    JSONL file of `folder`: rm.data splits off the prompt (as bench/accuracy.hh_splits), TRL reads
    the transcripts as implicit-prompt pairs (its prompt + response)."""
    import gzip
    from itertools import islice

    from bench.accuracy import HH_FILE

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train.jsonl"
    with gzip.open(HH_FILE, "rt") as src, open(path, "w") as f:
        f.writelines(islice(src, n))
    return path


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_process(command: list[str], log: Path) -> dict:
    """Wall and CPU seconds of one command, the load average before and after; its output goes to `log`."""
    load0, cpu0, t0 = load_text(), children_cpu(), time.perf_counter()
    with open(log, "w") as f:
        code = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1]).returncode
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    text = log.read_text()
    if code != 0:
        raise SystemExit(f"error: {' '.join(command[:4])} ... failed with exit status {code}; its output is in {log}")
    trl_loop = re.search(r"'train_runtime': '?([0-9.]+)", text)
    return {"wall_seconds": wall, "cpu_seconds": cpu, "load_start": load0, "load_end": load_text(),
            "loop_seconds": float(trl_loop.group(1)) if trl_loop else None}


def run_processes(args, train_ds, tmp: Path) -> dict:
    """Each name in args.processes once, in order; best (least wall time) of each name compared."""
    data = write_pairs(len(train_ds), tmp / "data")
    runs = []
    for i, name in enumerate(args.processes.split(",")):
        if name not in PROCESSES:
            raise SystemExit(f"error: --processes: unknown run {name!r}; choose from {sorted(PROCESSES)}")
        out = tmp / f"{i}-{name}"
        log = OUT / "logs" / f"train_vs_trl-{i}-{name}.log"  # kept: a failed run's output outlives tmp
        log.parent.mkdir(parents=True, exist_ok=True)
        r = {"name": name, **run_process(PROCESSES[name](args, data, out), log)}
        metrics = out / "metrics.json"
        if metrics.is_file():  # ours: the training loop's own time
            r["loop_seconds"] = json.loads(metrics.read_text())["train_seconds"]
        runs.append(r)
        print(f"{name}: wall {r['wall_seconds']:.1f} s, CPU {r['cpu_seconds']:.1f} s, loop {r['loop_seconds']} s, "
              f"load {r['load_start']} -> {r['load_end']}", flush=True)
    best = {}
    for r in runs:
        if r["name"] not in best or r["wall_seconds"] < best[r["name"]]["wall_seconds"]:
            best[r["name"]] = r
    return {"runs": runs, "best": best}


def trained_tokens(args, train_ds) -> dict[str, int]:
    """Real tokens each trainer trains on per epoch: ours every pair (truncated keeping the response
    end); TRL the pairs whose prompt + response + eos fit max_length (it drops the rest)."""
    from rm.formatting import Formatter
    from rm.model import load_tokenizer

    tokenizer = load_tokenizer(args.backbone)
    encode = Formatter(tokenizer, args.max_length).encode
    ours = sum(len(x) for side in ("chosen", "rejected") for x in encode(train_ds["prompt"], train_ds[side]).input_ids)
    prompts, chosen, rejected = trl_texts(train_ds, tokenizer.sep_token)
    pairs = zip(trl_ids(tokenizer, prompts, chosen), trl_ids(tokenizer, prompts, rejected))
    trl = sum(len(a) + len(b) for a, b in pairs if max(len(a), len(b)) <= args.max_length)
    return {"ours": ours * args.epochs, "trl": trl * args.epochs}


def add_mfu(best: dict, tokens: dict, n_matmul: int, peak: float) -> None:
    """MFU of each run's training loop: 6 · Linear weights · real tokens / loop seconds / peak."""
    for name, r in best.items():
        t = tokens["trl" if name.startswith("trl") else "ours"]
        r["tokens"] = t
        r["mfu_loop"] = 6 * n_matmul * t / r["loop_seconds"] / peak if r.get("loop_seconds") else None


def process_report(best: dict) -> list[str]:
    """Best wall/CPU seconds of each run and every TRL run's time divided by each of ours."""
    nan = float("nan")
    lines = [f"{'run':<14} {'wall s':>8} {'CPU s':>8} {'loop s':>8} {'tokens':>8} {'MFU loop':>9}"]
    lines += [f"{n:<14} {r['wall_seconds']:>8.1f} {r['cpu_seconds']:>8.1f} {r['loop_seconds'] or nan:>8.1f} "
              f"{r.get('tokens', 0):>8} {r.get('mfu_loop') or nan:>9.3f}" for n, r in best.items()]
    for trl in (n for n in best if n.startswith("trl")):
        for ours in (n for n in best if n.startswith("ours")):
            lines.append(f"{trl} / {ours}: wall {best[trl]['wall_seconds'] / best[ours]['wall_seconds']:.2f}x, "
                         f"CPU {best[trl]['cpu_seconds'] / best[ours]['cpu_seconds']:.2f}x")
    return lines


def main(argv=None):
    import torch

    from bench.accuracy import hh_splits
    from rm.defaults import default_backbone
    from rm.device import autocast_dtype, default_device

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-pairs", type=int, default=1800)
    parser.add_argument("--eval-pairs", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backbone", default=None, help="default: the offline MiniLM")
    parser.add_argument("--runs", default="ours,trl-default,trl-best,ours", help=f"comma list of {list(RUNS)}")
    parser.add_argument("--processes", default=None,
                        help=f"whole-process timing instead: comma list of {list(PROCESSES)} (repeat to interleave)")
    args = parser.parse_args(argv)
    args.backbone = args.backbone or default_backbone()

    print(machine_line(), flush=True)
    if args.processes:
        return main_processes(args)
    dtype = autocast_dtype(default_device()) or torch.float32
    peaks = [matmul_peak(dtype)]
    train_ds, eval_ds = hh_splits(args.train_pairs, args.eval_pairs)
    kept = trl_kept_mask(args.backbone, eval_ds, args.max_length)
    print(f"{len(train_ds)} train pairs, {len(eval_ds)} eval pairs ({kept.sum()} within TRL's max_length), "
          f"epochs {args.epochs}, batch {args.batch_size}, lr {args.lr}, max length {args.max_length}", flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.runs.split(","):  # a name listed twice runs twice (to see drift in the load)
            key = name if name not in results else f"{name}-again"
            t0 = time.perf_counter()
            results[key] = RUNS[name](args, train_ds, eval_ds, kept, Path(tmp) / key)
            print(f"{key}: {json.dumps(results[key])} ({time.perf_counter() - t0:.0f}s; {load_line()})", flush=True)
    peaks.append(matmul_peak(dtype))
    peak = max(peaks)
    print(f"matmul peak ({str(dtype).removeprefix('torch.')}, 1024^3, best of start/end): {peak / 1e9:.1f} GFLOP/s")
    for line in report(results, peak):
        print(line)
    OUT.mkdir(parents=True, exist_ok=True)
    record = {"args": vars(args), "peak_flops": peak, "results": results, "machine": machine_line(), "end": load_line()}
    with open(OUT / "train_vs_trl.jsonl", "a") as f:
        f.write(json.dumps(record, default=str) + "\n")
    print(load_line())
    return results


def main_processes(args) -> dict:
    from bench.accuracy import hh_splits

    import torch
    from transformers import AutoModel

    train_ds, _ = hh_splits(args.train_pairs, 1)
    tokens = trained_tokens(args, train_ds)
    n_matmul = matmul_params(AutoModel.from_pretrained(args.backbone))
    print(f"{len(train_ds)} train pairs, epochs {args.epochs}, batch {args.batch_size}, lr {args.lr}, max length "
          f"{args.max_length}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; real tokens {tokens}, "
          f"Linear weights {n_matmul:,}", flush=True)
    from rm.device import autocast_dtype, default_device

    dtype = autocast_dtype(default_device()) or torch.float32  # the precision rm.train picks here
    peaks = [matmul_peak(dtype)]
    with tempfile.TemporaryDirectory() as tmp:
        result = run_processes(args, train_ds, Path(tmp))
    peaks.append(matmul_peak(dtype))
    result["peak_flops"] = max(peaks)
    print(f"matmul peak ({str(dtype).removeprefix('torch.')}, 1024^3, {torch.get_num_threads()} threads, best of "
          f"start/end): {max(peaks) / 1e9:.1f} GFLOP/s")
    add_mfu(result["best"], tokens, n_matmul, max(peaks))
    for line in process_report(result["best"]):
        print(line)
    OUT.mkdir(parents=True, exist_ok=True)
    record = {"mode": "processes", "args": vars(args), **result, "machine": machine_line(), "end": load_line()}
    with open(OUT / "train_vs_trl.jsonl", "a") as f:
        f.write(json.dumps(record, default=str) + "\n")
    print(load_line())
    return result


if __name__ == "__main__":
    main()
