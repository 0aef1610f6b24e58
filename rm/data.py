"""Preference data from anywhere into one schema: prompt, chosen, rejected, margin, tie.

Sources: our label-store export folder (`Dataset.save_to_disk`), JSON/JSONL(.gz)/CSV/Parquet
files, an in-memory `datasets.Dataset`, or a Hub id (+ data_dir, split).
Formats, detected per dataset from its columns and first row:
- explicit: string `prompt`, `chosen`, `rejected`;
- implicit: whole transcripts in `chosen`/`rejected` (hh-rlhf), split at the longest common
  prefix that ends in an Assistant turn;
- conversational: `chosen`/`rejected` (and optional `prompt`) are lists of {role, content};
- best-of-n (RewardBench 2): `chosen` a string or a list of strings, `rejected` a list of
  strings; each row becomes every (chosen, rejected) pair, and a `group` column (the row's
  number) keeps them together so rm.evaluate can score the row as one;
- peers' exports (Chatbot Arena battles, Argilla, Label Studio): labeling.peers turns them
  into explicit rows (ties kept with tie=True).
Optional `margin` (float) and `tie` (bool) columns; a string `subset` column is kept (as in
RewardBench). Bad rows raise `ValueError` naming the source, row and field.
"""
from collections.abc import Callable
from pathlib import Path

from labeling import peers

COLUMNS = ("prompt", "chosen", "rejected", "margin", "tie")
ASSISTANT = "\n\nAssistant:"

READERS: dict[str, Callable] = {}  # file suffix -> reader(path) -> pandas.DataFrame


def _reader(*suffixes: str):
    def register(fn):
        READERS.update(dict.fromkeys(suffixes, fn))
        return fn
    return register


@_reader(".jsonl", ".jsonl.gz", ".json", ".json.gz")
def _read_json(path: Path):
    import pandas as pd

    lines = not path.name.endswith((".json", ".json.gz")) or _looks_like_lines(path)
    return pd.read_json(path, lines=lines, dtype=False, convert_dates=False)


def _looks_like_lines(path: Path) -> bool:
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        return f.read(1) != "["


@_reader(".csv", ".csv.gz")
def _read_csv(path: Path):
    import pandas as pd

    return pd.read_csv(path, keep_default_na=False)


@_reader(".parquet")
def _read_parquet(path: Path):
    import pandas as pd

    return pd.read_parquet(path)


class DataError(ValueError):
    """A preference row that cannot be used; the message names source, row and field."""


def _fail(where: str, row: int, field: str, problem: str):
    raise DataError(f"{where}: row {row}, field '{field}': {problem}")


# --- row normalisers: raw row dict -> (prompt, chosen, rejected) -----------------------------

def _text(row: dict, field: str, where: str, i: int) -> str:
    value = row.get(field)
    if not isinstance(value, str) or not value.strip():
        _fail(where, i, field, f"expected a non-empty string, got {type(value).__name__} {str(value)[:40]!r}")
    return value


def split_transcript(chosen: str, rejected: str) -> tuple[str, str, str] | None:
    """hh-rlhf: the prompt is the longest common prefix ending in '\\n\\nAssistant:'."""
    n = 0
    for a, b in zip(chosen, rejected):
        if a != b:
            break
        n += 1
    cut = chosen.rfind(ASSISTANT, 0, n)
    if cut < 0:
        return None
    end = cut + len(ASSISTANT)
    return chosen[:end], chosen[end:].lstrip(" "), rejected[end:].lstrip(" ")


def _messages(row: dict, field: str, where: str, i: int) -> list[dict]:
    value = row.get(field)
    if hasattr(value, "tolist"):
        value = value.tolist()
    ok = isinstance(value, list) and value and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value)
    if not ok:
        _fail(where, i, field, "expected a non-empty list of {'role': str, 'content': str} messages")
    return value


def _explicit(row, where, i):
    return _text(row, "prompt", where, i), _text(row, "chosen", where, i), _text(row, "rejected", where, i)


