"""Hub sync: a copy of the label store in a Hugging Face dataset repo, so a Space's labels
survive a restart that wipes its disk.

`attach(store, runs)` is the one entry point (the app calls it after opening the store and
before seeding or serving). When env RMLAB_HUB_DATASET names a dataset repo it

1. restores the store from the repo (plus any shards left in the local folder) when the store
   has no assignments yet: tasks, every assignment (so k-limits, "never the same pairing
   twice" and skips hold) and every label, with their original ids, in one transaction;
2. appends every newly imported task and every assignment change (served, labelled, skipped,
   undone, expired) to JSONL shards under `<runs>/hub_sync/` (one writer per process, file
   names unique per process), which `huggingface_hub.CommitScheduler` uploads every
   RMLAB_HUB_EVERY minutes;
3. uploads once more at shutdown (atexit, and SIGTERM, which Spaces sends on restart).

Layout (local folder and repo root alike):

    README.md                                   dataset card naming the two configs
    tasks/<start>-<writer>-<part>.jsonl         {"logged_at", "writer", "task": Task.to_record()}
    assignments/<start>-<writer>-<part>.jsonl   {"logged_at", "writer", "assignment": row, "label": row | null}

An assignment line is a snapshot of its row (and its label, null after an undo) taken after the
change committed; on restore the latest snapshot of each assignment wins, so replaying the log
twice, or the same shard from the Hub and from the local folder, gives one copy.

What can be lost: changes logged after the last upload when the process dies without running
its shutdown upload (SIGKILL, out of memory, a crash of the machine): at most RMLAB_HUB_EVERY
minutes of labels. A lower RMLAB_HUB_EVERY shrinks that window (at one Hub commit per
interval); persistent storage or PostgreSQL for RMLAB_DB removes it.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from labeling.store import Store, assignments_t, labels_t, tasks_t
from labeling.tasks import Task, validate_rows

logger = logging.getLogger(__name__)

FOLDER = "hub_sync"
STREAMS = ("tasks", "assignments")
PATTERNS = [f"{stream}/*.jsonl" for stream in STREAMS]
RESTORE_LOCK = "hub-sync-restore"
CARD = """---
configs:
- config_name: assignments
  data_files: "assignments/*.jsonl"
- config_name: tasks
  data_files: "tasks/*.jsonl"
---
Label store log written by the reward-model lab (`labeling.hub_sync`): append-only JSONL
shards, one writer per app process. Each `assignments` line is a snapshot of one assignment
and its label (null after an undo); the latest snapshot of an assignment wins.
"""


def _env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name) or ""
    try:
        value = float(raw) if raw.strip() else default
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise ValueError(f"{name}={raw!r} is not a positive number of minutes; set e.g. {name}=5")
    return value


def _env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw not in ("1", "true", "yes", "0", "false", "no"):
        raise ValueError(f"{name}={raw!r} is not a boolean; set {name}=true or {name}=false")
    return raw in ("1", "true", "yes")


@dataclass
class HubSyncConfig:
    """Where and how often the store's log is uploaded; built from the environment."""

    repo_id: str = field(metadata={"help": "Hub dataset repo for the log (env RMLAB_HUB_DATASET)."})
    folder: Path = field(metadata={"help": "Local shard folder: <runs>/hub_sync."})
    token: str | None = field(default=None, metadata={
        "help": "Hub token with write access (env HF_TOKEN; a Space secret)."})
    every: float = field(default=5.0, metadata={
        "help": "Minutes between uploads (env RMLAB_HUB_EVERY): the most that a hard kill loses."})
    private: bool = field(default=True, metadata={
        "help": "Create the repo private if it does not exist (env RMLAB_HUB_PRIVATE)."})
    shard_bytes: int = field(default=16 << 20, metadata={
        "help": "Start a new shard when one reaches this size (each upload re-sends changed shards whole)."})

    @classmethod
    def from_env(cls, runs: str | Path, env: Mapping[str, str] | None = None) -> HubSyncConfig | None:
        """The config for `runs`, or None when RMLAB_HUB_DATASET is unset (sync off)."""
        env = os.environ if env is None else env
        repo_id = (env.get("RMLAB_HUB_DATASET") or "").strip()
        if not repo_id:
            return None
        token = (env.get("HF_TOKEN") or "").strip() or None
        if token is None:
            raise ValueError("RMLAB_HUB_DATASET is set but HF_TOKEN is not; add a Hub token with "
                             "write access to that repo (on a Space: a secret named HF_TOKEN)")
        return cls(repo_id=repo_id, folder=Path(runs) / FOLDER, token=token,
                   every=_env_float(env, "RMLAB_HUB_EVERY", 5.0),
                   private=_env_bool(env, "RMLAB_HUB_PRIVATE", True))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


