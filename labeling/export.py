"""Labels -> a preference dataset in TRL's explicit-prompt schema (prompt, chosen, rejected).

One row per label (`aggregate="none"`) or one per task pairing (`"majority"`). Nothing is
dropped: rows where no response won are kept with `tie=True` (and `both_bad=True` when
the judgement was "both bad"), so a trainer decides what to do with them. For such rows
chosen/rejected are the responses in shown order (per label) or in the pairing's own
order, e.g. a then b (majority).

Columns: FEATURES, each described once in COLUMN_DOCS (the dataset card prints them).

Profiles (PROFILES) choose rows and columns for a consumer: "full" keeps everything; "trl"
is TRL's RewardTrainer schema (prompt, chosen, rejected, margin) without the tie and
both-bad rows, which TRL would read as ordinary preferences, and records how many it left
out. Every export folder gets a dataset card (README.md: schema, counts, agreement) and can be
pushed to the Hugging Face Hub (`push_to_hub`).

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

from labeling.hub import check_repo_id, push_folder
from labeling.store import Store
from labeling.tasks import Task
from labeling.vocab import MARGINS, STRENGTH_WORDS

FEATURES = datasets.Features({
    "prompt": datasets.Value("string"),
    "chosen": datasets.Value("string"),
    "rejected": datasets.Value("string"),
    "margin": datasets.Value("float64"),
    "tie": datasets.Value("bool"),
    "both_bad": datasets.Value("bool"),
    "fast": datasets.Value("bool"),
    "annotator": datasets.Value("string"),
    "task_id": datasets.Value("string"),
    "task_kind": datasets.Value("string"),
    "category": datasets.Value("string"),
    "pair_index": datasets.Value("int64"),
    "shown_order": datasets.Value("string"),
    "n_labels": datasets.Value("int64"),
    "created_at": datasets.Value("string"),
})
COLUMN_DOCS: dict[str, str] = {
    "prompt": "the prompt the responses answer",
    "chosen": "the response that won; when none won, the first response as shown (per label) "
              "or the pairing's first response (majority)",
    "rejected": "the other response",
    "margin": "MARGINS[strength] for a win (1/3, 2/3, 1 for slightly, clearly, much better); 0.0 "
              "when no response won; majority: the mean margin of the labels that picked the winner",
    "tie": "no response won (a tie or both bad): a tie label, not a preference",
    "both_bad": "the judgement was 'both bad' (tie is true too)",
    "fast": "time on task under the store's min_seconds (env RMLAB_MIN_SECONDS, default 3): "
            "likely not read (FastChat drops such votes); majority: most of its labels were",
    "annotator": "who labelled it (majority: the sorted names joined by ',')",
    "task_id": "the task's id in the label store",
    "task_kind": "pair, triad, agreement or gold",
    "category": "the task's category, if any",
    "pair_index": "which pairing of the task: 0 for pairs; 0, 1, 2 = ab, bc, ca for triads",
    "shown_order": "per label: the response letters as shown, e.g. 'ba' = b on the left; "
                   "majority: the pairing's letters, e.g. 'ca'",
    "n_labels": "1 per label; the group size for majority; 0 for known preferences",
    "created_at": "UTC ISO time of the label (majority: the latest label)",
}
CONFIG_FILE = "export_config.json"
CARD_FILE = "README.md"
DATA_FILES = {"jsonl": "preferences.jsonl", "parquet": "preferences.parquet"}


def features_of(columns: Iterable[str]) -> datasets.Features:
    """FEATURES restricted to `columns`, in their order."""
    return datasets.Features({name: FEATURES[name] for name in columns})


def _none_if_na(value):
    return None if pd.isna(value) else value


def per_label(labels: pd.DataFrame) -> list[dict]:
    """One preference row per label (labels: the `Store.labels()` frame)."""
    return [{"prompt": r.prompt, "chosen": r.chosen, "rejected": r.rejected,
             "margin": float(r.margin), "tie": bool(r.tie), "both_bad": bool(r.both_bad),
             "fast": bool(r.fast), "annotator": r.annotator, "task_id": r.task_id, "task_kind": r.task_kind,
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
            "fast": int(group.fast.sum()) * 2 > n, "annotator": ",".join(sorted(group.annotator)), "task_id": first.task_id,
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


def as_dataset(rows: list[dict], columns: Iterable[str] = tuple(FEATURES)) -> datasets.Dataset:
    """Preference rows -> a `datasets.Dataset` with FEATURES of `columns` (also when empty)."""
    features = features_of(columns)
    return datasets.Dataset.from_list(rows, features=features) if rows else \
        datasets.Dataset.from_dict({name: [] for name in features}, features=features)


@dataclass(frozen=True)
class Profile:
    """Which rows and columns an export keeps: rows flagged by any of `leave_out` are left out
    and counted under the first such flag."""

    help: str
    columns: tuple[str, ...] = tuple(FEATURES)
    leave_out: tuple[str, ...] = ()


PROFILES: dict[str, Profile] = {
    "full": Profile("every row and column; rows where no response won stay, with tie=True"),
    "trl": Profile("TRL RewardTrainer's columns (prompt, chosen, rejected, margin) without tie and "
                   "both_bad rows, which TRL would read as preferences", columns=("prompt", "chosen", "rejected", "margin"),
                   leave_out=("both_bad", "tie")),
}


def apply_profile(rows: list[dict], profile: Profile) -> tuple[list[dict], dict[str, int]]:
    """(the rows the profile keeps, {flag: rows left out for it}); columns are chosen later."""
    kept, left_out = [], dict.fromkeys(profile.leave_out, 0)
    for row in rows:
        flag = next((f for f in profile.leave_out if row[f]), None)
        if flag is None:
            kept.append(row)
        else:
            left_out[flag] += 1
    return kept, left_out


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
                     "margin": 0.0, "tie": False, "both_bad": False, "fast": False, "annotator": None, "task_id": t.id,
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
    profile: str = field(default="full", metadata={
        "flag": "--for", "help": "; ".join(f"{name}: {p.help}" for name, p in PROFILES.items()) + "."})
    push_to_hub: str | None = field(default=None, metadata={
        "help": "Also upload the folder (data, card, config) to this Hub dataset repo, 'owner/name'."})
    private: bool = field(default=False, metadata={"help": "Create the Hub repo as private."})

    def __post_init__(self) -> None:
        if self.format not in WRITERS:
            raise ValueError(f"unknown format {self.format!r}; use one of {', '.join(WRITERS)}")
        if self.aggregate not in AGGREGATORS:
            raise ValueError(f"unknown aggregate {self.aggregate!r}; "
                             f"use one of {', '.join(AGGREGATORS)}")
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; use one of {', '.join(PROFILES)}")
        if self.push_to_hub is not None:
            check_repo_id(self.push_to_hub)


def export(store: Store, config: ExportConfig) -> Path:
    """Write the dataset, its card (README.md) and its resolved config into `config.out`, and
    push the folder to the Hub when `config.push_to_hub` is set; returns the data path."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    labels, profile = store.labels(), PROFILES[config.profile]
    rows, left_out = apply_profile(preference_rows(labels, config.aggregate), profile)
    ds = as_dataset([{c: r[c] for c in profile.columns} for r in rows], profile.columns)
    path = WRITERS[config.format](ds, out)
    resolved = {**asdict(config), "db": store.safe_url, "rows": len(ds), "left_out": left_out,
                "columns": list(profile.columns), "data": path.name if path != out else ".",
                "margins": {f"{s} ({STRENGTH_WORDS[s]})": m for s, m in MARGINS.items()},
                "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    files = [path.name] if path != out else sorted(p.name for p in out.glob("data-*.arrow"))
    (out / CARD_FILE).write_text(dataset_card(rows, labels, resolved, files), encoding="utf-8")
    (out / CONFIG_FILE).write_text(json.dumps(resolved, indent=2) + "\n", encoding="utf-8")
    if config.push_to_hub:
        push_folder(out, config.push_to_hub, "dataset", config.private,
                    f"Preference export ({config.profile}, {config.aggregate}, {len(ds)} rows)")
    return path


# ---------------------------------------------------------------- the dataset card

SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                   (1_000_000, "100K<n<1M"), (float("inf"), "n>1M"))


