"""Labels -> a preference dataset in TRL's explicit-prompt schema (prompt, chosen, rejected).

One row per label (`aggregate="none"`) or one per task pairing (`"majority"`). Nothing is
dropped: rows where no response won are kept with `tie=True` (and `both_bad=True` when
the judgement was "both bad"), so a trainer decides what to do with them. For such rows
chosen/rejected are the responses in shown order (per label) or in the pairing's own
order, e.g. a then b (majority).

Columns (FEATURES): prompt, chosen, rejected (str); margin (float: MARGINS[strength] for a
win, 0.0 when no response won; majority: the mean margin of the labels that picked the
majority winner); tie, both_bad (bool); annotator (majority: sorted names joined by ",");
task_id, task_kind, category; pair_index (which pairing of the task); shown_order (per label:
letters as shown, e.g. "ba"; majority: the pairing's letters, e.g. "ca"); n_labels (1 per
label; the group size for majority); created_at (UTC ISO; majority: the latest label).

`known_preferences(tasks)` gives rows in the same schema without any labels: the tasks whose
better response is known (gold: `better`; agreement: the correcting response).
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import datasets
import pandas as pd
import pyarrow.parquet as pq

from labeling.store import Store
from labeling.vocab import MARGINS, STRENGTH_WORDS
from labeling.tasks import Task

FEATURES = datasets.Features({
    "prompt": datasets.Value("string"),
    "chosen": datasets.Value("string"),
    "rejected": datasets.Value("string"),
    "margin": datasets.Value("float64"),
    "tie": datasets.Value("bool"),
    "both_bad": datasets.Value("bool"),
    "annotator": datasets.Value("string"),
    "task_id": datasets.Value("string"),
    "task_kind": datasets.Value("string"),
    "category": datasets.Value("string"),
    "pair_index": datasets.Value("int64"),
    "shown_order": datasets.Value("string"),
    "n_labels": datasets.Value("int64"),
    "created_at": datasets.Value("string"),
})
CONFIG_FILE = "export_config.json"
DATA_FILES = {"jsonl": "preferences.jsonl", "parquet": "preferences.parquet"}


def _none_if_na(value):
    return None if pd.isna(value) else value


def per_label(labels: pd.DataFrame) -> list[dict]:
    """One preference row per label (labels: the `Store.labels()` frame)."""
    return [{"prompt": r.prompt, "chosen": r.chosen, "rejected": r.rejected,
             "margin": float(r.margin), "tie": bool(r.tie), "both_bad": bool(r.both_bad),
             "annotator": r.annotator, "task_id": r.task_id, "task_kind": r.task_kind,
             "category": _none_if_na(r.category), "pair_index": int(r.pair_index),
             "shown_order": r.shown_order, "n_labels": 1, "created_at": r.created_at}
            for r in labels.itertuples(index=False)]


def _texts_by_index(group: pd.DataFrame) -> dict[int, str]:
    """Response index -> text, from what was shown in a group of labels of one pairing."""
    first = group.iloc[0]
    return {int(first.left_index): first.left, int(first.right_index): first.right}


def _majority_row(group: pd.DataFrame) -> dict:
    """One pairing's labels -> one row: the winner picked by more than half, else a tie."""
    n = len(group)
    votes = Counter(int(w) for w in group.winner.dropna())
    winner, count = votes.most_common(1)[0] if votes else (None, 0)
    first = group.iloc[0]
    pair = first.pair  # e.g. "ca": the pairing's response letters in its own order
    texts = _texts_by_index(group)
    i, j = ("abc".index(pair[0]), "abc".index(pair[1]))
    if count * 2 > n:
        won = group[group.winner == winner]
        chosen, rejected, margin, tie = texts[winner], texts[i + j - winner], won.margin.mean(), False
    else:
        chosen, rejected, margin, tie = texts[i], texts[j], 0.0, True
    both_bad = tie and int(group.both_bad.sum()) * 2 > n
    return {"prompt": first.prompt, "chosen": chosen, "rejected": rejected,
            "margin": float(margin), "tie": tie, "both_bad": both_bad,
            "annotator": ",".join(sorted(group.annotator)), "task_id": first.task_id,
            "task_kind": first.task_kind, "category": _none_if_na(first.category),
            "pair_index": int(first.pair_index), "shown_order": pair, "n_labels": n,
            "created_at": group.created_at.max()}


def majority(labels: pd.DataFrame) -> list[dict]:
    """One preference row per task pairing, in the order their first label arrived."""
    groups = labels.groupby(["task_id", "pair_index"], sort=False)
    return [_majority_row(group) for _, group in groups]


AGGREGATORS: dict[str, Callable[[pd.DataFrame], list[dict]]] = {
    "none": per_label,
    "majority": majority,
}


def preference_rows(labels: pd.DataFrame, aggregate: str = "none") -> list[dict]:
    """The `Store.labels()` frame -> preference rows (dicts with the FEATURES columns)."""
    if aggregate not in AGGREGATORS:
        raise ValueError(f"unknown aggregate {aggregate!r}; use one of {', '.join(AGGREGATORS)}")
    return AGGREGATORS[aggregate](labels)