# ---------------------------------------------------------------- writing


class ShardWriter:
    """Appends JSON lines to `<folder>/<stream>/<start>-<writer>-<part>.jsonl`; one per process.

    Every line is written and flushed while holding `lock` (the CommitScheduler's), so an
    upload never sees half a line.
    """

    def __init__(self, folder: Path, stream: str, writer: str, lock: threading.Lock,
                 shard_bytes: int):
        self.folder, self.stream, self.writer = folder / stream, stream, writer
        self.lock, self.shard_bytes = lock, shard_bytes
        self.start = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.part, self._file = 0, None

    @property
    def path(self) -> Path:
        return self.folder / f"{self.start}-{self.writer}-{self.part:04d}.jsonl"

    def write(self, record: dict) -> None:
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        with self.lock:
            if self._file is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(line)
            self._file.flush()
            if self._file.tell() >= self.shard_bytes:
                self._file.close()
                self._file, self.part = None, self.part + 1

    def close(self) -> None:
        with self.lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def assignment_snapshot(conn: sa.Connection, assignment_id: int) -> dict | None:
    """{"assignment": row, "label": row or None} as stored now; None if the id is unknown."""
    row = conn.execute(sa.select(assignments_t).where(assignments_t.c.id == assignment_id)).first()
    if row is None:
        return None
    label = conn.execute(sa.select(labels_t).where(labels_t.c.assignment_id == assignment_id)).first()
    return {"assignment": row._asdict(), "label": None if label is None else label._asdict()}


