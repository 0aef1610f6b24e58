"""The label store: tasks, assignments of work to annotators, and labels, in one database.

SQLAlchemy Core on SQLite (WAL, synchronous=FULL, foreign keys) or PostgreSQL
(`postgresql+psycopg://...`). Every public method runs in one committed transaction, so a
method that returns has made its writes durable.

Assignment rules (`Store.next_assignment`):
- a unit of work is a task *pairing*: (0, 1) for two-response kinds; ab, bc, ca for a triad;
- an annotator's outstanding (served, unsubmitted) assignment is served again before any
  new one, so reloading the page never creates work;
- nobody gets the same pairing twice (a unique constraint), and a skipped pairing stays
  skipped for that annotator (`undo_last` brings it back);
- each pairing collects at most `labels_per_task` labels from distinct annotators: every live
  assignment holds one of k numbered slots, unique per pairing in the database, so
  concurrent servers cannot overfill it. A served assignment untouched for `lease_seconds`
  gives its slot up when someone else needs it (a late submit still stores the label when a
  slot is free, else it is refused);
- gold tasks are attention checks: one is due after every `gold_every - 1` other
  assignments, and by default every annotator may label every gold task (no cap);
- left/right order is drawn at random per assignment and recorded (`shown_order`, e.g.
  "ba" = response b on the left);
- two pairings of one triad are never served back to back; pairings of triads an annotator
  has started come first, and new triads are started while other tasks remain to space
  them, so triads get completed. If the only work left is another pairing of the task just
  served, `next_assignment` returns None (that pairing stays for other annotators).

Listeners: `store.listeners` holds callables `(event, payload)` run after a write commits:
("tasks", [Task, ...]) for newly imported tasks and ("assignment", id) whenever an
assignment is created or changes state (labelled, skipped, undone, expired). A listener that
raises is logged and does not undo the write (labeling.hub_sync uses this).

Labels: `choice` is one of CHOICES, `strength` 1|2|3 = slightly|clearly|much better, stored
as `margin` = MARGINS[strength] for left/right and 0.0 for tie/both_bad. The winning and
losing response indices are stored too, so everything downstream is order-independent.
"""
from __future__ import annotations

import logging
import os
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from labeling.tasks import KINDS, LETTERS, Task, pairings
from labeling.vocab import MARGINS, check_label

DEFAULT_DB = Path("runs") / "labels.db"
logger = logging.getLogger(__name__)
Listener = Callable[[str, object], None]  # (event, payload), called after commit
SCHEMA_VERSION = 1


# choice -> (winner, loser) response indices, given the (left, right) indices shown
CHOICES: dict[str, Callable[[int, int], tuple[int | None, int | None]]] = {
    "left": lambda left, right: (left, right),
    "right": lambda left, right: (right, left),
    "tie": lambda left, right: (None, None),
    "both_bad": lambda left, right: (None, None),
}

LIVE = ("served", "done")  # assignment states that hold a slot


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer; set e.g. {name}=3") from None


@dataclass
class StoreConfig:
    """How work is handed out. Not stored in the database: each process sets its own."""

    labels_per_task: int = field(
        default_factory=lambda: _env_int("RMLAB_LABELS_PER_TASK", 3),
        metadata={"help": "k: labels each task pairing collects, from distinct annotators "
                          "(default: env RMLAB_LABELS_PER_TASK, else 3)."})
    gold_every: int = field(
        default=8, metadata={"help": "Serve one gold task in every this many assignments."})
    gold_labels_per_task: int | None = field(
        default=None, metadata={"help": "Cap on labels per gold task; None lets every "
                                        "annotator take every gold check."})
    lease_seconds: float = field(
        default=1800.0, metadata={"help": "A served, unsubmitted assignment keeps its slot "
                                          "this long before another annotator may take it."})
    seed: int | None = field(
        default=None, metadata={"help": "Seed for order and left/right draws (None: OS entropy)."})

    def __post_init__(self) -> None:
        if self.labels_per_task < 1:
            raise ValueError(f"labels_per_task must be >= 1, got {self.labels_per_task}")
        if self.gold_every < 1:
            raise ValueError(f"gold_every must be >= 1, got {self.gold_every}")
        if self.gold_labels_per_task is not None and self.gold_labels_per_task < 1:
            raise ValueError("gold_labels_per_task must be >= 1 or None (no cap)")

    def cap(self, kind: str) -> int | None:
        """Most labels a pairing of `kind` collects; None = no cap."""
        return self.gold_labels_per_task if kind == "gold" else self.labels_per_task