def as_dataset(rows: list[dict]) -> datasets.Dataset:
    """Preference rows -> a `datasets.Dataset` with FEATURES (also when there are none)."""
    return datasets.Dataset.from_list(rows, features=FEATURES) if rows else \
        datasets.Dataset.from_dict({name: [] for name in FEATURES}, features=FEATURES)


def to_dataset(store: Store, aggregate: str = "none") -> datasets.Dataset:
    """The store's labels as a `datasets.Dataset` with FEATURES (also when there are none)."""
    return as_dataset(preference_rows(store.labels(), aggregate))


KNOWN_WINNER: dict[str, Callable[[Task], int]] = {  # task kind -> index of the better response
    "gold": lambda task: task.better,
    "agreement": lambda task: 1 - task.agreeing,
}


def known_preference_rows(tasks: Iterable[Task]) -> list[dict]:
    """One preference row (FEATURES) per task with a known answer; other kinds are left out.

    No one labelled these rows: margin 0.0, annotator and created_at None, n_labels 0, and
    shown_order is the pairing's own letters ("ab").
    """
    rows = []
    for t in tasks:
        if t.kind not in KNOWN_WINNER:
            continue
        winner = KNOWN_WINNER[t.kind](t)
        rows.append({"prompt": t.prompt, "chosen": t.responses[winner], "rejected": t.responses[1 - winner],
                     "margin": 0.0, "tie": False, "both_bad": False, "annotator": None, "task_id": t.id,
                     "task_kind": t.kind, "category": t.category, "pair_index": 0, "shown_order": "ab",
                     "n_labels": 0, "created_at": None})
    return rows


def known_preferences(tasks: Iterable[Task]) -> datasets.Dataset:
    """Gold tasks (`better` chosen) and agreement tasks (the correcting response chosen) as a
    preference dataset with FEATURES, in task order."""
    return as_dataset(known_preference_rows(tasks))


# ---------------------------------------------------------------- writing to disk

def _write_hf(ds: datasets.Dataset, out: Path) -> Path:
    ds.save_to_disk(str(out))
    return out


def _write_jsonl(ds: datasets.Dataset, out: Path) -> Path:
    path = out / DATA_FILES["jsonl"]
    with path.open("w", encoding="utf-8") as f:
        for row in ds:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def _write_parquet(ds: datasets.Dataset, out: Path) -> Path:
    path = out / DATA_FILES["parquet"]
    pq.write_table(ds.data.table, path)
    return path


WRITERS: dict[str, Callable[[datasets.Dataset, Path], Path]] = {
    "hf": _write_hf,
    "jsonl": _write_jsonl,
    "parquet": _write_parquet,
}


@dataclass
class ExportConfig:
    """What `export` writes; saved next to the data as export_config.json."""

    out: str = field(metadata={"help": "Folder for the dataset and export_config.json."})
    format: str = field(default="hf", metadata={
        "help": "hf (datasets save_to_disk), jsonl (preferences.jsonl) or parquet "
                "(preferences.parquet)."})
    aggregate: str = field(default="none", metadata={
        "help": "none: one row per label; majority: one row per task pairing."})

    def __post_init__(self) -> None:
        if self.format not in WRITERS:
            raise ValueError(f"unknown format {self.format!r}; use one of {', '.join(WRITERS)}")
        if self.aggregate not in AGGREGATORS:
            raise ValueError(f"unknown aggregate {self.aggregate!r}; "
                             f"use one of {', '.join(AGGREGATORS)}")


def export(store: Store, config: ExportConfig) -> Path:
    """Write the dataset and its resolved config into `config.out`; returns the data path."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    ds = to_dataset(store, config.aggregate)
    path = WRITERS[config.format](ds, out)
    resolved = {**asdict(config), "db": store.safe_url, "rows": len(ds),
                "columns": list(FEATURES), "data": path.name if path != out else ".",
                "margins": {f"{s} ({STRENGTH_WORDS[s]})": m for s, m in MARGINS.items()},
                "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (out / CONFIG_FILE).write_text(json.dumps(resolved, indent=2) + "\n", encoding="utf-8")
    return path


def load_export(folder: str | Path) -> datasets.Dataset:
    """Read back an `export` folder of any format as a `datasets.Dataset` with FEATURES."""
    folder = Path(folder)
    if (folder / "state.json").is_file():
        return datasets.load_from_disk(str(folder))
    if (folder / DATA_FILES["parquet"]).is_file():
        return datasets.Dataset(pq.read_table(folder / DATA_FILES["parquet"])).cast(FEATURES)
    if (folder / DATA_FILES["jsonl"]).is_file():
        with (folder / DATA_FILES["jsonl"]).open(encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        return as_dataset(rows)
    raise FileNotFoundError(f"{folder} holds no export (no state.json, "
                            f"{DATA_FILES['parquet']} or {DATA_FILES['jsonl']})")


def export_zip(store: Store, config: ExportConfig) -> Path:
    """Export (data file + export_config.json) into `config.out`, then zip that folder beside it
    as preferences-<aggregate>-<format>-<UTC time>.zip, for a download."""
    import shutil

    export(store, config)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = Path(config.out).parent / f"preferences-{config.aggregate}-{config.format}-{stamp}"
    return Path(shutil.make_archive(str(base), "zip", config.out))
