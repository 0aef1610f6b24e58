"""The seed task set shipped in data/tasks/, imported when a store is empty."""
from __future__ import annotations

from pathlib import Path

from labeling.tasks import Task, load_tasks

SEED_DIR = Path(__file__).resolve().parents[1] / "data" / "tasks"
SEED_FILES = ("pairs.jsonl", "triads.jsonl", "agreement.jsonl", "gold.jsonl")


def load_seed_tasks(seed_dir: str | Path | None = None) -> list[Task]:
    """Every task in `seed_dir` (default SEED_DIR)/{pairs,triads,agreement,gold}.jsonl;
    missing files are skipped."""
    seed_dir = Path(seed_dir if seed_dir is not None else SEED_DIR)
    return [task for name in SEED_FILES if (seed_dir / name).is_file()
            for task in load_tasks(seed_dir / name)]
