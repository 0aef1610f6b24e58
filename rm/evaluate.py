"""Held-out evaluation of a reward model: accuracy, reward gap, log-loss, Brier, ECE (raw and
after the checkpoint's temperature) and a reliability table.

Benchmark formats (rm.data reads them):
- a `subset` column: accuracy per subset (`per_subset`), and when the subsets are RewardBench
  v1's, its section-weighted score (`rewardbench`: each section is its subsets' accuracies
  weighted by REWARDBENCH_COUNTS, the score is the mean of the sections present);
- best-of-n rows (RewardBench 2: one chosen, three rejected): a row is correct when every
  chosen response beats every rejected one (`best_of_n`; chance is 1/4 for one against
  three), and `per_subset` counts rows, not pairs.
Equal rewards count half here (RewardBench counts them wrong; with float rewards they are rare).

`python -m rm.evaluate --rm DIR --data SRC [--data-dir D] [--split S] [--max-pairs N] --json`
"""
import argparse
import json
from dataclasses import asdict, dataclass, field
from math import comb

import numpy as np

from rm.cli import add_dataclass_args, from_dict

# RewardBench v1 (allenai/reward-bench, rewardbench/constants.py): the subsets of each section
# and the example counts that weight them (math-prm counts 984, not its 447 rows, so that it
# weighs as much as the six code subsets together).
REWARDBENCH_SECTIONS = {
    "Chat": ["alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med"],
    "Chat Hard": ["mt-bench-hard", "llmbar-natural", "llmbar-adver-neighbor", "llmbar-adver-GPTInst",
                  "llmbar-adver-GPTOut", "llmbar-adver-manual"],
    "Safety": ["refusals-dangerous", "refusals-offensive", "xstest-should-refuse", "xstest-should-respond",
               "donotanswer"],
    "Reasoning": ["math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"],
}
REWARDBENCH_COUNTS = {
    "alpacaeval-easy": 100, "alpacaeval-length": 95, "alpacaeval-hard": 95, "mt-bench-easy": 28,
    "mt-bench-med": 40, "mt-bench-hard": 37, "llmbar-natural": 100, "llmbar-adver-neighbor": 134,
    "llmbar-adver-GPTInst": 92, "llmbar-adver-GPTOut": 47, "llmbar-adver-manual": 46,
    "refusals-dangerous": 100, "refusals-offensive": 100, "xstest-should-refuse": 250,
    "xstest-should-respond": 154, "donotanswer": 136, "math-prm": 984, "hep-cpp": 164, "hep-go": 164,
    "hep-java": 164, "hep-js": 164, "hep-python": 164, "hep-rust": 164,
}


@dataclass
class EvalConfig:
    rm: str = field(default=None, metadata={"help": "checkpoint folder, ensemble folder, HF reward model path or Hub id"})
    data: str = field(default=None, metadata={"help": "preferences: export folder, JSONL/CSV/Parquet file or Hub id"})
    data_dir: str | None = field(default=None, metadata={"help": "Hub dataset sub-folder"})
    split: str | None = field(default=None, metadata={"help": "Hub dataset split (default: train)"})
    max_pairs: int | None = field(default=None, metadata={"help": "evaluate only the first N pairs"})
    batch_size: int = field(default=32, metadata={"help": "sequences per forward pass"})
    precision: str = field(default="auto", metadata={"help": "auto (bf16 where fast), bf16 or fp32"})
    n_bins: int = field(default=10, metadata={"help": "probability bins for ECE and the reliability table"})


def score_unique(scorer, prompts: list[str], responses: list[str], batch_size: int = 32) -> np.ndarray:
    """(N,) mean rewards of (prompt, response) pairs; each distinct pair is scored once."""
    keys = list(zip(prompts, responses, strict=True))
    unique = list(dict.fromkeys(keys))
    rewards = np.asarray(scorer.score([p for p, _ in unique], [r for _, r in unique], batch_size).mean, float)
    index = {key: i for i, key in enumerate(unique)}
    return rewards[[index[key] for key in keys]]


def score_pairs(scorer, ds, batch_size: int = 32):
    """(r_chosen, r_rejected) mean rewards, each (N,), for a preference dataset."""
    prompts, n = list(ds["prompt"]), len(ds["prompt"])
    rewards = score_unique(scorer, prompts + prompts, list(ds["chosen"]) + list(ds["rejected"]), batch_size)
    return rewards[:n], rewards[n:]


