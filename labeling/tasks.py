"""Labeling tasks: the `Task` record, its file schema, and validated loading.

One task per JSONL line (also CSV, Parquet, a saved/local dataset folder, or a Hub id):

    {"id": str (optional; default = content hash), "kind": "pair"|"triad"|"agreement"|"gold",
     "prompt": str, "responses": [str, str] (3 for "triad"),
     "agreeing": 0|1  (agreement only: index of the response that agrees with the false claim),
     "better": 0|1    (gold only: index of the known better response),
     "category": str (optional), "meta": {...} (optional)}

CSV (and any tabular source) may instead give the responses as columns `response_a`,
`response_b`, `response_c`; empty cells count as absent and `meta` is a JSON string.

`load_tasks(src)` validates every row before returning anything: all problems are collected
and raised as one `ValueError` whose lines read `FILE line N, field 'F': message`, so a
bad file imports nothing. Every text is held to `labeling.limits` (length, no NUL, valid
Unicode); files must be UTF-8 (a byte-order mark is fine); a file with no task in it is an
error, not "imported 0".
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labeling.limits import MAX_CHARS, clip, meta_problem, text_problem

# kind -> (number of responses, the index field it requires or None)
KINDS: dict[str, tuple[int, str | None]] = {
    "pair": (2, None),
    "triad": (3, None),
    "agreement": (2, "agreeing"),
    "gold": (2, "better"),
}
INDEX_FIELDS = ("agreeing", "better")
FIELDS = ("id", "kind", "prompt", "responses", "agreeing", "better", "category", "meta")
RESPONSE_COLUMNS = ("response_a", "response_b", "response_c")
LETTERS = "abc"


@dataclass(frozen=True)
class Task:
    """One validated task. `responses` has 2 entries (3 for a triad)."""

    id: str
    kind: str
    prompt: str
    responses: tuple[str, ...]
    agreeing: int | None = None
    better: int | None = None
    category: str | None = None
    meta: dict = field(default_factory=dict, hash=False, compare=True)

    def pairings(self) -> list[tuple[int, int]]:
        """Response-index pairs to label: [(0, 1)], or a triad's ab, bc, ca."""
        return pairings(len(self.responses))

    def to_record(self) -> dict:
        """The JSONL form of this task (round-trips through `load_tasks`)."""
        record = {"id": self.id, "kind": self.kind, "prompt": self.prompt,
                  "responses": list(self.responses)}
        for name in ("agreeing", "better", "category"):
            if getattr(self, name) is not None:
                record[name] = getattr(self, name)
        if self.meta:
            record["meta"] = self.meta
        return record


def pairings(n_responses: int) -> list[tuple[int, int]]:
    """Pairings of `n_responses` responses in cyclic order: 2 -> [(0,1)], 3 -> ab, bc, ca."""
    if n_responses == 2:
        return [(0, 1)]
    return [(i, (i + 1) % n_responses) for i in range(n_responses)]