class HubSync:
    """The running sync: a store listener that logs, and the scheduler that uploads the log."""

    def __init__(self, store: Store, config: HubSyncConfig, scheduler):
        self.store, self.config, self.scheduler = store, config, scheduler
        self.writer_id = uuid.uuid4().hex[:12]
        self.writer = f"{socket.gethostname()}:{os.getpid()}:{self.writer_id}"
        self.writers = {stream: ShardWriter(config.folder, stream, self.writer_id, scheduler.lock,
                                            config.shard_bytes) for stream in STREAMS}
        self._closed = False
        card = config.folder / "README.md"
        if not card.exists():
            config.folder.mkdir(parents=True, exist_ok=True)
            card.write_text(CARD)

    def on_event(self, event: str, payload: object) -> None:
        """Store listener: log new tasks and the new state of a changed assignment."""
        logged_at = _now()  # before reading: a later change's snapshot is logged later
        if event == "tasks":
            for task in payload:
                self.writers["tasks"].write({"logged_at": logged_at, "writer": self.writer,
                                             "task": task.to_record()})
        elif event == "assignment":
            with self.store.engine.connect() as conn:
                snapshot = assignment_snapshot(conn, int(payload))
            if snapshot is not None:
                self.writers["assignments"].write({"logged_at": logged_at, "writer": self.writer,
                                                   **snapshot})

    def upload(self):
        """Upload now (waits for an upload in progress first); the commit info, or None."""
        return self.scheduler.trigger().result()

    def close(self) -> None:
        """Stop logging and the schedule, then upload what is left. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self.on_event in self.store.listeners:
            self.store.listeners.remove(self.on_event)
        self.scheduler.stop()  # scheduled uploads still queued become no-ops
        pending = getattr(self.scheduler, "last_future", None)
        if pending is not None:
            try:
                pending.result()
            except Exception:  # logged by the scheduler; the final upload below retries
                pass
        for writer in self.writers.values():
            writer.close()
        # Direct call: at interpreter exit the scheduler's thread pool takes no new work.
        self.scheduler.push_to_hub()
        atexit.unregister(self.close)
        logger.info("hub sync: final upload to %s done", self.config.repo_id)


# ---------------------------------------------------------------- reading and restoring


@dataclass
class Log:
    """What a set of shard folders holds: tasks in import order, the latest snapshot per assignment."""

    tasks: list[Task]
    assignments: list[dict]  # {"assignment": row, "label": row | None}, by assignment id

    def __len__(self) -> int:
        return len(self.tasks) + len(self.assignments)


def _lines(path: Path) -> Iterator[tuple[str, dict]]:
    """(where, record) for each line; a last line without newline (cut mid-write) is skipped."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    if lines and lines[-1]:
        logger.warning("%s: ignoring an unfinished last line", path)
    for number, line in enumerate(lines[:-1], start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: invalid JSON ({e.msg}); remove or fix that line") from None
        yield where, record


def _shards(folders: Iterable[Path], stream: str) -> list[Path]:
    return sorted(p for folder in folders for p in (Path(folder) / stream).glob("*.jsonl"))


def _ordered(folders: Iterable[Path], stream: str, key: str) -> list[tuple[tuple, str, dict]]:
    """((logged_at, writer, where), where, record) for every record of `stream`, oldest first."""
    out = []
    for path in _shards(folders, stream):
        for where, record in _lines(path):
            if not isinstance(record, dict) or key not in record or "logged_at" not in record:
                raise ValueError(f"{where}: expected an object with 'logged_at' and '{key}'")
            out.append(((str(record["logged_at"]), str(record.get("writer", "")), where), where, record))
    return sorted(out, key=lambda item: item[0])


def _check_row(table: sa.Table, row: object, where: str) -> dict:
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a {table.name} row object")
    missing = [c.name for c in table.c if not c.nullable and row.get(c.name) is None
               and not (c.primary_key and c.autoincrement)]
    if missing or row.get("id") is None:
        raise ValueError(f"{where}: {table.name} row lacks {', '.join(missing or ['id'])}")
    return {c.name: row.get(c.name) for c in table.c}


def read_log(folders: Iterable[Path]) -> Log:
    """Read every shard under `folders` (missing folders are skipped); duplicates collapse."""
    folders = [Path(f) for f in folders if f is not None and Path(f).is_dir()]
    rows = [(where, record["task"]) for _, where, record in _ordered(folders, "tasks", "task")]
    tasks = validate_rows(rows, source="hub sync log") if rows else []
    latest: dict[int, dict] = {}
    for _, where, record in _ordered(folders, "assignments", "assignment"):
        row = _check_row(assignments_t, record["assignment"], where)
        label = record.get("label")
        latest[int(row["id"])] = {"assignment": row,
                                  "label": None if label is None else _check_row(labels_t, label, where)}
    return Log(tasks, [latest[i] for i in sorted(latest)])


def _resolve_slots(rows: list[dict]) -> list[dict]:
    """Keep one live holder per (task, pairing, slot): a labelled one, else the latest served.

    Two holders appear only when the expiry of a lapsed lease was not logged (lost in the
    window); the older served one becomes `expired`, as the store itself would have made it.
    """
    holders: dict[tuple, list[dict]] = {}
    for row in rows:
        if row["status"] in ("served", "done") and row["slot"] is not None:
            holders.setdefault((row["task_id"], row["pair_index"], row["slot"]), []).append(row)
    for group in holders.values():
        group.sort(key=lambda r: (r["status"] == "done", r["served_at"]), reverse=True)
        for row in group[1:]:
            row["status"] = "expired"
    return rows


def _pg_reset_sequences(conn: sa.Connection) -> None:
    """Explicit ids do not advance PostgreSQL's serial sequences; move them past the restored ids."""
    for table in (assignments_t, labels_t):
        conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                             f"(SELECT MAX(id) FROM {table.name}))"))


# dialect -> what to do after inserting rows with explicit ids (SQLite continues from max rowid)
AFTER_RESTORE = {"postgresql": _pg_reset_sequences}