def _implicit(row, where, i):
    chosen, rejected = _text(row, "chosen", where, i), _text(row, "rejected", where, i)
    parts = split_transcript(chosen, rejected)
    if parts is None:
        _fail(where, i, "chosen", "implicit format: chosen and rejected share no prefix ending in an "
              "'\\n\\nAssistant:' turn; give an explicit 'prompt' column instead")
    return parts


def _conversational(row, where, i):
    chosen, rejected = _messages(row, "chosen", where, i), _messages(row, "rejected", where, i)
    if row.get("prompt") is not None:
        prompt = _messages(row, "prompt", where, i)
    else:  # implicit conversational: shared leading messages are the prompt
        n = 0
        while n < min(len(chosen), len(rejected)) - 1 and chosen[n] == rejected[n]:
            n += 1
        if n == 0:
            _fail(where, i, "chosen", "conversational format without 'prompt': no shared leading messages")
        prompt, chosen, rejected = chosen[:n], chosen[n:], rejected[n:]
    reply = lambda msgs: "\n\n".join(m["content"] for m in msgs)  # noqa: E731
    return peers.transcript(prompt), reply(chosen), reply(rejected)


def _texts(row: dict, field: str, where: str, i: int) -> list[str]:
    value = row.get(field)
    value = [value] if isinstance(value, str) else value.tolist() if hasattr(value, "tolist") else value
    if not isinstance(value, list) or not value or not all(isinstance(t, str) and t.strip() for t in value):
        _fail(where, i, field, "best-of-n format: expected a non-empty string or list of non-empty strings")
    return value


def _best_of_n(row, where, i):
    """Every (chosen, rejected) pair of a row with one or more of each."""
    prompt = _text(row, "prompt", where, i)
    return [(prompt, c, r) for c in _texts(row, "chosen", where, i) for r in _texts(row, "rejected", where, i)]


# format -> row normaliser: (row, where, i) -> (prompt, chosen, rejected), or a list of them
FORMATS = {"explicit": _explicit, "implicit": _implicit, "conversational": _conversational,
           "best_of_n": _best_of_n}


def detect_format(columns, first: dict) -> str:
    missing = {"chosen", "rejected"} - set(columns)
    if missing:
        raise DataError(f"missing column(s) {sorted(missing)}; expected explicit (prompt/chosen/rejected), "
                        f"implicit (chosen/rejected transcripts) or conversational (lists of messages); "
                        f"got columns {sorted(columns)}")
    rejected = first.get("rejected")
    rejected = rejected.tolist() if hasattr(rejected, "tolist") else rejected
    if isinstance(rejected, list) and rejected and all(isinstance(r, str) for r in rejected):
        return "best_of_n"
    if not isinstance(first.get("chosen"), str):
        return "conversational"
    return "explicit" if "prompt" in columns and first.get("prompt") is not None else "implicit"


def _margin(row, where, i) -> float:
    value = row.get("margin")
    if value is None or value == "":
        return 0.0
    try:
        out = float(value)
    except (TypeError, ValueError):
        _fail(where, i, "margin", f"expected a number, got {value!r}")
    if out != out:  # NaN: missing in a CSV/Parquet column
        return 0.0
    return out


TRUE, FALSE = {True, 1, "1", "true", "True", "yes"}, {False, 0, "0", "false", "False", "no", "", None}


def _tie(row, where, i) -> bool:
    value = row.get("tie")
    if hasattr(value, "item"):
        value = value.item()
    if value in TRUE:
        return True
    if value in FALSE or value != value:
        return False
    _fail(where, i, "tie", f"expected a boolean, got {value!r}")


def _subset(row, where, i) -> str:
    value = row.get("subset")
    if not isinstance(value, str) or not value:
        missing = value is None or value != value or value == ""  # None, or NaN from pandas
        _fail(where, i, "subset", "is missing; every row needs one when the column exists" if missing
              else f"expected a string, got {value!r}")
    return value


