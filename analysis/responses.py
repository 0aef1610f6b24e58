"""Load (prompt, response) rows for analysis from response files or preference data.

A source is either
- a table (JSONL / JSON / CSV / Parquet, optionally gzipped) with `prompt` and `response`
  columns: one row per scored response; or
- anything `rm.data.load_preferences` reads (our export dir, preference files, a Hub id):
  both sides of every pair become rows, marked `side` = "chosen" / "rejected" and `pair`.

    >>> rows = responses_from_pairs(["p"], ["good"], ["bad"])
    >>> rows[["prompt", "response", "side", "pair"]].values.tolist()
    [['p', 'good', 'chosen', 0], ['p', 'bad', 'rejected', 0]]
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

COLUMNS = ("prompt", "response", "side", "pair")
READERS = {  # suffix (after stripping .gz) -> pandas reader
    ".jsonl": lambda p: pd.read_json(p, lines=True),
    ".json": lambda p: pd.read_json(p),
    ".csv": lambda p: pd.read_csv(p, keep_default_na=False),
    ".parquet": pd.read_parquet,
}


def _suffix(path: Path) -> str:
    """'.jsonl' for 'x.jsonl.gz' and 'x.jsonl'."""
    suffixes = [s for s in path.suffixes if s != ".gz"]
    return suffixes[-1] if suffixes else ""


def responses_from_pairs(prompts: Sequence[str], chosen: Sequence[str], rejected: Sequence[str]) -> pd.DataFrame:
    """(2N, 4) rows: chosen then rejected for each pair, with `side` and `pair` index."""
    rows = []
    for i, (p, c, r) in enumerate(zip(prompts, chosen, rejected)):
        rows.append((p, c, "chosen", i))
        rows.append((p, r, "rejected", i))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def read_table(src: str | Path) -> pd.DataFrame | None:
    """The file as a DataFrame when it is a local table we can read, else None."""
    path = Path(src)
    reader = READERS.get(_suffix(path))
    return reader(path) if path.is_file() and reader else None


def load_responses(src: str | Path, max_rows: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Rows with columns prompt, response, side (None for plain responses), pair.

    `max_rows` keeps a seeded random subset of that many responses (whole pairs for
    preference data, so both sides of a kept pair stay together).
    """
    table = read_table(src)
    if table is not None and "response" in table.columns:
        if "prompt" not in table.columns:
            raise ValueError(f"{src}: has a 'response' column but no 'prompt' column; add one (may be empty)")
        rows = pd.DataFrame({"prompt": table["prompt"].astype(str), "response": table["response"].astype(str),
                             "side": None, "pair": range(len(table))})
        if max_rows is not None and max_rows < len(rows):
            rows = rows.sample(n=max_rows, random_state=seed).sort_index()
        return rows.reset_index(drop=True)
    from rm.data import load_preferences  # lazy: pulls in `datasets`

    prefs = load_preferences(src)
    keep = list(range(len(prefs)))
    if max_rows is not None and 2 * len(keep) > max_rows:
        keep = sorted(pd.Series(keep).sample(n=max(max_rows // 2, 1), random_state=seed).tolist())
        prefs = prefs.select(keep)
    return responses_from_pairs(prefs["prompt"], prefs["chosen"], prefs["rejected"])