@dataclass(frozen=True)
class RestoreReport:
    tasks: int  # tasks new to the store
    assignments: int
    labels: int
    skipped: int  # assignments whose task is not in the log or the store
    restored: bool  # False: the store already had assignments, nothing was written


def restore(store: Store, log: Log) -> RestoreReport:
    """Write `log` into `store` if it has no assignments yet, in one transaction.

    Ids are kept, so an assignment id a browser still holds stays valid. Running it again
    (or on two replicas at once) writes nothing: the check and the writes share one
    transaction, serialised by the store's write lock.
    """
    def run(conn: sa.Connection) -> RestoreReport:
        store._lock(conn, RESTORE_LOCK)
        if conn.execute(sa.select(sa.func.count()).select_from(assignments_t)).scalar():
            return RestoreReport(0, 0, 0, 0, restored=False)
        new_tasks = store._import(conn, log.tasks)
        known = {row.id for row in conn.execute(sa.select(tasks_t.c.id))}
        kept = [entry for entry in log.assignments if entry["assignment"]["task_id"] in known]
        rows = _resolve_slots([dict(entry["assignment"]) for entry in kept])
        labels = [entry["label"] for entry in kept if entry["label"] is not None]
        if rows:
            conn.execute(sa.insert(assignments_t), rows)
        if labels:
            conn.execute(sa.insert(labels_t), labels)
        AFTER_RESTORE.get(store.dialect, lambda c: None)(conn)
        return RestoreReport(new_tasks, len(rows), len(labels), len(log.assignments) - len(kept), True)

    with store._write() as conn:  # one transaction: all of the log or nothing
        return run(conn)


def download(api, config: HubSyncConfig, target: Path) -> Path | None:
    """The repo's shards, downloaded into `target`; None when the repo does not exist yet."""
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        return Path(api.snapshot_download(config.repo_id, repo_type="dataset", token=config.token,
                                          allow_patterns=PATTERNS, local_dir=target))
    except RepositoryNotFoundError:
        return None


# ---------------------------------------------------------------- the entry point


def _flush_on_sigterm(sync: HubSync) -> None:
    """On SIGTERM upload first, then do what the process did before (default: terminate)."""
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum, frame):
        try:
            sync.close()
        finally:
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, handler)


def attach(store: Store, runs: str | Path, env: Mapping[str, str] | None = None, api=None,
           handle_signals: bool = True) -> HubSync | None:
    """Restore `store` from the Hub repo if it is empty, then log and upload every change.

    Returns None (and does nothing) when env RMLAB_HUB_DATASET is unset. Call it after opening
    the store and before seeding it or serving anyone. `api` is the `HfApi` to use (tests pass
    one whose network calls are replaced); `handle_signals` installs the SIGTERM upload (only
    possible in the main thread). Raises ValueError for a bad setting and whatever the Hub
    raises when the repo exists but cannot be read: starting empty would hand out work twice.
    """
    from huggingface_hub import CommitScheduler, HfApi

    config = HubSyncConfig.from_env(runs, env)
    if config is None:
        return None
    api = api or HfApi(token=config.token)
    snapshot = download(api, config, Path(runs) / f"{FOLDER}_download")
    report = restore(store, read_log([snapshot, config.folder]))
    if report.restored and (report.tasks or report.assignments):
        logger.warning("hub sync: restored %d task(s), %d assignment(s), %d label(s) from %s%s",
                       report.tasks, report.assignments, report.labels, config.repo_id,
                       f" ({report.skipped} assignment(s) of unknown tasks skipped)" if report.skipped else "")
    scheduler = CommitScheduler(repo_id=config.repo_id, repo_type="dataset", folder_path=config.folder,
                                every=config.every, private=config.private, token=config.token,
                                allow_patterns=[*PATTERNS, "README.md"], hf_api=api)
    sync = HubSync(store, config, scheduler)
    store.listeners.append(sync.on_event)
    atexit.register(sync.close)
    if handle_signals and threading.current_thread() is threading.main_thread():
        _flush_on_sigterm(sync)
    return sync
