"""Scaling sweep: reward models of growing width and depth, trained from scratch on the same
pairs, next to the pretrained backbone; a table and a plot of held-out accuracy against size.

`python -m rm.sweep --data SRC [--sizes 1x64,2x128,4x256,6x384] [--out runs/sweep]`
"""
import argparse
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from rm.cli import add_dataclass_args, from_dict

if TYPE_CHECKING:
    from rm.train import TrainConfig


@dataclass
class SweepConfig:
    data: str = field(default=None, metadata={"help": "preferences for every model (file, export folder or Hub id)"})
    eval_data: str | None = field(default=None, metadata={"help": "held-out preferences (default: --eval-fraction of --data)"})
    eval_fraction: float = field(default=0.2, metadata={"help": "share of --data held out when no --eval-data"})
    max_pairs: int | None = field(default=None, metadata={"help": "use only the first N pairs of --data"})
    backbone: str | None = field(default=None, metadata={"help": "pretrained model, and the config and tokenizer the scratch models start from (default: MiniLM)"})
    sizes: str = field(default="1x64,2x128,4x256,6x384", metadata={"help": "from-scratch sizes as LAYERSxHIDDEN, comma-separated"})
    pretrained: bool = field(default=True, metadata={"help": "also fine-tune the pretrained backbone"})
    epochs: int = field(default=1, metadata={"help": "epochs for every model"})
    batch_size: int = field(default=16, metadata={"help": "pairs per step"})
    lr: float = field(default=5e-5, metadata={"help": "learning rate of the pretrained model"})
    scratch_lr: float = field(default=5e-4, metadata={"help": "learning rate of the from-scratch models"})
    max_length: int = field(default=128, metadata={"help": "tokens per sequence"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    out: str = field(default="runs/sweep", metadata={"help": "folder for checkpoints, table.csv, sweep.json and sweep.png"})
    progress: bool = field(default=True, metadata={"help": "show tqdm progress bars"})


def parse_sizes(sizes: str) -> list[tuple[int, int]]:
    """'1x64,2x128' -> [(1, 64), (2, 128)] as (layers, hidden)."""
    try:
        return [tuple(int(v) for v in part.lower().split("x")) for part in sizes.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"sizes must look like '1x64,2x128' (LAYERSxHIDDEN), got {sizes!r}") from None


def scratch_overrides(layers: int, hidden: int) -> dict:
    """A BERT-style shape: 64-dim heads (at least one), 4x feed-forward."""
    return {"num_hidden_layers": layers, "hidden_size": hidden, "num_attention_heads": max(1, hidden // 64),
            "intermediate_size": 4 * hidden}


def sweep_runs(config: SweepConfig) -> list[tuple[str, "TrainConfig"]]:
    """(name, TrainConfig) for every model of the sweep; all share data, split, seed and length."""
    from rm.train import TrainConfig

    common = dict(data=config.data, eval_data=config.eval_data, eval_fraction=config.eval_fraction,
                  max_pairs=config.max_pairs, backbone=config.backbone, epochs=config.epochs,
                  batch_size=config.batch_size, max_length=config.max_length, seed=config.seed,
                  progress=config.progress, pooling="mean")
    runs = [(f"scratch-{layers}x{hidden}",
             TrainConfig(**common, out=str(Path(config.out) / f"scratch-{layers}x{hidden}"), from_scratch=True,
                         config_overrides=scratch_overrides(layers, hidden), lr=config.scratch_lr))
            for layers, hidden in parse_sizes(config.sizes)]
    if config.pretrained:
        runs.append(("pretrained", TrainConfig(**common, out=str(Path(config.out) / "pretrained"), lr=config.lr)))
    return runs


def non_embedding_parameters(model) -> int:
    """Parameters outside embedding tables (the usual x-axis of scaling plots)."""
    import torch

    embedded = sum(p.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters())
    return sum(p.numel() for p in model.parameters()) - embedded


def run_sweep(config: SweepConfig) -> pd.DataFrame:
    """Train every model of the sweep; one row each with size and held-out metrics."""
    from rm.checkpoint import load_rm
    from rm.train import train

    rows = []
    for name, run in sweep_runs(config):
        out = train(run)
        metrics = json.loads((out / "metrics.json").read_text())
        model = load_rm(out)
        rows.append({"model": name, "pretrained": not run.from_scratch,
                     "layers": model.config.num_hidden_layers, "hidden": model.config.hidden_size,
                     "params": metrics["n_params"], "non_embedding_params": non_embedding_parameters(model),
                     **{k: metrics.get(k) for k in ("n", "accuracy", "log_loss", "ece", "ece_calibrated",
                                                    "train_pairs_per_s", "train_seconds")}})
    return pd.DataFrame(rows)


def plot_sweep(table: pd.DataFrame):
    """Held-out accuracy against non-embedding parameters (log x); pretrained marked apart."""
    from matplotlib.figure import Figure  # not pyplot: no global registry keeps the figure alive

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    scratch, pre = table[~table["pretrained"]], table[table["pretrained"]]
    ax.plot(scratch["non_embedding_params"], scratch["accuracy"], "o-", label="from scratch")
    ax.plot(pre["non_embedding_params"], pre["accuracy"], "*", markersize=14, label="pretrained")
    for _, row in table.iterrows():
        ax.annotate(row["model"], (row["non_embedding_params"], row["accuracy"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set(xscale="log", xlabel="non-embedding parameters", ylabel="held-out pairwise accuracy",
           title=f"Reward-model scaling (n_eval = {int(table['n'].iloc[0])})")
    ax.legend()
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(prog="python -m rm.sweep", description=__doc__.splitlines()[0])
    add_dataclass_args(parser, SweepConfig, required=("data",))
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    args = vars(parser.parse_args(argv))
    as_json = args.pop("json")
    config = from_dict(SweepConfig, args)
    table = run_sweep(config)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "table.csv", index=False)
    plot_sweep(table).savefig(out / "sweep.png", dpi=120)
    report = {"config": dataclasses.asdict(config), "rows": table.to_dict("records")}
    (out / "sweep.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report) if as_json else table.to_string(index=False))
    return table


if __name__ == "__main__":
    from labeling.cli import run_cli

    raise SystemExit(run_cli(main))