@dataclass(frozen=True)
class Assignment:
    """One pairing of one task served to one annotator; `left`/`right` are the texts as shown."""

    id: int
    task_id: str
    kind: str
    prompt: str
    left: str
    right: str
    shown_order: str  # e.g. "ba": response b on the left, a on the right
    pair_index: int  # which pairing of the task: 0 for pairs; 0, 1, 2 = ab, bc, ca for triads
    created_at: str
    annotator: str = ""
    left_index: int = 0
    right_index: int = 1
    category: str | None = None
    status: str = "served"


@dataclass(frozen=True)
class Label:
    """A stored judgement. `winner`/`loser` are response indices (None for tie/both_bad)."""

    id: int
    assignment_id: int
    task_id: str
    pair_index: int
    annotator: str
    choice: str
    strength: int
    margin: float
    winner: int | None
    loser: int | None
    shown_order: str
    rationale: str
    tags: tuple[str, ...]
    seconds: float | None
    created_at: str


# ---------------------------------------------------------------- schema

metadata = sa.MetaData()

meta_t = sa.Table(
    "rmlab_meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

tasks_t = sa.Table(
    "tasks", metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("responses", sa.JSON, nullable=False),  # list[str], 2 or 3
    sa.Column("agreeing", sa.Integer),
    sa.Column("better", sa.Integer),
    sa.Column("category", sa.String(200)),
    sa.Column("meta", sa.JSON, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),  # import order
    sa.Column("imported_at", sa.String(32), nullable=False),
)

assignments_t = sa.Table(
    "assignments", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("task_id", sa.String(200), sa.ForeignKey("tasks.id"), nullable=False),
    sa.Column("pair_index", sa.Integer, nullable=False),
    sa.Column("annotator", sa.String(200), nullable=False),
    sa.Column("left_index", sa.Integer, nullable=False),
    sa.Column("right_index", sa.Integer, nullable=False),
    sa.Column("shown_order", sa.String(2), nullable=False),
    sa.Column("slot", sa.Integer),  # 0..k-1 while live; NULL for uncapped (gold) pairings
    sa.Column("status", sa.String(16), nullable=False),  # served|done|skipped|expired
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("served_at", sa.String(32), nullable=False),  # last time shown
    sa.Column("finished_at", sa.String(32)),
    sa.UniqueConstraint("task_id", "pair_index", "annotator", name="uq_assignment_once"),
)
_live_slot = assignments_t.c.status.in_(LIVE)
sa.Index("uq_assignment_slot", assignments_t.c.task_id, assignments_t.c.pair_index,
         assignments_t.c.slot, unique=True,
         sqlite_where=_live_slot, postgresql_where=_live_slot)
sa.Index("ix_assignment_annotator", assignments_t.c.annotator, assignments_t.c.status)

labels_t = sa.Table(
    "labels", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("assignment_id", sa.Integer, sa.ForeignKey("assignments.id"),
              nullable=False, unique=True),
    sa.Column("choice", sa.String(16), nullable=False),
    sa.Column("strength", sa.Integer, nullable=False),
    sa.Column("margin", sa.Float, nullable=False),
    sa.Column("winner", sa.Integer),  # response index; NULL for tie/both_bad
    sa.Column("loser", sa.Integer),
    sa.Column("rationale", sa.Text, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),  # list[str]
    sa.Column("seconds", sa.Float),  # time on task
    sa.Column("created_at", sa.String(32), nullable=False),
)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(t: datetime) -> str:
    """Fixed-width UTC ISO time, so string order is time order."""
    return t.astimezone(timezone.utc).isoformat(timespec="microseconds")


def resolve_url(db: str | Path | None = None) -> str:
    """`db` (SQLite path or SQLAlchemy URL) -> URL; None -> env RMLAB_DB -> runs/labels.db."""
    db = db if db not in (None, "") else os.environ.get("RMLAB_DB") or DEFAULT_DB
    db = str(db)
    if "://" in db:
        return db
    return f"sqlite:///{Path(db).expanduser().resolve()}"


def _sqlite_setup(engine: sa.Engine) -> None:
    """WAL + synchronous=FULL + foreign keys; write transactions start with BEGIN IMMEDIATE.

    pysqlite's own BEGIN is deferred, so a read-then-write transaction can fail with
    "database is locked" instead of waiting; we issue BEGIN ourselves
    (https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl).
    """

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON",
                       "busy_timeout=30000"):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):
        write = conn.get_execution_options().get("rmlab_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _pg_lock(conn: sa.Connection, key: str) -> None:
    """Serialise one annotator's writes for the rest of this transaction."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})


# dialect -> per-annotator lock; SQLite needs none (BEGIN IMMEDIATE serialises writers)
LOCKS: dict[str, Callable[[sa.Connection, str], None]] = {"postgresql": _pg_lock}
ENGINE_SETUP: dict[str, Callable[[sa.Engine], None]] = {"sqlite": _sqlite_setup}


class _Conflict(Exception):
    """A concurrent writer changed what this transaction read; retry it."""


def _check_annotator(annotator: str) -> str:
    if not isinstance(annotator, str) or not annotator.strip():
        raise ValueError("annotator must be a non-empty name")
    if len(annotator.strip()) > 200:
        raise ValueError("annotator name is longer than 200 characters")
    return annotator.strip()


def _task(row) -> Task:
    return Task(id=row.id, kind=row.kind, prompt=row.prompt, responses=tuple(row.responses),
                agreeing=row.agreeing, better=row.better, category=row.category,
                meta=dict(row.meta or {}))


def _task_record(task: Task, seq: int, now: str) -> dict:
    return {"id": task.id, "seq": seq, "kind": task.kind, "prompt": task.prompt,
            "responses": list(task.responses), "agreeing": task.agreeing,
            "better": task.better, "category": task.category, "meta": dict(task.meta),
            "imported_at": now}


def _label(row) -> Label:
    return Label(id=row.id, assignment_id=row.assignment_id, task_id=row.task_id,
                 pair_index=row.pair_index, annotator=row.annotator, choice=row.choice,
                 strength=row.strength, margin=row.margin, winner=row.winner, loser=row.loser,
                 shown_order=row.shown_order, rationale=row.rationale, tags=tuple(row.tags),
                 seconds=row.seconds, created_at=row.created_at)


_ASSIGNMENT_COLUMNS = [*assignments_t.c, tasks_t.c.kind, tasks_t.c.prompt,
                       tasks_t.c.responses, tasks_t.c.category]
_LABEL_COLUMNS = [labels_t.c.id, labels_t.c.assignment_id, assignments_t.c.task_id,
                  assignments_t.c.pair_index, assignments_t.c.annotator, labels_t.c.choice,
                  labels_t.c.strength, labels_t.c.margin, labels_t.c.winner, labels_t.c.loser,
                  assignments_t.c.shown_order, labels_t.c.rationale, labels_t.c.tags,
                  labels_t.c.seconds, labels_t.c.created_at]


def _assignment(row) -> Assignment:
    return Assignment(id=row.id, task_id=row.task_id, kind=row.kind, prompt=row.prompt,
                      left=row.responses[row.left_index], right=row.responses[row.right_index],
                      shown_order=row.shown_order, pair_index=row.pair_index,
                      created_at=row.created_at, annotator=row.annotator,
                      left_index=row.left_index, right_index=row.right_index,
                      category=row.category, status=row.status)


@dataclass
class _Candidate:
    task_id: str
    kind: str
    pair_index: int
    pair: tuple[int, int]
    live: int  # live assignments (done, or served within the lease)
    cap: int | None


class Store:
    """A label store on one database. See the module docstring for the assignment rules.

    Public API (the app and CLIs use only these): `import_tasks`, `tasks`, `ensure_seeded`,
    `next_assignment`, `assignment`, `submit`, `skip`, `undo_last`, `progress`, `labels`,
    `close`.
    """

    def __init__(self, db: str | Path | None = None, config: StoreConfig | None = None):
        self.url = resolve_url(db)
        self.config = config or StoreConfig()
        self._rng = random.Random(self.config.seed)
        self.listeners: list[Listener] = []
        self.engine = sa.create_engine(self.url)
        self.dialect = self.engine.dialect.name
        database = self.engine.url.database
        if self.dialect == "sqlite" and database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        ENGINE_SETUP.get(self.dialect, lambda engine: None)(self.engine)
        metadata.create_all(self.engine)
        with self._write() as conn:
            found = conn.execute(sa.select(meta_t.c.value).where(meta_t.c.key == "schema_version")).scalar()
            if found is None:
                conn.execute(sa.insert(meta_t).values(key="schema_version", value=str(SCHEMA_VERSION)))
            elif int(found) != SCHEMA_VERSION:
                raise RuntimeError(f"{self.safe_url}: schema version {found}, this code expects "
                                   f"{SCHEMA_VERSION}; export the labels and start a new store")

    # ------------------------------------------------------------ plumbing

    @property
    def safe_url(self) -> str:
        """The database URL with any password hidden (for logs and export configs)."""
        return sa.make_url(self.url).render_as_string(hide_password=True)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.safe_url!r})"

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """A write transaction, committed on exit (durable before the caller returns)."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(rmlab_write=True)
            events = conn.info["rmlab_events"] = []  # queued by _emit, run once committed
            with conn.begin():
                yield conn
        for event, payload in events:
            for listener in list(self.listeners):
                try:
                    listener(event, payload)
                except Exception:
                    logger.exception("store listener %r failed on %s %r", listener, event, payload)

    @staticmethod
    def _emit(conn: sa.Connection, event: str, payload: object) -> None:
        """Queue a listener event; it runs only if this transaction commits."""
        conn.info["rmlab_events"].append((event, payload))

    def _retrying(self, fn: Callable[[sa.Connection], object], attempts: int = 10):
        """Run `fn` in a write transaction, again when a concurrent writer won a race."""
        for _ in range(attempts - 1):
            try:
                with self._write() as conn:
                    return fn(conn)
            except (IntegrityError, _Conflict):
                continue
        with self._write() as conn:
            return fn(conn)

    def _lock(self, conn: sa.Connection, annotator: str) -> None:
        LOCKS.get(self.dialect, lambda c, k: None)(conn, f"rmlab:{annotator}")

    # ------------------------------------------------------------ tasks

    def import_tasks(self, tasks: Iterable[Task]) -> int:
        """Add tasks in one transaction; returns how many were new.

        Re-importing a task with the same id and content is a no-op. The same id with
        different content raises ValueError and imports nothing.
        """
        unique: dict[str, Task] = {}
        for task in tasks:
            if not isinstance(task, Task):
                raise TypeError(f"expected Task, got {type(task).__name__}; use load_tasks() first")
            if unique.setdefault(task.id, task) != task:
                raise ValueError(f"two different tasks share the id {task.id!r}")
        return self._retrying(lambda conn: self._import(conn, list(unique.values())))

    def _import(self, conn: sa.Connection, tasks: list[Task]) -> int:
        existing: dict[str, Task] = {}
        for start in range(0, len(tasks), 500):
            ids = [t.id for t in tasks[start:start + 500]]
            for row in conn.execute(sa.select(tasks_t).where(tasks_t.c.id.in_(ids))):
                existing[row.id] = _task(row)
        clashes = [t.id for t in tasks if t.id in existing and existing[t.id] != t]
        if clashes:
            raise ValueError(f"{len(clashes)} task id(s) already in the store with different "
                             f"content: {', '.join(clashes[:10])}; give changed tasks new ids")
        now = _iso(_now())
        seq = conn.execute(sa.select(sa.func.coalesce(sa.func.max(tasks_t.c.seq), 0))).scalar()
        new = [_task_record(t, seq + i, now)
               for i, t in enumerate((t for t in tasks if t.id not in existing), start=1)]
        if new:
            conn.execute(sa.insert(tasks_t), new)
            self._emit(conn, "tasks", [t for t in tasks if t.id not in existing])
        return len(new)

    def tasks(self, kind: str | None = None) -> list[Task]:
        """All tasks (of one kind), in import order."""
        query = sa.select(tasks_t).order_by(tasks_t.c.seq, tasks_t.c.id)
        if kind is not None:
            if kind not in KINDS:
                raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
            query = query.where(tasks_t.c.kind == kind)
        with self.engine.connect() as conn:
            return [_task(row) for row in conn.execute(query)]

    def ensure_seeded(self) -> int:
        """Import the seed tasks (data/tasks/*.jsonl) when the store has none; returns how many."""
        from labeling.seed import load_seed_tasks

        with self.engine.connect() as conn:
            if conn.execute(sa.select(sa.func.count()).select_from(tasks_t)).scalar():
                return 0
        return self.import_tasks(load_seed_tasks())

    # ------------------------------------------------------------ assignment

    def next_assignment(self, annotator: str) -> Assignment | None:
        """The annotator's outstanding assignment, else a new one, else None (nothing left)."""
        annotator = _check_annotator(annotator)
        return self._retrying(lambda conn: self._next(conn, annotator))

    def assignment(self, assignment_id: int) -> Assignment:
        """One assignment by id (any status); LookupError when unknown."""
        with self.engine.connect() as conn:
            return _assignment(self._assignment_row(conn, assignment_id))

    def _assignment_row(self, conn: sa.Connection, assignment_id: int, lock: bool = False):
        query = (sa.select(*_ASSIGNMENT_COLUMNS)
                 .join(tasks_t, tasks_t.c.id == assignments_t.c.task_id)
                 .where(assignments_t.c.id == int(assignment_id)))
        if lock:
            query = query.with_for_update(of=assignments_t)
        row = conn.execute(query).first()
        if row is None:
            raise LookupError(f"no assignment with id {assignment_id}")
        return row

    def _next(self, conn: sa.Connection, annotator: str) -> Assignment | None:
        self._lock(conn, annotator)
        now = _now()
        outstanding = conn.execute(
            sa.select(*_ASSIGNMENT_COLUMNS)
            .join(tasks_t, tasks_t.c.id == assignments_t.c.task_id)
            .where(assignments_t.c.annotator == annotator, assignments_t.c.status == "served")
            .order_by(assignments_t.c.served_at.desc(), assignments_t.c.id.desc())
            .limit(1)).first()
        if outstanding is not None:  # re-serve: the clock for time on task and the lease restart
            conn.execute(sa.update(assignments_t).where(assignments_t.c.id == outstanding.id)
                         .values(served_at=_iso(now)))
            return _assignment(outstanding)
        history = conn.execute(
            sa.select(assignments_t.c.task_id, tasks_t.c.kind)
            .join(tasks_t, tasks_t.c.id == assignments_t.c.task_id)
            .where(assignments_t.c.annotator == annotator)
            .order_by(assignments_t.c.created_at, assignments_t.c.id)).all()
        pick = self._choose(self._candidates(conn, annotator, now), history)
        if pick is None:
            return None
        slot = self._free_slot(conn, pick.task_id, pick.pair_index, pick.cap, now)
        left, right = pick.pair if self._rng.random() < 0.5 else pick.pair[::-1]
        row = {"task_id": pick.task_id, "pair_index": pick.pair_index, "annotator": annotator,
               "left_index": left, "right_index": right,
               "shown_order": LETTERS[left] + LETTERS[right], "slot": slot, "status": "served",
               "created_at": _iso(now), "served_at": _iso(now), "finished_at": None}
        new_id = conn.execute(sa.insert(assignments_t).values(**row)
                              .returning(assignments_t.c.id)).scalar_one()
        self._emit(conn, "assignment", new_id)
        return self._assignment_by_id(conn, new_id)

    def _assignment_by_id(self, conn: sa.Connection, assignment_id: int) -> Assignment:
        return _assignment(self._assignment_row(conn, assignment_id))

    def _candidates(self, conn: sa.Connection, annotator: str, now: datetime) -> list[_Candidate]:
        """Pairings this annotator may still get: never had, and below their cap."""
        cutoff = _iso(now - timedelta(seconds=self.config.lease_seconds))
        a = assignments_t.c
        fresh = sa.or_(a.status == "done", sa.and_(a.status == "served", a.served_at >= cutoff))
        live = Counter({(r.task_id, r.pair_index): r.n for r in conn.execute(
            sa.select(a.task_id, a.pair_index, sa.func.count().label("n"))
            .where(fresh).group_by(a.task_id, a.pair_index))})
        mine = {(task_id, index) for task_id, index in conn.execute(
            sa.select(a.task_id, a.pair_index).where(a.annotator == annotator))}
        out = []
        for task_id, kind in conn.execute(sa.select(tasks_t.c.id, tasks_t.c.kind)
                                          .order_by(tasks_t.c.seq, tasks_t.c.id)):
            cap = self.config.cap(kind)
            for index, pair in enumerate(pairings(KINDS[kind][0])):
                n = live[(task_id, index)]
                if (task_id, index) not in mine and (cap is None or n < cap):
                    out.append(_Candidate(task_id, kind, index, pair, n, cap))
        return out

    def _choose(self, candidates: list[_Candidate], history: list) -> _Candidate | None:
        """Gold when due; else a started triad; else the fullest pairing (ties at random).

        Never the task served last, so a triad's pairings are not back to back. A triad's
        later pairings need other tasks between them, so new triads are started first
        once the other tasks left are no more than two per unstarted triad (plus two).
        """
        last = history[-1][0] if history else None
        since_gold = next((i for i, (_, kind) in enumerate(reversed(history)) if kind == "gold"),
                          len(history))
        started = {task_id for task_id, kind in history if kind == "triad"}
        pool = [c for c in candidates if c.task_id != last]
        gold = [c for c in pool if c.kind == "gold"]
        other = [c for c in pool if c.kind != "gold"]
        if gold and (since_gold >= self.config.gold_every - 1 or not other):
            return self._rng.choice(gold)
        resumed = [c for c in other if c.task_id in started]
        if resumed:
            return self._rng.choice(resumed)
        triads = [c for c in other if c.kind == "triad"]
        spacers = {c.task_id for c in other if c.kind != "triad"}
        if triads and len(spacers) <= 2 * len({c.task_id for c in triads}) + 2:
            other = triads
        self._rng.shuffle(other)
        return max(other, key=lambda c: c.live, default=None)

    def _free_slot(self, conn: sa.Connection, task_id: str, pair_index: int,
                   cap: int | None, now: datetime) -> int | None:
        """The lowest free slot of a pairing, expiring a lapsed lease if all are held."""
        if cap is None:
            return None
        a = assignments_t.c
        held = conn.execute(sa.select(a.id, a.slot, a.status, a.served_at)
                            .where(a.task_id == task_id, a.pair_index == pair_index,
                                   a.status.in_(LIVE))).all()
        free = sorted(set(range(cap)) - {r.slot for r in held})
        if free:
            return free[0]
        cutoff = _iso(now - timedelta(seconds=self.config.lease_seconds))
        lapsed = sorted((r for r in held if r.status == "served" and r.served_at < cutoff),
                        key=lambda r: r.served_at)
        if not lapsed:
            raise _Conflict("pairing filled meanwhile")
        expired = conn.execute(sa.update(assignments_t)
                               .where(a.id == lapsed[0].id, a.status == "served")
                               .values(status="expired"))
        if expired.rowcount != 1:
            raise _Conflict("lease renewed meanwhile")
        self._emit(conn, "assignment", lapsed[0].id)
        return lapsed[0].slot

    def _reclaim(self, conn: sa.Connection, row, status: str, now: datetime, **values) -> None:
        """Bring an assignment that gave up its slot (skipped, expired) back to `status`."""
        cap = self.config.cap(row.kind)
        slot = self._free_slot(conn, row.task_id, row.pair_index, cap, now) if cap else None
        conn.execute(sa.update(assignments_t).where(assignments_t.c.id == row.id)
                     .values(status=status, slot=slot, **values))

    # ------------------------------------------------------------ labeling

    def submit(self, assignment_id: int, annotator: str, choice: str, strength: int = 2,
               rationale: str = "", tags: Iterable[str] = (), seconds: float | None = None) -> Label:
        """Store the annotator's judgement of an assignment; durable on return.

        Idempotent per assignment: a second submit returns the stored label and stores
        nothing. `seconds` is the client's time on task; None uses the server's clock since
        the assignment was (last) served. Raises ValueError for bad input or a skipped
        assignment, PermissionError when the assignment belongs to someone else,
        LookupError for an unknown id.
        """
        annotator = _check_annotator(annotator)
        tags = check_label(choice, strength, tags)
        if not isinstance(rationale, str):
            raise ValueError("rationale must be a string")
        if seconds is not None and not seconds >= 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        return self._retrying(lambda conn: self._submit(
            conn, int(assignment_id), annotator, choice, strength, rationale, tags, seconds))

    def _submit(self, conn, assignment_id, annotator, choice, strength, rationale, tags,
                seconds) -> Label:
        self._lock(conn, annotator)
        row = self._assignment_row(conn, assignment_id, lock=True)
        if row.annotator != annotator:
            raise PermissionError(f"assignment {assignment_id} belongs to another annotator")
        stored = self._label_for(conn, assignment_id)
        if stored is not None:
            return stored
        if row.status == "skipped":
            raise ValueError(f"assignment {assignment_id} was skipped; undo_last() to label it")
        now = _now()
        if seconds is None:
            seconds = (now - datetime.fromisoformat(row.served_at)).total_seconds()
        finish = {"finished_at": _iso(now)}
        if row.status == "expired":  # a late submit keeps the work when a slot is free
            try:
                self._reclaim(conn, row, "done", now, **finish)
            except _Conflict:
                raise ValueError(f"assignment {assignment_id} expired and its task already "
                                 f"has {self.config.cap(row.kind)} labels") from None
        else:
            conn.execute(sa.update(assignments_t).where(assignments_t.c.id == assignment_id)
                         .values(status="done", **finish))
        winner, loser = CHOICES[choice](row.left_index, row.right_index)
        margin = MARGINS[strength] if winner is not None else 0.0
        conn.execute(sa.insert(labels_t).values(
            assignment_id=assignment_id, choice=choice, strength=strength, margin=margin,
            winner=winner, loser=loser, rationale=rationale, tags=list(tags),
            seconds=float(seconds), created_at=_iso(now)))
        self._emit(conn, "assignment", assignment_id)
        return self._label_for(conn, assignment_id)

    def _label_for(self, conn: sa.Connection, assignment_id: int) -> Label | None:
        row = conn.execute(sa.select(*_LABEL_COLUMNS)
                           .join(assignments_t, assignments_t.c.id == labels_t.c.assignment_id)
                           .where(labels_t.c.assignment_id == assignment_id)).first()
        return None if row is None else _label(row)

    def skip(self, assignment_id: int, annotator: str) -> None:
        """Give an outstanding assignment up: its slot frees, and this annotator never gets
        that pairing again unless they `undo_last()`. Skipping twice is a no-op."""
        annotator = _check_annotator(annotator)

        def run(conn):
            self._lock(conn, annotator)
            row = self._assignment_row(conn, assignment_id, lock=True)
            if row.annotator != annotator:
                raise PermissionError(f"assignment {assignment_id} belongs to another annotator")
            if row.status == "done":
                raise ValueError(f"assignment {assignment_id} is already labeled; use undo_last()")
            if row.status != "skipped":
                conn.execute(sa.update(assignments_t).where(assignments_t.c.id == row.id)
                             .values(status="skipped", finished_at=_iso(_now())))
                self._emit(conn, "assignment", row.id)

        self._retrying(run)

    def undo_last(self, annotator: str) -> Assignment | None:
        """Undo the annotator's latest label or skip; returns that assignment, which is now
        outstanding (so `next_assignment` serves it again), or None when nothing is left."""
        annotator = _check_annotator(annotator)
        return self._retrying(lambda conn: self._undo(conn, annotator))

    def _undo(self, conn: sa.Connection, annotator: str) -> Assignment | None:
        self._lock(conn, annotator)
        a = assignments_t.c
        last = conn.execute(sa.select(a.id).where(a.annotator == annotator,
                                                  a.status.in_(("done", "skipped")))
                            .order_by(a.finished_at.desc(), a.id.desc()).limit(1)).scalar()
        if last is None:
            return None
        row = self._assignment_row(conn, last, lock=True)
        now = _now()
        conn.execute(sa.delete(labels_t).where(labels_t.c.assignment_id == last))
        values = {"served_at": _iso(now), "finished_at": None}
        if row.status == "done":  # its slot is still held
            conn.execute(sa.update(assignments_t).where(a.id == last)
                         .values(status="served", **values))
        else:
            try:
                self._reclaim(conn, row, "served", now, **values)
            except _Conflict:
                raise ValueError("cannot undo the skip: that task has since collected "
                                 f"{self.config.cap(row.kind)} labels") from None
        self._emit(conn, "assignment", last)
        return self._assignment_by_id(conn, last)

    def progress(self, annotator: str) -> dict:
        """{"annotator", "done", "skipped", "outstanding", "remaining", "total"} where
        remaining counts outstanding plus pairings this annotator could still be served."""
        annotator = _check_annotator(annotator)
        with self.engine.connect() as conn:
            counts = Counter({status: n for status, n in conn.execute(
                sa.select(assignments_t.c.status, sa.func.count())
                .where(assignments_t.c.annotator == annotator)
                .group_by(assignments_t.c.status))})
            open_ = len(self._candidates(conn, annotator, _now()))
        remaining = counts["served"] + open_
        return {"annotator": annotator, "done": counts["done"], "skipped": counts["skipped"],
                "outstanding": counts["served"], "remaining": remaining,
                "total": counts["done"] + counts["skipped"] + remaining}

    # ------------------------------------------------------------ reading labels

    def labels(self) -> pd.DataFrame:
        """One row per label, oldest first, with its task and what was shown.

        Columns: label_id, assignment_id, task_id, task_kind, category, pair_index, pair
        (e.g. "bc": the pairing's response letters in canonical order), annotator, prompt,
        left_index, right_index, shown_order, left, right, choice, strength, margin,
        winner, loser (response indices, <NA> for tie/both_bad), chosen, rejected (winner
        and loser texts; for tie/both_bad the left and right texts), tie (no response
        won: choice tie or both_bad, so a trainer never reads both_bad as a win), both_bad,
        rationale, tags, seconds, created_at, agreeing, better.
        """
        a, t, lab = assignments_t.c, tasks_t.c, labels_t.c
        query = (sa.select(lab.id.label("label_id"), lab.assignment_id, a.task_id,
                           t.kind.label("task_kind"), t.category, a.pair_index, a.annotator,
                           t.prompt, t.responses, a.left_index, a.right_index, a.shown_order,
                           lab.choice, lab.strength, lab.margin, lab.winner, lab.loser,
                           lab.rationale, lab.tags, lab.seconds, lab.created_at, t.agreeing,
                           t.better)
                 .join(assignments_t, a.id == lab.assignment_id)
                 .join(tasks_t, t.id == a.task_id)
                 .order_by(lab.created_at, lab.id))
        with self.engine.connect() as conn:
            rows = [row._asdict() for row in conn.execute(query)]
        return labels_frame(rows)


LABEL_FRAME_COLUMNS = [
    "label_id", "assignment_id", "task_id", "task_kind", "category", "pair_index", "pair",
    "annotator", "prompt", "left_index", "right_index", "shown_order", "left", "right",
    "choice", "strength", "margin", "winner", "loser", "chosen", "rejected", "tie",
    "both_bad", "rationale", "tags", "seconds", "created_at", "agreeing", "better",
]


def _derive(row: dict) -> dict:
    """Add texts and flags that follow from a stored label row (with `responses`)."""
    responses = row.pop("responses")
    n = len(responses)
    i, j = pairings(n)[row["pair_index"]]
    decided = row["winner"] is not None
    return {**row, "pair": LETTERS[i] + LETTERS[j],
            "left": responses[row["left_index"]], "right": responses[row["right_index"]],
            "chosen": responses[row["winner"] if decided else row["left_index"]],
            "rejected": responses[row["loser"] if decided else row["right_index"]],
            "tie": not decided, "both_bad": row["choice"] == "both_bad",
            "tags": list(row["tags"] or [])}


def labels_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows of the label query -> the `Store.labels()` DataFrame (also empty, with columns)."""
    frame = pd.DataFrame([_derive(dict(r)) for r in rows], columns=LABEL_FRAME_COLUMNS)
    for name in ("winner", "loser", "agreeing", "better"):
        frame[name] = frame[name].astype("Int64")
    return frame


def open_store(db: str | Path | None = None, config: StoreConfig | None = None) -> Store:
    """A `Store` on `db` (SQLite path or SQLAlchemy URL; None -> env RMLAB_DB -> runs/labels.db)."""
    return Store(db, config)