def _num(value, digits: int = 3) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:.{digits}f}"


def _counts(rows: list[dict], left_out: dict[str, int]) -> list[str]:
    """Counts of the exported rows (full rows, before the profile chose columns)."""
    ties = sum(r["tie"] for r in rows)
    annotators = {name for r in rows for name in (r["annotator"] or "").split(",") if name}
    lines = ["| rows | with a winner | ties (incl. both bad) | both bad | tasks | annotators |",
             "|---:|---:|---:|---:|---:|---:|",
             f"| {len(rows)} | {len(rows) - ties} | {ties} | {sum(r['both_bad'] for r in rows)} | "
             f"{len({r['task_id'] for r in rows})} | {len(annotators)} |"]
    if any(left_out.values()):
        parts = ", ".join(f"{n} {flag}" for flag, n in left_out.items())
        lines += ["", f"Left out by the profile: {sum(left_out.values())} rows ({parts})."]
    return lines


def _agreement(labels: pd.DataFrame) -> list[str]:
    from labeling import stats

    alpha = stats.alpha_by_kind(labels)
    gold = stats.gold_accuracy(labels).iloc[-1]
    left = stats.position_bias(labels).iloc[-1]
    lines = [f"Over all {len(labels)} labels in the store, from {labels.annotator.nunique()} annotators:", "",
             "| statistic | value |", "|---|---:|"]
    lines += [f"| Krippendorff's alpha ({kind}) | {_num(a)} |" for kind, a in alpha.items()]
    lines += [f"| gold accuracy ({int(gold.gold_labels)} gold labels) | {_num(gold.accuracy)} |",
              f"| share of 'left' among left/right choices ({int(left.decisive)}) | {_num(left.share_left)} "
              f"[{_num(left.ci_low)}, {_num(left.ci_high)}] |"]
    return lines


