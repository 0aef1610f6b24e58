"""Training in a worker thread for an interactive front end: the training set written next
to the run, a stop flag a button can set, and the trainer's callback events as a stream.

    run = TrainingRun()
    with run.active():
        for event in train_in_background(config, stop=lambda: run.stop):
            ...  # {"event": "step" | "eval" | ..., ...}, finally {"event": "done", "path": ...}
"""
from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

PAIR_COLUMNS = ["prompt", "chosen", "rejected", "margin", "tie"]


def write_pairs(pairs: pd.DataFrame, target: str | Path) -> str:
    """The training pairs as a JSONL file `rm.train` reads (kept beside the run, so it can be
    reproduced); at least 2 pairs. Returns the path."""
    if len(pairs) < 2:
        raise ValueError(f"only {len(pairs)} preference pair(s); training needs at least 2")
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    pairs[[c for c in PAIR_COLUMNS if c in pairs]].to_json(target, orient="records", lines=True,
                                                           force_ascii=False)
    return str(target)


@dataclass
class TrainingRun:
    """One front-end session's training run (never shared between sessions): a Stop button
    sets `stop`; the training callback reads it after every step."""

    running: bool = False
    stop: bool = False

    @contextmanager
    def active(self) -> Iterator[TrainingRun]:
        self.running, self.stop = True, False  # a Stop pressed before this run does not count
        try:
            yield self
        finally:
            self.running = False


def train_in_background(config, stop: Callable[[], bool] = lambda: False) -> Iterator[dict]:
    """Run rm.train.train(config) in a worker thread; yield its callback events as they arrive,
    then {"event": "done", "path": checkpoint}. A training error is re-raised here.

    Once `stop()` is true, training ends after its current step and saves what it has. If the
    consumer goes away the generator stops but the run finishes and is saved.
    """
    from rm.train import train

    events: queue.Queue = queue.Queue()

    def report(event: dict) -> bool:
        events.put(event)
        return not stop()  # False: rm.train stops after this step

    def work() -> None:
        try:
            events.put({"event": "done", "path": str(train(config, report))})
        except Exception as err:  # handed to the consumer, which raises it
            events.put({"event": "error", "error": err})

    threading.Thread(target=work, name="rm-train", daemon=True).start()
    while True:
        event = events.get()
        if event["event"] == "error":
            raise event["error"]
        yield event
        if event["event"] == "done":
            return


def plot_training(events: list[dict]) -> Figure | None:
    """Loss and accuracy per step (one colour per ensemble member), eval accuracy as dots."""
    steps = [e for e in events if e.get("event") == "step"]
    if not steps:
        return None
    fig = Figure(figsize=(8, 2.8), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    frame = pd.DataFrame(steps)
    evals = pd.DataFrame([e for e in events if e.get("event") == "eval"])
    for member, part in frame.groupby("member"):
        colour = f"C{member}"
        label = f"member {member}" if frame.member.nunique() > 1 else "train"
        loss_ax.plot(part.step, part.loss, color=colour, lw=1.2, label=label)
        smooth = part.accuracy.rolling(5, min_periods=1).mean()
        acc_ax.plot(part.step, smooth, color=colour, lw=1.2, label=f"{label} (5-step mean)")
        if not evals.empty and "eval_accuracy" in evals:
            ev = evals[evals.member == member]
            acc_ax.plot(ev.step, ev.eval_accuracy, "o", color=colour, ms=6, mfc="white",
                        label="held-out" if member == 0 else None)
    loss_ax.set(title="Bradley-Terry loss", xlabel="step")
    acc_ax.set(title="pairwise accuracy", xlabel="step", ylim=(-0.02, 1.02))
    acc_ax.axhline(0.5, color="grey", ls=":", lw=0.8)
    total = int(frame.total_steps.max())
    for ax in (loss_ax, acc_ax):
        ax.set_xlim(0, max(total, 1) + 0.5)
        ax.grid(alpha=0.3)
    acc_ax.legend(fontsize="small", loc="lower right")
    return fig


def safe_name(name: str | None) -> str:
    """A checkpoint folder name from user text: letters, digits, '.', '_' and '-' only, never
    '..' or a path (default: a UTC timestamp)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", (name or "").strip()).strip(".-")
    return name or datetime.now(timezone.utc).strftime("rm-%Y%m%d-%H%M%S")


def run_config(options: dict, runs: str | Path, **fixed):
    """A TrainConfig for a named run in `runs`/rm from a front end's options.

    `options` holds "name" (the checkpoint folder; see `safe_name`) and any TrainConfig field
    by name; empty strings and a zero `max_pairs` mean the default. `fixed` fields win. Raises
    ValueError when the checkpoint exists, TypeError (with a did-you-mean) for an unknown key.
    """
    from rm.train import TrainConfig

    options = {k: v for k, v in dict(options or {}).items() if v not in ("", None)}
    name = safe_name(options.pop("name", None))
    if not options.get("max_pairs"):
        options.pop("max_pairs", None)
    out = Path(runs) / "rm" / name
    if out.exists():
        raise ValueError(f"a checkpoint named {name!r} already exists in {out.parent}; choose another name")
    return TrainConfig.from_dict({**options, **fixed, "out": str(out)})