def normalize_rows(rows: list[dict], where: str = "data", first_row: int = 0) -> dict[str, list]:
    """Rows in any supported format -> columns prompt, chosen, rejected, margin, tie (+ subset
    when the rows have one, + group for best-of-n rows)."""
    if not rows:
        raise DataError(f"{where}: no rows; expected preference rows with prompt, chosen and rejected")
    if peers.peer_format(rows[0]) is not None:
        judged = peers.judgements_from_rows(((f"{where} row {i}", r) for i, r in enumerate(rows, first_row)), where)
        rows = peers.preference_rows(judged)
    name = detect_format(rows[0].keys(), rows[0])
    fmt, extra = FORMATS[name], (["subset"] if "subset" in rows[0] else []) + (["group"] if name == "best_of_n" else [])
    out = {c: [] for c in (*COLUMNS, *extra)}
    for i, row in enumerate(rows, start=first_row):
        found = fmt(row, where, i)
        margin, tie = _margin(row, where, i), _tie(row, where, i)
        subset = _subset(row, where, i) if "subset" in out else None
        for prompt, chosen, rejected in (found if isinstance(found, list) else [found]):
            for key, value in zip(COLUMNS, (prompt, chosen, rejected, margin, tie)):
                out[key].append(value)
            if subset is not None:
                out["subset"].append(subset)
            if "group" in out:
                out["group"].append(i)
    return out


def _reader_for(path: Path):
    return next((fn for suffix, fn in READERS.items() if path.name.endswith(suffix)), None)


def _looks_like_path(src: str) -> bool:
    """A file name or a path, not a Hub id ('name' or 'owner/name')."""
    return src.startswith(("/", ".", "~")) or src.count("/") > 1 or _reader_for(Path(src)) is not None


def _read_folder(path: Path):
    """A labeling export folder (any format), a `save_to_disk` folder, or a folder of one file."""
    import datasets

    if (path / "export_config.json").is_file():
        from labeling.export import load_export

        return load_export(path)
    if any((path / f).exists() for f in ("state.json", "dataset_dict.json")):
        return datasets.load_from_disk(str(path))
    files = [f for f in sorted(path.iterdir()) if f.is_file() and _reader_for(f)]
    if len(files) != 1:
        raise DataError(f"{path}: expected a labeling export, a save_to_disk folder or one preference "
                        f"file, found {len(files)} readable files")
    return datasets.Dataset.from_pandas(_reader_for(files[0])(files[0]), preserve_index=False)


def _raw_rows(src, data_dir: str | None, split: str | None, max_pairs: int | None) -> tuple[list[dict], str, int]:
    """(rows, name for errors, number of the first row: 1 for file lines, 0 otherwise)."""
    import datasets

    if isinstance(src, datasets.DatasetDict):
        src = src[split or "train"]
    if isinstance(src, datasets.Dataset):
        ds = src.select(range(min(max_pairs, len(src)))) if max_pairs else src
        return ds.to_list(), "dataset", 0
    path = Path(src)
    if path.is_dir():
        return _raw_rows(_read_folder(path), data_dir, split, max_pairs)[0], str(path), 0
    reader = _reader_for(path)
    if path.is_file() and reader is not None:
        frame = reader(path)
        frame = frame.head(max_pairs) if max_pairs else frame
        return frame.to_dict("records"), str(path), 1
    if path.exists():
        raise DataError(f"{path}: not a preference file I can read; use one of {sorted(READERS)} "
                        "or a folder written by labeling export")
    if _looks_like_path(str(src)):
        raise FileNotFoundError(f"{src}: no such file or folder (a Hub dataset id looks like 'owner/name')")
    ds = datasets.load_dataset(str(src), data_dir=data_dir, split=split or "train")  # a Hub id
    return _raw_rows(ds, data_dir, split, max_pairs)[0], str(src), 0


def load_preferences(src, data_dir: str | None = None, split: str | None = None,
                     max_pairs: int | None = None):
    """Any supported source -> `datasets.Dataset` with columns prompt, chosen, rejected, margin, tie."""
    import datasets

    rows, where, first = _raw_rows(src, data_dir, split, max_pairs)
    return datasets.Dataset.from_dict(normalize_rows(rows, where, first))