def best_of_n(r_c: np.ndarray, r_r: np.ndarray, ds) -> tuple[dict, np.ndarray, np.ndarray]:
    """Row-level results of best-of-n data: ({"n", "accuracy", "chance"}, correct (G,), row of
    each group's first pair (G,)). A row is correct when all its chosen beat all its rejected."""
    groups = np.asarray(ds["group"])
    order, first = np.unique(groups, return_index=True)
    correct = np.array([bool(np.all(r_c[groups == g] > r_r[groups == g])) for g in order])
    chosen, rejected = np.asarray(ds["chosen"], dtype=object), np.asarray(ds["rejected"], dtype=object)
    sizes = [(len(set(chosen[groups == g])), len(set(rejected[groups == g]))) for g in order]
    chance = float(np.mean([1 / comb(c + r, c) for c, r in sizes]))
    return {"n": len(order), "accuracy": float(correct.mean()), "chance": chance}, correct, first


def per_subset(subsets: list[str], hits) -> dict[str, dict]:
    """{subset: {"n", "accuracy"}} from one subset name per unit and a scorer of a unit mask."""
    names = np.asarray(subsets, dtype=object)
    return {name: {"n": int((names == name).sum()), "accuracy": float(hits(names == name))}
            for name in dict.fromkeys(subsets)}


def rewardbench_score(subsets: dict[str, dict]) -> dict | None:
    """RewardBench v1's section scores and their mean, from per-subset accuracies; None when no
    RewardBench subset is present."""
    sections = {}
    for section, names in REWARDBENCH_SECTIONS.items():
        present = [s for s in names if s in subsets]
        if present:
            weight = sum(REWARDBENCH_COUNTS[s] for s in present)
            sections[section] = sum(subsets[s]["accuracy"] * REWARDBENCH_COUNTS[s] for s in present) / weight
    if not sections:
        return None
    return {"sections": sections, "score": float(np.mean(list(sections.values()))),
            "missing_sections": [s for s in REWARDBENCH_SECTIONS if s not in sections]}


def evaluate(config: EvalConfig | dict, scorer=None) -> dict:
    """Metrics of `config.rm` (or an already loaded `scorer`) on `config.data`; JSON-ready dict."""
    from rm.data import load_preferences
    from rm.metrics import accuracy, all_metrics, reliability_table
    from rm.score import load_scorer

    config = from_dict(EvalConfig, config) if isinstance(config, dict) else config
    scorer = scorer or load_scorer(config.rm, precision=config.precision)
    ds = load_preferences(config.data, config.data_dir, config.split, config.max_pairs)
    r_c, r_r = score_pairs(scorer, ds, config.batch_size)
    temperature = getattr(scorer, "temperature", 1.0)
    ties = np.asarray(ds["tie"], dtype=bool)
    report = all_metrics(r_c, r_r, ties, temperature)
    report["reliability"] = reliability_table(r_c, r_r, ties, temperature, config.n_bins).to_dict("records")
    subsets = list(ds["subset"]) if "subset" in ds.column_names else None
    if "group" in ds.column_names:
        report["best_of_n"], correct, first = best_of_n(r_c, r_r, ds)
        if subsets is not None:
            report["per_subset"] = per_subset([subsets[i] for i in first], lambda mask: correct[mask].mean())
            report["best_of_n"]["subset_mean"] = float(np.mean([v["accuracy"] for v in report["per_subset"].values()]))
    elif subsets is not None:
        report["per_subset"] = per_subset(subsets, lambda mask: accuracy(r_c[mask], r_r[mask], ties[mask]))
    if "per_subset" in report and (bench := rewardbench_score(report["per_subset"])) is not None:
        report["rewardbench"] = bench
    report["rm"] = getattr(scorer, "name", str(config.rm))
    report["config"] = asdict(config)
    return report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m rm.evaluate", description=__doc__.splitlines()[0])
    add_dataclass_args(parser, EvalConfig, required=("rm", "data"))
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    args = vars(parser.parse_args(argv))
    as_json = args.pop("json")
    report = evaluate(EvalConfig(**args))
    if as_json:
        print(json.dumps(report))
    else:
        keys = ("n", "accuracy", "reward_gap", "log_loss", "log_loss_calibrated", "brier", "ece", "ece_calibrated", "temperature")
        print("\n".join(f"{k:>20}: {report[k]:.4f}" if isinstance(report[k], float) else f"{k:>20}: {report[k]}" for k in keys))
        if "best_of_n" in report:
            b = report["best_of_n"]
            print(f"{'best_of_n':>20}: {b['accuracy']:.4f} over {b['n']} rows (chance {b['chance']:.4f})")
        for name, row in report.get("per_subset", {}).items():
            print(f"{name:>20}: {row['accuracy']:.4f} (n={row['n']})")
        for name, value in report.get("rewardbench", {}).get("sections", {}).items():
            print(f"{'RewardBench ' + name:>20}: {value:.4f}")
        if "rewardbench" in report:
            print(f"{'RewardBench score':>20}: {report['rewardbench']['score']:.4f}")
    return report


if __name__ == "__main__":
    from labeling.cli import run_cli

    raise SystemExit(run_cli(main))