def content_id(kind: str, prompt: str, responses: Iterable[str],
               agreeing: int | None = None, better: int | None = None) -> str:
    """Default task id: 16 hex digits of the SHA-256 of the labeled content."""
    payload = json.dumps([kind, prompt, list(responses), agreeing, better], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------- validation

class _Row:
    """Collects the errors of one row: `where` is e.g. "tasks.jsonl line 3"."""

    def __init__(self, where: str, errors: list[str]):
        self.where, self.errors = where, errors

    def error(self, name: str, message: str) -> None:
        self.errors.append(f"{self.where}, field '{name}': {message}")


def _text(row: _Row, raw: Mapping, name: str, required: bool) -> str | None:
    value = raw.get(name)
    if value is None:
        if required:
            row.error(name, "is required")
        return None
    if not isinstance(value, str):
        row.error(name, f"expected a string, got {type(value).__name__}")
        return None
    if required and not value.strip():
        row.error(name, "must not be empty")
        return None
    problem = text_problem(value, name) if name in MAX_CHARS else None
    if problem:
        row.error(name, problem)
        return None
    return value


def _index(row: _Row, raw: Mapping, name: str, n: int) -> int | None:
    value = raw.get(name)
    is_int = isinstance(value, int) and not isinstance(value, bool)
    is_whole_float = isinstance(value, float) and value.is_integer()  # Parquet nullable ints
    if not (is_int or is_whole_float) or not 0 <= int(value) < n:
        row.error(name, f"expected an index 0..{n - 1}, got {clip(value)}")
        return None
    return int(value)


def _responses(row: _Row, raw: Mapping, n: int | None) -> tuple[str, ...] | None:
    value = raw.get("responses")
    if value is None:
        row.error("responses", "is required")
        return None
    if not isinstance(value, (list, tuple)):
        row.error("responses", f"expected a list of strings, got {type(value).__name__}")
        return None
    if n is not None and len(value) != n:
        row.error("responses", f"expected {n} responses for kind '{raw.get('kind')}', got {len(value)}")
        return None
    bad = [i for i, r in enumerate(value) if not isinstance(r, str) or not r.strip()]
    if bad:
        row.error("responses", f"response {bad[0]} must be a non-empty string")
        return None
    problems = [(i, text_problem(r, "response")) for i, r in enumerate(value)]
    problems = [(i, p) for i, p in problems if p]
    if problems:
        row.error("responses", f"response {problems[0][0]} {problems[0][1]}")
        return None
    return tuple(value)


def validate_row(raw: Mapping[str, Any], where: str, errors: list[str]) -> Task | None:
    """One raw record -> `Task`, or None after appending messages to `errors`."""
    row = _Row(where, errors)
    n_before = len(errors)
    unknown = sorted(str(name) for name in set(raw) - set(FIELDS))
    if unknown:
        name = unknown[0] if len(unknown[0]) <= 40 else unknown[0][:40] + "..."
        row.error(name, f"unknown field; expected one of {', '.join(FIELDS)}")
    kind = _text(row, raw, "kind", required=True)
    if kind is not None and kind not in KINDS:
        row.error("kind", f"expected one of {', '.join(KINDS)}, got {clip(kind)}")
        kind = None
    n, needed = KINDS[kind] if kind else (None, None)
    prompt = _text(row, raw, "prompt", required=True)
    responses = _responses(row, raw, n)
    indices: dict[str, int | None] = {}
    for name in INDEX_FIELDS:
        if name == needed:
            indices[name] = _index(row, raw, name, n) if raw.get(name) is not None else None
            if raw.get(name) is None:
                row.error(name, f"is required for kind '{kind}'")
        elif raw.get(name) is not None and kind is not None:
            row.error(name, f"only allowed for kind '{'agreement' if name == 'agreeing' else 'gold'}'")
    category = _text(row, raw, "category", required=False)
    meta = raw.get("meta") or {}
    if not isinstance(meta, Mapping):
        row.error("meta", f"expected an object, got {type(meta).__name__}")
    elif problem := meta_problem(meta):
        row.error("meta", problem)
    task_id = _text(row, raw, "id", required=False)
    if task_id is not None and not task_id.strip():
        row.error("id", "must not be empty when given")
    if len(errors) > n_before:
        return None
    task_id = task_id or content_id(kind, prompt, responses, indices.get("agreeing"),
                                    indices.get("better"))
    return Task(id=task_id, kind=kind, prompt=prompt, responses=responses,
                agreeing=indices.get("agreeing"), better=indices.get("better"),
                category=category or None, meta=dict(meta))


def validate_rows(rows: Iterable[tuple[str, Mapping[str, Any] | str]],
                  source: str = "tasks") -> list[Task]:
    """(where, raw record) pairs -> tasks; raises one ValueError listing every problem.

    A raw record that is a string is a row-level error from the reader (e.g. bad JSON).
    Exact repeats of a task are kept once; two different tasks with one id are an error;
    no rows at all is an error too.
    """
    errors: list[str] = []
    tasks: dict[str, tuple[str, Task]] = {}
    n_rows = 0
    for where, raw in rows:
        n_rows += 1
        if isinstance(raw, str):
            errors.append(f"{where}: {raw}")
            continue
        task = validate_row(raw, where, errors)
        if task is None:
            continue
        first = tasks.get(task.id)
        if first is None:
            tasks[task.id] = (where, task)
        elif first[1] != task:
            errors.append(f"{where}, field 'id': duplicate id {task.id!r} with different "
                          f"content (first at {first[0]})")
    if errors:
        raise ValueError(f"{len(errors)} problem(s) in {source}, nothing imported:\n"
                         + "\n".join(errors))
    if not n_rows:
        raise ValueError(f"{source} holds no tasks (it is empty); nothing imported. Give one "
                         "task per line, e.g. {\"kind\": \"pair\", \"prompt\": ..., "
                         "\"responses\": [..., ...]}")
    return [task for _, task in tasks.values()]


# ---------------------------------------------------------------- readers
# Each reader yields (where, raw record); `where` names the file and line (or row).

def _tabular(record: Mapping[str, Any]) -> dict[str, Any]:
    """Flat columns -> the task record: response_a/b/c -> responses, empty -> absent."""
    out = {k: v for k, v in record.items() if v is not None and v != ""}
    columns = [c for c in RESPONSE_COLUMNS if c in out]
    if columns and "responses" not in out:
        out["responses"] = [out[c] for c in columns]
    for c in RESPONSE_COLUMNS:
        out.pop(c, None)
    if isinstance(out.get("meta"), str):  # tabular files carry meta as a JSON string
        try:
            out["meta"] = json.loads(out["meta"])
        except json.JSONDecodeError:
            pass  # validation reports "expected an object"
    return out


class _DuplicateField(ValueError):
    """One JSON object names a field twice (json.loads would keep the last silently)."""


def _unique_fields(pairs: list[tuple[str, Any]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        raise _DuplicateField(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return out


def _decoded(path: Path) -> Generator[tuple[str, str], None, str | None]:
    """The file's text (returned, via `yield from`), or one row-level error when it is not
    UTF-8: the line and byte column of the first bad byte. A UTF-8 byte-order mark is dropped."""
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        yield (f"{path.name} line {line}",
               f"not UTF-8 text (byte 0x{data[e.start]:02x} at byte {column} of the line); "
               "save the file as UTF-8")
        return None


def _json_record(line: str) -> dict | str:
    """One JSONL line -> a dict, or the reason it is not one (a row-level error)."""
    try:
        record = json.loads(line, object_pairs_hook=_unique_fields)
    except _DuplicateField as e:
        return f"field {clip(e.args[0])} appears twice in one object"
    except json.JSONDecodeError as e:
        return f"invalid JSON ({e.msg} at column {e.colno})"
    except ValueError as e:  # e.g. an integer of more than 4,300 digits
        return f"invalid JSON ({e})"
    except RecursionError:
        return "invalid JSON (nested too deeply)"
    return record if isinstance(record, dict) else "expected a JSON object"


def _read_jsonl(path: Path) -> Iterator[tuple[str, dict | str]]:
    text = yield from _decoded(path)
    if text is None:
        return
    for line_no, line in enumerate(text.split("\n"), start=1):  # not splitlines(): JSON
        if line.strip():  # strings may hold U+2028 and other line breaks
            yield f"{path.name} line {line_no}", _json_record(line)


_SMALL_INT = re.compile(r"-?[0-9]{1,9}")  # an index cell; anything else stays text and is refused


def _read_csv(path: Path) -> Iterator[tuple[str, dict | str]]:
    text = yield from _decoded(path)
    if text is None:
        return
    reader = csv.DictReader(io.StringIO(text, newline=""))
    end = 1  # the header line (a quoted cell may span lines, so track where rows start)
    try:
        for record in reader:
            where, end = f"{path.name} line {end + 1}", reader.line_num
            if None in record:  # DictReader puts surplus cells under the key None
                yield where, f"{len(record[None])} more cell(s) than header columns"
                continue
            out = _tabular(record)
            for name in INDEX_FIELDS:
                if isinstance(out.get(name), str) and _SMALL_INT.fullmatch(out[name].strip()):
                    out[name] = int(out[name])
            yield where, out
    except csv.Error as e:  # e.g. a cell longer than csv.field_size_limit() (131,072)
        yield f"{path.name} line {end + 1}", f"not readable as CSV ({e})"


def _read_records(name: str, records: Iterable[Mapping]) -> Iterator[tuple[str, dict]]:
    for i, record in enumerate(records, start=1):
        yield f"{name} row {i}", _tabular(record)


def _read_parquet(path: Path) -> Iterator[tuple[str, dict | str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        records = pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as e:
        yield path.name, f"not a readable Parquet file ({e})"
        return
    yield from _read_records(path.name, records)


def _saved_dataset_problem(folder: Path) -> str | None:
    """Why a `save_to_disk` folder is unsafe to open, or None: every data file its
    state.json names (per split, for a DatasetDict) must lie inside the folder."""
    states = [folder / "state.json"]
    if (folder / "dataset_dict.json").is_file():
        try:
            splits = json.loads((folder / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            return f"dataset_dict.json is not a saved dataset's ({e})"
        if not all(isinstance(s, str) and Path(s).name == s and s not in ("", ".", "..") for s in splits):
            return "dataset_dict.json names a split outside the folder"
        states = [folder / split / "state.json" for split in splits]
    root = folder.resolve()
    for state in states:
        try:
            files = [f["filename"] for f in json.loads(state.read_text(encoding="utf-8"))["_data_files"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            return f"{state.relative_to(folder)} is not a saved dataset's ({e})"
        if not all(isinstance(f, str) and (state.parent / f).resolve().is_relative_to(root)
                   for f in files):
            return f"{state.relative_to(folder)} names a data file outside the folder"
    return None


def open_dataset(src: str | Path, split: str = "train"):
    """One split of a `save_to_disk` folder, a local dataset folder, or a Hub dataset id, as a
    `datasets.Dataset`. Refuses (ValueError) a saved folder whose state names files outside
    it and an unknown split; FileNotFoundError for a name that is neither a folder nor a
    Hub id (so "../../x" is never looked up anywhere)."""
    import datasets

    path, src = Path(src), str(src)
    if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
        problem = _saved_dataset_problem(path)
        if problem:
            raise ValueError(f"{src}: {problem}; nothing imported")
        ds = datasets.load_from_disk(src)
    elif path.is_dir() or _is_hub_id(src):
        ds = datasets.load_dataset(src, split=split)
    else:
        raise FileNotFoundError(f"{src if len(src) <= 200 else clip(src, 200)}: no such file or "
                                "folder, and not a Hugging Face dataset id ('name' or 'org/name')")
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise ValueError(f"{src} has no split {clip(split)}; its splits are: {', '.join(ds)}")
        ds = ds[split]
    return ds


def _read_dataset(src: str, split: str) -> Iterator[tuple[str, dict]]:
    yield from _read_records(f"{src} [{split}]", open_dataset(src, split))


READERS: dict[str, Callable[[Path], Iterator[tuple[str, dict]]]] = {
    ".jsonl": _read_jsonl,
    ".json": _read_jsonl,
    ".csv": _read_csv,
    ".parquet": _read_parquet,
}


def _raw_rows(src: str | Path, split: str) -> Iterator[tuple[str, dict]]:
    path = Path(src)
    if path.is_file():
        reader = READERS.get(path.suffix.lower())
        if reader is None:
            raise ValueError(f"{path}: unsupported task file type {path.suffix!r}; "
                             f"use one of {', '.join(READERS)} or a dataset folder / Hub id")
        return reader(path)
    if path.suffix.lower() in READERS:
        raise FileNotFoundError(f"task file not found: {path}")
    return _read_dataset(str(src), split)


def _is_hub_id(src: str) -> bool:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(src)
    except HFValidationError:
        return False
    return True


def load_tasks(src: str | Path, split: str = "train") -> list[Task]:
    """Read and validate every task in `src` (file, dataset folder, or Hub id).

    Raises one ValueError listing every bad field as "FILE line N, field 'F': message".
    A peer's export file (Chatbot Arena, Argilla, Label Studio) gives its pairs as `pair` tasks
    (labeling.peers; `python -m labeling import` stores its verdicts as labels too, and also
    reads peers' dataset folders and Hub ids).
    """
    from labeling.peers import pair_tasks, read_peer

    peer = read_peer(src, split) if Path(src).is_file() else None
    if peer is not None:
        return pair_tasks(peer.judgements)
    return validate_rows(_raw_rows(src, split), source=str(src))


def agreement_cases(tasks: Iterable[Task]) -> list[dict]:
    """Sycophancy cases from `agreement` tasks: id, category, prompt, agreeing, correcting texts."""
    return [
        {"id": t.id, "category": t.category, "prompt": t.prompt,
         "agreeing": t.responses[t.agreeing], "correcting": t.responses[1 - t.agreeing]}
        for t in tasks if t.kind == "agreement"
    ]
