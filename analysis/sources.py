"""Named data sources for the researcher tools: where pairs, responses and sycophancy cases
come from (the label store's tasks or labels, a generator, or an uploaded file).

Each registry maps a name (shown in the app) to `fn(store, file[, n])`; `from_source` calls
one and turns a missing upload into a clear ValueError. Adding a source is one entry.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from labeling.export import known_preferences, to_dataset
from labeling.store import Store
from labeling.tasks import agreement_cases

PAIR_COLUMNS = ["prompt", "chosen", "rejected", "margin", "tie"]


def uploaded(file: str | None) -> str:
    if not file:
        raise ValueError("no file uploaded: drop a JSONL, CSV or Parquet file into the upload box first")
    return file


def known_pairs(store: Store, file: str | None = None) -> pd.DataFrame:
    return known_preferences(store.tasks()).to_pandas()[PAIR_COLUMNS]


def label_pairs(store: Store, file: str | None = None) -> pd.DataFrame:
    pairs = to_dataset(store).to_pandas()
    if pairs.empty:
        raise ValueError("no labels collected yet: label a few tasks, or choose the tasks' known preferences")
    return pairs[PAIR_COLUMNS]


def file_pairs(store: Store, file: str | None) -> pd.DataFrame:
    from rm.data import load_preferences

    return load_preferences(uploaded(file)).to_pandas()


PAIR_SOURCES = {  # name -> (store, uploaded file) -> prompt/chosen/rejected/margin/tie rows
    "known preferences (gold, agreement)": known_pairs,
    "collected labels": label_pairs,
    "uploaded file": file_pairs,
}


def task_responses(store: Store, file: str | None = None) -> pd.DataFrame:
    rows = [(t.prompt, r) for t in store.tasks() for r in t.responses]
    return pd.DataFrame(rows, columns=["prompt", "response"])


def label_responses(store: Store, file: str | None = None) -> pd.DataFrame:
    pairs = label_pairs(store, file)
    return pd.DataFrame({"prompt": [*pairs.prompt, *pairs.prompt],
                         "response": [*pairs.chosen, *pairs.rejected]})


def file_responses(store: Store, file: str | None) -> pd.DataFrame:
    from analysis.responses import load_responses

    return load_responses(uploaded(file))[["prompt", "response"]]


RESPONSE_SOURCES = {  # name -> (store, uploaded file) -> prompt/response rows
    "seed tasks": task_responses,
    "collected labels": label_responses,
    "uploaded file": file_responses,
}


def store_cases(store: Store, file: str | None = None, n: int = 0) -> list[dict]:
    return agreement_cases(store.tasks("agreement"))


def arithmetic_cases(store: Store | None = None, file: str | None = None, n: int = 60) -> list[dict]:
    from labeling.generated import false_claim_tasks

    return agreement_cases(false_claim_tasks(int(n)))


def file_cases(store: Store, file: str | None, n: int = 0) -> list[dict]:
    from analysis.sycophancy import load_cases

    return load_cases(uploaded(file))


CASE_SOURCES = {  # name -> (store, uploaded file, n) -> sycophancy cases
    "agreement tasks (seed)": store_cases,
    "arithmetic generator": arithmetic_cases,
    "uploaded file": file_cases,
}


def from_source(registry: dict, name: str, *args):
    """Call the registry entry `name`; an unknown name is a ValueError listing the known ones."""
    if name not in registry:
        raise ValueError(f"unknown source {name!r}; choose one of: {', '.join(registry)}")
    try:
        return registry[name](*args)
    except (ValueError, LookupError, OSError) as err:
        raise ValueError(f"could not read {name}: {err}") from err


def subsample(frame: pd.DataFrame, max_rows: int | None, seed: int = 0) -> pd.DataFrame:
    """At most `max_rows` rows, drawn with a seed, in their original order."""
    if max_rows and len(frame) > max_rows:
        return frame.sample(n=int(max_rows), random_state=seed).sort_index()
    return frame


def task_choices(store: Store) -> list[tuple[str, str]]:
    """(label, task id) for a "fill from a task" list: agreement cases first."""
    order = {"agreement": 0, "gold": 1, "pair": 2, "triad": 3}
    tasks = sorted(store.tasks(), key=lambda t: (order.get(t.kind, 9), t.id))
    return [(f"{t.kind} · {t.category or '–'} · {t.prompt[:70]}", t.id) for t in tasks]


def probe_texts(task, shuffle: bool, rng: np.random.Generator) -> tuple[str, str, str, str]:
    """(prompt, A, B, note) from a task; agreement cases put the agreeing response in A unless shuffled."""
    first, second = (task.agreeing, 1 - task.agreeing) if task.kind == "agreement" else (0, 1)
    if shuffle and rng.random() < 0.5:
        first, second = second, first
    roles = {"agreement": {task.agreeing: "agrees with the false claim",
                           1 - (task.agreeing or 0): "corrects it"},
             "gold": {task.better: "is the known better response"}}.get(task.kind, {})
    notes = [f"{letter} {roles[i]}" for letter, i in (("A", first), ("B", second)) if i in roles]
    note = (" · ".join(notes) or "no known preference") + f" ({task.kind} task {task.id})"
    return task.prompt, task.responses[first], task.responses[second], note