def dataset_card(rows: list[dict], labels: pd.DataFrame, resolved: dict, data_files: list[str]) -> str:
    """README.md of an export: Hub metadata, counts, agreement statistics and the schema."""
    size = next(name for limit, name in SIZE_CATEGORIES if len(rows) < limit)
    files = "".join(f"\n    - {name}" for name in data_files)
    command = (f"python -m labeling export --format {resolved['format']} --aggregate {resolved['aggregate']} "
               f"--for {resolved['profile']}")
    schema = [f"| {c} | {FEATURES[c].dtype} | {COLUMN_DOCS[c]} |" for c in resolved["columns"]]
    return "\n".join([
        "---",
        "configs:", "- config_name: default", "  data_files:", "  - split: train", f"    path:{files}",
        "tags:", "- preference", "- reward-modeling", "- rlhf",
        "task_categories:", "- text-classification",
        "size_categories:", f"- {size}",
        "---",
        "",
        "# Pairwise preferences",
        "",
        f"Exported from a reward-model lab label store with `{command}`: "
        f"{PROFILES[resolved['profile']].help}.",
        "",
        "## Counts",
        "",
        *_counts(rows, resolved["left_out"]),
        "",
        "## Agreement",
        "",
        *_agreement(labels),
        "",
        "## Schema",
        "",
        "| column | type | meaning |", "|---|---|---|",
        *schema,
        "",
    ])


def _exported_columns(folder: Path) -> list[str]:
    """The columns an export folder was written with (its config), FEATURES by default."""
    config = folder / CONFIG_FILE
    return json.loads(config.read_text()).get("columns", list(FEATURES)) if config.is_file() else list(FEATURES)


def load_export(folder: str | Path) -> datasets.Dataset:
    """Read back an `export` folder of any format as a `datasets.Dataset` with FEATURES."""
    folder = Path(folder)
    if (folder / "state.json").is_file():
        return datasets.load_from_disk(str(folder))
    columns = _exported_columns(folder)
    if (folder / DATA_FILES["parquet"]).is_file():
        return datasets.Dataset(pq.read_table(folder / DATA_FILES["parquet"])).cast(features_of(columns))
    if (folder / DATA_FILES["jsonl"]).is_file():
        with (folder / DATA_FILES["jsonl"]).open(encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        return as_dataset(rows, columns)
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
