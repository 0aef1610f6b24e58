"""Held-out evaluation of a reward model: accuracy, reward gap, log-loss, Brier, ECE (raw and
after the checkpoint's temperature) and a reliability table.

`python -m rm.evaluate --rm DIR --data SRC [--data-dir D] [--split S] [--max-pairs N] --json`
"""
import argparse
import json
from dataclasses import asdict, dataclass, field

from rm.cli import add_dataclass_args, from_dict


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


def score_pairs(scorer, ds, batch_size: int = 32):
    """(r_chosen, r_rejected) mean rewards, each (N,), for a preference dataset."""
    prompts = ds["prompt"]
    return (scorer.score(prompts, ds["chosen"], batch_size).mean,
            scorer.score(prompts, ds["rejected"], batch_size).mean)


def evaluate(config: EvalConfig | dict, scorer=None) -> dict:
    """Metrics of `config.rm` (or an already loaded `scorer`) on `config.data`; JSON-ready dict."""
    from rm.data import load_preferences
    from rm.metrics import all_metrics, reliability_table
    from rm.score import load_scorer

    config = from_dict(EvalConfig, config) if isinstance(config, dict) else config
    scorer = scorer or load_scorer(config.rm, precision=config.precision)
    ds = load_preferences(config.data, config.data_dir, config.split, config.max_pairs)
    r_c, r_r = score_pairs(scorer, ds, config.batch_size)
    temperature = getattr(scorer, "temperature", 1.0)
    report = all_metrics(r_c, r_r, ds["tie"], temperature)
    report["reliability"] = reliability_table(r_c, r_r, ds["tie"], temperature, config.n_bins).to_dict("records")
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
    return report


if __name__ == "__main__":
    main()
