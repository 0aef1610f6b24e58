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
  gives its slot up (it expires) the next time anyone is served new work (a late submit
  still stores the label when a slot is free, else it is refused);
- gold tasks are attention checks: one is due after every `gold_every - 1` other
  assignments, and by default every annotator may label every gold task (no cap);
- left/right order is drawn at random per assignment and recorded (`shown_order`, e.g.
  "ba" = response b on the left);
- two pairings of one triad are never served back to back; pairings of triads an annotator
  has started come first, and new triads are started while other tasks remain to space
  them, so triads get completed. If the only work left is another pairing of the task just
  served, `next_assignment` returns None (that pairing stays for other annotators).

How work is found: the `pairings` table holds one row per task pairing with the number of
slots it holds, kept by database triggers (so any writer keeps it right, and `Store()`
repairs it on open). `next_assignment` reads a row of counts and each pool's first open
pairing along an index (`_Queries.survey`, `_Queries.picks`): a few rows, however many tasks.

Listeners: `store.listeners` holds callables `(event, payload)` run after a write commits:
("tasks", [Task, ...]) for newly imported tasks and ("assignment", id) whenever an
assignment is created or changes state (labelled, skipped, undone, expired). A listener that
raises is logged and does not undo the write (labeling.hub_sync uses this).

Labels: `choice` is one of CHOICES, `strength` 1|2|3 = slightly|clearly|much better, stored
as `margin` = MARGINS[strength] for left/right and 0.0 for tie/both_bad. The winning and
losing response indices are stored too, so everything downstream is order-independent.

Crowd safety (see README, "Security and data safety"):
- every text and name is held to `labeling.limits` (tasks at import, rationale and tags at
  submit); a refused call writes nothing;
- a label is `fast` when its time on task is under `min_seconds` (derived when read, so the
  dashboard and the export agree); a submit is refused with `RateLimited` when the annotator
  already stored `rate_limit` labels in the last `rate_window` seconds, counted in the
  database, so the limit holds across processes and servers;
- invites: `create_invite(name)` returns a secret token once and stores only its SHA-256;
  `verify_invite(token)` gives the name back (or None), `list_invites`, `revoke_invite`.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import random
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from labeling.limits import MAX_TOKEN_CHARS, check_name, check_text, clip
from labeling.tasks import KINDS, LETTERS, Task, pairings, validate_row
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
RETRYABLE_SQLSTATES = {"40P01", "40001"}  # PostgreSQL: deadlock detected, serialization failure


def _env_number(name: str, default: float, parse: Callable[[str], float] = int) -> float:
    """env `name` read by `parse` (int or float), else `default`; a fix-it error otherwise."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse(raw)
    except ValueError:
        what = "an integer" if parse is int else "a number"
        raise ValueError(f"{name}={raw!r} is not {what}; set e.g. {name}={default:g}") from None


RATE_ENV = "RMLAB_RATE_LIMIT"
DEFAULT_RATE = (30, 60.0)  # at most 30 labels a minute: 2 s each, faster than anyone reads


def parse_rate(raw: str | None) -> tuple[int, float]:
    """RMLAB_RATE_LIMIT text -> (labels, window seconds): "30/60", "30" (per 60 s), "off" or
    "0" (no limit), None or "" (the default, 30/60)."""
    if raw is None or not raw.strip():
        return DEFAULT_RATE
    text = raw.strip().lower()
    if text in ("off", "0"):
        return 0, DEFAULT_RATE[1]
    count, _, window = text.partition("/")
    try:
        n, seconds = int(count), float(window or DEFAULT_RATE[1])
    except ValueError:
        n, seconds = -1, 0.0
    if n < 0 or not seconds > 0 or not math.isfinite(seconds):
        raise ValueError(f"{RATE_ENV}={raw!r}: expected LABELS/SECONDS such as 30/60, or off")
    return n, seconds


class RateLimited(ValueError):
    """A submit refused because the annotator labelled faster than a person reads.

    `retry_after` is how many seconds until the submit would be accepted."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class StoreConfig:
    """How work is handed out. Not stored in the database: each process sets its own."""

    labels_per_task: int = field(
        default_factory=lambda: _env_number("RMLAB_LABELS_PER_TASK", 3),
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
    min_seconds: float = field(
        default_factory=lambda: _env_number("RMLAB_MIN_SECONDS", 3.0, float),
        metadata={"help": "A label with less time on task than this is flagged `fast` in the "
                          "dashboard and the export (default: env RMLAB_MIN_SECONDS, else 3)."})
    rate_limit: int = field(
        default_factory=lambda: parse_rate(os.environ.get(RATE_ENV))[0],
        metadata={"help": "Most labels one annotator may store in `rate_window` seconds; a "
                          "submit beyond it raises RateLimited; 0 = no limit (default: env "
                          "RMLAB_RATE_LIMIT as LABELS/SECONDS, e.g. 30/60, or off; else 30/60)."})
    rate_window: float = field(
        default_factory=lambda: parse_rate(os.environ.get(RATE_ENV))[1],
        metadata={"help": "The sliding window of `rate_limit`, in seconds."})
    seed: int | None = field(
        default=None, metadata={"help": "Seed for order and left/right draws (None: OS entropy)."})

    def __post_init__(self) -> None:
        if self.labels_per_task < 1:
            raise ValueError(f"labels_per_task must be >= 1, got {self.labels_per_task}")
        if self.gold_every < 1:
            raise ValueError(f"gold_every must be >= 1, got {self.gold_every}")
        if self.gold_labels_per_task is not None and self.gold_labels_per_task < 1:
            raise ValueError("gold_labels_per_task must be >= 1 or None (no cap)")
        if not self.min_seconds >= 0:
            raise ValueError(f"min_seconds must be >= 0, got {self.min_seconds}")
        if self.rate_limit < 0 or not self.rate_window > 0:
            raise ValueError(f"rate_limit must be >= 0 (0: off) and rate_window > 0, got "
                             f"{self.rate_limit} per {self.rate_window} s")

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
# covering: candidate queries read id, kind, seq without touching the (long) texts
sa.Index("ix_task_order", tasks_t.c.seq, tasks_t.c.id, tasks_t.c.kind)

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
# the rate limit counts an annotator's recent labels; undo finds the latest
sa.Index("ix_assignment_finished", assignments_t.c.annotator, assignments_t.c.status,
         assignments_t.c.finished_at)
sa.Index("ix_assignment_lease", assignments_t.c.status, assignments_t.c.served_at)

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

# One row per task pairing, kept by database triggers (PAIRING_TRIGGERS) whoever writes:
# `held` = its assignments that hold a slot (served or done). The store picks work from here
# with index range scans instead of counting assignments per call.
pairings_t = sa.Table(
    "pairings", metadata,
    sa.Column("task_id", sa.String(200), sa.ForeignKey("tasks.id"), primary_key=True),
    sa.Column("pair_index", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("shuffle", sa.BigInteger, nullable=False),  # a fixed pseudo-random order
    sa.Column("held", sa.Integer, nullable=False),
)
sa.Index("ix_pairing_fill", pairings_t.c.held, pairings_t.c.shuffle, pairings_t.c.kind)
sa.Index("ix_pairing_kind", pairings_t.c.kind, pairings_t.c.shuffle, pairings_t.c.held)

invites_t = sa.Table(
    "invites", metadata,
    sa.Column("name", sa.String(200), primary_key=True),  # the annotator it signs in
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),  # sha256 hex
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("revoked_at", sa.String(32)),
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


# ---------------------------------------------------------------- pairings upkeep

SHUFFLE_MOD = 2 ** 32
SHUFFLE_MUL = 2654435761  # odd, so (x * SHUFFLE_MUL) mod 2^32 is a bijection: shuffles never tie
N_PAIRINGS = {kind: len(pairings(n)) for kind, (n, _) in KINDS.items()}
_N_CASE = " ".join(f"WHEN '{kind}' THEN {n}" for kind, n in N_PAIRINGS.items())
_INDEXES = " UNION ALL ".join(f"SELECT {i} AS i" for i in range(max(N_PAIRINGS.values())))
_HOLDS = "(" + ", ".join(f"'{status}'" for status in LIVE) + ")"


def _shuffle_sql(seq: str, index: str) -> str:
    return f"((({seq}) * {max(N_PAIRINGS.values())} + {index}) * {SHUFFLE_MUL}) % {SHUFFLE_MOD}"


# dialect -> DDL that keeps `pairings` in step with tasks and assignments
PAIRING_TRIGGERS: dict[str, list[str]] = {
    "sqlite": [
        f"""CREATE TRIGGER IF NOT EXISTS rmlab_task_pairings AFTER INSERT ON tasks BEGIN
            INSERT INTO pairings (task_id, pair_index, kind, shuffle, held)
            SELECT NEW.id, i, NEW.kind, {_shuffle_sql("NEW.seq", "i")}, 0 FROM ({_INDEXES})
            WHERE i < CASE NEW.kind {_N_CASE} ELSE 0 END; END""",
        f"""CREATE TRIGGER IF NOT EXISTS rmlab_hold_insert AFTER INSERT ON assignments
            WHEN NEW.status IN {_HOLDS} BEGIN
            UPDATE pairings SET held = held + 1
            WHERE task_id = NEW.task_id AND pair_index = NEW.pair_index; END""",
        f"""CREATE TRIGGER IF NOT EXISTS rmlab_hold_update AFTER UPDATE OF status ON assignments
            WHEN (NEW.status IN {_HOLDS}) != (OLD.status IN {_HOLDS}) BEGIN
            UPDATE pairings SET held = held + (CASE WHEN NEW.status IN {_HOLDS} THEN 1 ELSE -1 END)
            WHERE task_id = NEW.task_id AND pair_index = NEW.pair_index; END""",
        f"""CREATE TRIGGER IF NOT EXISTS rmlab_hold_delete AFTER DELETE ON assignments
            WHEN OLD.status IN {_HOLDS} BEGIN
            UPDATE pairings SET held = held - 1
            WHERE task_id = OLD.task_id AND pair_index = OLD.pair_index; END""",
    ],
    "postgresql": [
        f"""CREATE OR REPLACE FUNCTION rmlab_task_pairings() RETURNS trigger AS $$ BEGIN
            INSERT INTO pairings (task_id, pair_index, kind, shuffle, held)
            SELECT NEW.id, i, NEW.kind, {_shuffle_sql("NEW.seq::bigint", "i")}, 0 FROM ({_INDEXES}) AS ix
            WHERE i < CASE NEW.kind {_N_CASE} ELSE 0 END;
            RETURN NULL; END $$ LANGUAGE plpgsql""",
        """CREATE OR REPLACE TRIGGER rmlab_task_pairings AFTER INSERT ON tasks
            FOR EACH ROW EXECUTE FUNCTION rmlab_task_pairings()""",
        f"""CREATE OR REPLACE FUNCTION rmlab_hold() RETURNS trigger AS $$ BEGIN
            IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status IN {_HOLDS} THEN
              UPDATE pairings SET held = held - 1
              WHERE task_id = OLD.task_id AND pair_index = OLD.pair_index;
            END IF;
            IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.status IN {_HOLDS} THEN
              UPDATE pairings SET held = held + 1
              WHERE task_id = NEW.task_id AND pair_index = NEW.pair_index;
            END IF;
            RETURN NULL; END $$ LANGUAGE plpgsql""",
        """CREATE OR REPLACE TRIGGER rmlab_hold AFTER INSERT OR UPDATE OF status OR DELETE
            ON assignments FOR EACH ROW EXECUTE FUNCTION rmlab_hold()""",
    ],
}

# Repair at open: add missing pairings (a store from before this table) and correct any
# `held` that disagrees with the assignments (a write made without the triggers).
_REPAIR_SQL = [
    f"""INSERT INTO pairings (task_id, pair_index, kind, shuffle, held)
        SELECT t.id, ix.i, t.kind, {_shuffle_sql("t.seq", "ix.i")}, 0
        FROM tasks t JOIN ({_INDEXES}) AS ix ON ix.i < CASE t.kind {_N_CASE} ELSE 0 END
        WHERE NOT EXISTS (SELECT 1 FROM pairings p WHERE p.task_id = t.id AND p.pair_index = ix.i)""",
    f"""UPDATE pairings SET held = (SELECT count(*) FROM assignments a
            WHERE a.task_id = pairings.task_id AND a.pair_index = pairings.pair_index
            AND a.status IN {_HOLDS})
        WHERE held != (SELECT count(*) FROM assignments a
            WHERE a.task_id = pairings.task_id AND a.pair_index = pairings.pair_index
            AND a.status IN {_HOLDS})""",
]
# dialect -> statements that keep other writers out while the repair counts
REPAIR_LOCK: dict[str, str] = {"postgresql": "LOCK TABLE assignments IN SHARE ROW EXCLUSIVE MODE"}


# dialect -> per-annotator lock; SQLite needs none (BEGIN IMMEDIATE serialises writers)
LOCKS: dict[str, Callable[[sa.Connection, str], None]] = {"postgresql": _pg_lock}
ENGINE_SETUP: dict[str, Callable[[sa.Engine], None]] = {"sqlite": _sqlite_setup}


class _Conflict(Exception):
    """A concurrent writer changed what this transaction read; retry it."""


def _check_annotator(annotator: str) -> str:
    return check_name(annotator, "annotator")


MAX_ID = 2 ** 63 - 1  # the largest id either database can hold


def _check_id(assignment_id) -> int:
    """An assignment id as int: an int, a whole float (JSON numbers) or a string of digits."""
    value = assignment_id
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() \
            and len(value.strip()) <= 19:
        value = int(value.strip())
    if type(value) is not int or not 0 <= value <= MAX_ID:
        raise ValueError(f"assignment_id must be the integer id of an assignment, got "
                         f"{clip(assignment_id)}")
    return value


def _check_seconds(seconds) -> float | None:
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) \
            or not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"seconds must be a number >= 0, got {clip(seconds)}")
    return float(seconds)


def token_digest(token: str) -> str:
    """SHA-256 hex of an invite token: what the store keeps instead of the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


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


@dataclass(frozen=True)
class Invite:
    """An annotator's invite (never its token): `active` until revoked; `labels` stored so far."""

    name: str
    created_at: str
    revoked_at: str | None
    labels: int

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _firsts(members: dict[str, list[sa.Select]]) -> sa.Select:
    """For each named pool, the first row of the first of its member queries that has one,
    in one statement: rows (pool, rank, ...columns), at most one per member. Each member runs
    with LIMIT 1 along an index, so the statement reads a handful of rows."""
    ranked = [sa.select(m.limit(1).subquery().c, sa.literal(pool).label("pool"),
                        sa.literal_column(str(rank)).label("rank"))
              for pool, queries in members.items() for rank, m in enumerate(queries)]
    both = sa.union_all(*ranked).subquery("firsts")
    return sa.select(both).order_by(both.c.pool, both.c.rank)


class _Queries:
    """The statements on the labeling path, built once per store (caps come from its config)
    with bind parameters, so each call only binds values and SQLAlchemy reuses compiled SQL.

    Parameters: annotator; last (the task served last, "" for none); start (a random point in
    shuffle order); cutoff (lease ISO time); limit; assignment_id.
    """

    def __init__(self, config: StoreConfig):
        a, p = assignments_t.c, pairings_t.c
        annotator, last = sa.bindparam("annotator"), sa.bindparam("last")
        start = sa.bindparam("start", type_=sa.BigInteger)
        x = assignments_t.alias("x")
        had = sa.exists().where(x.c.annotator == annotator, x.c.task_id == p.task_id,
                                x.c.pair_index == p.pair_index)

        def below(kinds):  # a pairing of one of `kinds` with a free slot
            return sa.or_(*(p.kind == kind if config.cap(kind) is None
                            else sa.and_(p.kind == kind, p.held < config.cap(kind)) for kind in kinds))

        def open_(kinds, level: int | None = None) -> sa.Select:
            """Pairings below their cap (or holding `level` slots, below every cap given) that
            this annotator never had, not of the task served last."""
            fill = below(kinds) if level is None else sa.and_(p.kind.in_(kinds), p.held == level)
            return (sa.select(p.task_id, p.kind, p.pair_index, p.held, p.shuffle)
                    .where(fill, ~had, p.task_id != last))

        def random_open(kinds, levels=(None,)) -> list[sa.Select]:  # fullest level first
            return [open_(kinds, level).where(part).order_by(p.shuffle)
                    for level in levels for part in (p.shuffle >= start, p.shuffle < start)]

        def count(query) -> sa.ScalarSelect:
            return sa.select(sa.func.count()).select_from(query.subquery()).scalar_subquery()

        spacers = [kind for kind in KINDS if kind not in ("triad", "gold")]
        levels = range(config.labels_per_task - 1, -1, -1)
        started = sa.select(a.task_id).where(a.annotator == annotator)
        # pool -> its member queries; `picks(pools)` reads the pools `_choose` may serve from
        self.pools: dict[str, list[sa.Select]] = {
            "gold": random_open(["gold"]),
            "resumed": [open_(["triad"]).where(p.task_id.in_(started))
                        .order_by((p.shuffle + start) % SHUFFLE_MOD)],
            "fullest": random_open(["triad", *spacers], levels),
            "fullest_triads": random_open(["triad"], levels),
        }
        self._picks: dict[tuple[str, ...], sa.Select] = {}
        on_pairing = sa.and_(p.task_id == a.task_id, p.pair_index == a.pair_index)
        mine = assignments_t.alias("mine")
        last_gold = (sa.select(sa.func.max(mine.c.id)).join(tasks_t, tasks_t.c.id == mine.c.task_id)
                     .where(mine.c.annotator == annotator, tasks_t.c.kind == "gold").scalar_subquery())
        below_cap = p.held < config.labels_per_task
        self.survey = sa.select(  # one row of counts, read before choosing
            sa.select(a.task_id).where(a.annotator == annotator).order_by(a.id.desc()).limit(1)
            .scalar_subquery().label("last"),
            sa.select(sa.func.count()).select_from(assignments_t)
            .where(a.annotator == annotator, a.id > sa.func.coalesce(last_gold, 0))
            .scalar_subquery().label("since_gold"),
            sa.exists().where(a.status == "served", a.served_at < sa.bindparam("cutoff")).label("lapsed"),
            # >= the unstarted triads still open to this annotator
            sa.select(sa.func.count(sa.distinct(p.task_id))).where(p.kind == "triad", below_cap)
            .scalar_subquery().label("triad_bound"),
            # spacer tasks open to this annotator: those with a free slot - the annotator's
            # (the task served last is the annotator's, so it is not counted)
            (count(sa.select(p.task_id).where(p.kind.in_(spacers), below_cap))
             - count(sa.select(a.id).join(pairings_t, on_pairing)
                     .where(a.annotator == annotator, p.kind.in_(spacers), below_cap))).label("spacers"))
        self.open_triads = sa.select(count(open_(["triad"]).with_only_columns(p.task_id).distinct()))
        # open pairings = those with a free slot - the annotator's among them (no probe per pairing)
        self.below_all = sa.select(sa.func.count()).select_from(pairings_t).where(below(KINDS))
        self.mine_below = (sa.select(sa.func.count()).select_from(assignments_t.join(pairings_t, on_pairing))
                           .where(a.annotator == annotator, below(KINDS)))
        self.expire = (sa.update(assignments_t)
                       .where(a.status == "served", a.served_at < sa.bindparam("cutoff"))
                       .values(status="expired").returning(a.id))
        shown = sa.select(*_ASSIGNMENT_COLUMNS).join(tasks_t, tasks_t.c.id == a.task_id)
        self.outstanding = (shown.where(a.annotator == annotator, a.status == "served")
                            .order_by(a.served_at.desc(), a.id.desc()).limit(1))
        self.assignment = shown.where(a.id == sa.bindparam("assignment_id"))
        self.assignment_locked = (  # with its label's id, if it has one
            sa.select(*_ASSIGNMENT_COLUMNS, labels_t.c.id.label("label_id"))
            .join(tasks_t, tasks_t.c.id == a.task_id)
            .outerjoin(labels_t, labels_t.c.assignment_id == a.id)
            .where(a.id == sa.bindparam("assignment_id")).with_for_update(of=assignments_t))
        # writes and small reads of one label, with bind parameters named apart from columns
        self.insert_assignment = sa.insert(assignments_t).returning(a.id)
        self.insert_label = sa.insert(labels_t).returning(labels_t.c.id)
        self.reserve = (sa.update(assignments_t).where(a.id == sa.bindparam("assignment_id"))
                        .values(served_at=sa.bindparam("now")))
        self.finish = (sa.update(assignments_t).where(a.id == sa.bindparam("assignment_id"))
                       .values(status="done", finished_at=sa.bindparam("now")))
        self.held_slots = sa.select(a.id, a.slot, a.status, a.served_at).where(
            a.task_id == sa.bindparam("task_id"), a.pair_index == sa.bindparam("index"),
            a.status.in_(LIVE))
        self.recent = (sa.select(a.finished_at)
                       .where(a.annotator == annotator, a.status == "done", a.finished_at >= sa.bindparam("since"))
                       .order_by(a.finished_at.desc()).limit(sa.bindparam("limit")))
        self.statuses = (sa.select(a.status, sa.func.count()).where(a.annotator == annotator)
                         .group_by(a.status))
        self.label = (sa.select(*_LABEL_COLUMNS)
                      .join(assignments_t, assignments_t.c.id == labels_t.c.assignment_id)
                      .where(labels_t.c.assignment_id == sa.bindparam("assignment_id")))

    def picks(self, pools: tuple[str, ...]) -> sa.Select:
        """Each of `pools`' first open pairing, in one statement (built once per combination)."""
        if pools not in self._picks:
            self._picks[pools] = _firsts({pool: self.pools[pool] for pool in pools})
        return self._picks[pools]


class Store:
    """A label store on one database. See the module docstring for the assignment rules.

    Public API (the app and CLIs use only these): `import_tasks`, `tasks`, `ensure_seeded`,
    `next_assignment`, `assignment`, `submit`, `submit_and_next`, `skip`, `undo_last`,
    `progress`, `labels`, `create_invite`, `verify_invite`, `list_invites`, `revoke_invite`,
    `close`. Refusals: ValueError (bad input; `RateLimited` is one), PermissionError
    (someone else's assignment), LookupError (unknown id or invite).
    """

    def __init__(self, db: str | Path | None = None, config: StoreConfig | None = None):
        self.url = resolve_url(db)
        self.config = config or StoreConfig()
        self._rng = random.Random(self.config.seed)
        self._q = _Queries(self.config)
        self.listeners: list[Listener] = []
        try:
            self.engine = sa.create_engine(self.url)
        except (sa.exc.ArgumentError, ImportError) as e:
            raise ValueError(f"{clip(str(db), 200)} is not a database the store can open ({e}); "
                             "give a SQLite path or a URL like postgresql+psycopg://user:pw@host/db") from None
        self.dialect = self.engine.dialect.name
        # SQLite serialises writers anyway; queueing them on a lock in this process spares them
        # busy_timeout's sleep-and-retry (which left p95 at 10x p50 with 8 concurrent submits)
        self._writers = threading.Lock() if self.dialect == "sqlite" else nullcontext()
        database = self.engine.url.database
        if self.dialect == "sqlite" and database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        ENGINE_SETUP.get(self.dialect, lambda engine: None)(self.engine)
        try:
            self._create_schema()
        except sa.exc.OperationalError as e:
            self.engine.dispose()
            raise OSError(f"cannot open the label store {self.safe_url}: {e.orig}") from None

    def _create_schema(self) -> None:
        """Tables and indexes, adding any that an older store lacks (e.g. invites)."""
        metadata.create_all(self.engine)
        with self._write() as conn:
            self._lock(conn, "rmlab:schema")
            for table in metadata.sorted_tables:
                for index in table.indexes:
                    conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))
            for ddl in PAIRING_TRIGGERS[self.dialect]:
                conn.execute(sa.text(ddl))  # text(): SQLAlchemy escapes % for psycopg
            if self.dialect in REPAIR_LOCK:
                conn.execute(sa.text(REPAIR_LOCK[self.dialect]))
            for sql in _REPAIR_SQL:
                conn.execute(sa.text(sql))
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
        with self._writers, self.engine.connect() as conn:
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
        """Run `fn` in a write transaction, again when a concurrent writer won a race (a unique
        slot taken, or PostgreSQL ending one of two deadlocked or serialisation-failed writers)."""
        for _ in range(attempts - 1):
            try:
                with self._write() as conn:
                    return fn(conn)
            except (IntegrityError, _Conflict):
                continue
            except OperationalError as err:
                if getattr(err.orig, "sqlstate", None) not in RETRYABLE_SQLSTATES:
                    raise
        with self._write() as conn:
            return fn(conn)

    def _lock(self, conn: sa.Connection, annotator: str) -> None:
        LOCKS.get(self.dialect, lambda c, k: None)(conn, f"rmlab:{annotator}")

    # ------------------------------------------------------------ tasks

    def import_tasks(self, tasks: Iterable[Task]) -> int:
        """Add tasks in one transaction; returns how many were new.

        Re-importing a task with the same id and content is a no-op. The same id with
        different content raises ValueError and imports nothing; so does a task that breaks
        the schema or `labeling.limits` (checked as `load_tasks` checks a file's rows).
        """
        unique: dict[str, Task] = {}
        errors: list[str] = []
        for task in tasks:
            if not isinstance(task, Task):
                raise TypeError(f"expected Task, got {type(task).__name__}; use load_tasks() first")
            validate_row(task.to_record(), f"task {clip(task.id)}", errors)
            if unique.setdefault(task.id, task) != task:
                raise ValueError(f"two different tasks share the id {clip(task.id)}")
        if errors:
            raise ValueError(f"{len(errors)} problem(s) in the tasks, nothing imported:\n"
                             + "\n".join(errors))
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
        assignment_id = _check_id(assignment_id)
        with self.engine.connect() as conn:
            return _assignment(self._assignment_row(conn, assignment_id))

    def _assignment_row(self, conn: sa.Connection, assignment_id: int, lock: bool = False):
        query = self._q.assignment_locked if lock else self._q.assignment
        row = conn.execute(query, {"assignment_id": assignment_id}).first()
        if row is None:
            raise LookupError(f"no assignment with id {assignment_id}")
        return row

    def _next(self, conn: sa.Connection, annotator: str, locked: bool = False) -> Assignment | None:
        if not locked:
            self._lock(conn, annotator)
        now = _now()
        outstanding = conn.execute(self._q.outstanding, {"annotator": annotator}).first()
        if outstanding is not None:  # re-serve: the clock for time on task and the lease restart
            conn.execute(self._q.reserve, {"assignment_id": outstanding.id, "now": _iso(now)})
            return _assignment(outstanding)
        pick = self._choose(conn, annotator, now)
        if pick is None:
            return None
        kind = pick.kind
        pair = pairings(KINDS[kind][0])[pick.pair_index]
        slot = self._free_slot(conn, pick.task_id, pick.pair_index, self.config.cap(kind), now)
        left, right = pair if self._rng.random() < 0.5 else pair[::-1]
        row = {"task_id": pick.task_id, "pair_index": pick.pair_index, "annotator": annotator,
               "left_index": left, "right_index": right,
               "shown_order": LETTERS[left] + LETTERS[right], "slot": slot, "status": "served",
               "created_at": _iso(now), "served_at": _iso(now), "finished_at": None}
        new_id = conn.execute(self._q.insert_assignment, row).scalar_one()
        self._emit(conn, "assignment", new_id)
        return self._assignment_by_id(conn, new_id)

    def _assignment_by_id(self, conn: sa.Connection, assignment_id: int) -> Assignment:
        return _assignment(self._assignment_row(conn, assignment_id))

    def _expire_lapsed(self, conn: sa.Connection, now: datetime) -> None:
        """Give up the slots of leases that lapsed (served, untouched for lease_seconds)."""
        cutoff = _iso(now - timedelta(seconds=self.config.lease_seconds))
        for assignment_id in conn.execute(self._q.expire, {"cutoff": cutoff}).scalars().all():
            self._emit(conn, "assignment", assignment_id)

    def _choose(self, conn: sa.Connection, annotator: str, now: datetime):
        """Gold when due; else a started triad; else the fullest pairing (ties at random).
        Returns a row (task_id, kind, pair_index, ...) or None. Two statements: `survey`
        (counts) and `picks` (each pool's candidate).

        Never the task served last, so a triad's pairings are not back to back. A triad's
        later pairings need other tasks between them, so new triads are started first
        once the other tasks left are no more than two per unstarted triad (plus two).
        """
        q = self._q
        cutoff = _iso(now - timedelta(seconds=self.config.lease_seconds))
        survey = conn.execute(q.survey, {"annotator": annotator, "cutoff": cutoff}).one()
        if survey.lapsed:
            self._expire_lapsed(conn, now)
        params = {"annotator": annotator, "last": survey.last or "",
                  "start": self._rng.randrange(SHUFFLE_MOD)}
        triads_first = False
        if survey.triad_bound and survey.spacers <= 2 * survey.triad_bound + 2:
            triads = conn.execute(q.open_triads, params).scalar()
            triads_first = triads > 0 and survey.spacers <= 2 * triads + 2
        gold_due = survey.since_gold >= self.config.gold_every - 1
        pools = (*(("gold",) if gold_due else ()), "resumed",
                 "fullest_triads" if triads_first else "fullest")
        picks: dict[str, object] = {}
        for row in conn.execute(q.picks(pools), params):
            picks.setdefault(row.pool, row)  # rows come by rank: the fullest level first
        pick = next((picks[pool] for pool in pools if pool in picks), None)
        if pick is None and not gold_due:  # nothing else left: gold even when not due
            pick = conn.execute(q.picks(("gold",)), params).first()
        return pick

    def _free_slot(self, conn: sa.Connection, task_id: str, pair_index: int,
                   cap: int | None, now: datetime) -> int | None:
        """The lowest free slot of a pairing, expiring a lapsed lease if all are held."""
        if cap is None:
            return None
        a = assignments_t.c
        held = conn.execute(self._q.held_slots, {"task_id": task_id, "index": pair_index}).all()
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
        the assignment was (last) served. Raises ValueError for bad input (naming the field)
        or a skipped assignment, RateLimited (a ValueError) when the annotator already stored
        `rate_limit` labels in the last `rate_window` seconds, PermissionError when the
        assignment belongs to someone else, LookupError for an unknown id.
        """
        label = self._label_args(assignment_id, annotator, choice, strength, rationale, tags, seconds)
        return self._retrying(lambda conn: self._submit(conn, *label))

    def submit_and_next(self, assignment_id: int, annotator: str, choice: str, strength: int = 2,
                        rationale: str = "", tags: Iterable[str] = (),
                        seconds: float | None = None) -> tuple[Label, Assignment | None]:
        """`submit`, then `next_assignment`, in one transaction: one commit (one fsync) per
        label instead of two. Returns (the stored label, the next assignment or None); a
        refused submit raises as `submit` does and serves nothing."""
        label = self._label_args(assignment_id, annotator, choice, strength, rationale, tags, seconds)

        def run(conn: sa.Connection):
            stored = self._submit(conn, *label)
            return stored, self._next(conn, label[1], locked=True)

        return self._retrying(run)

    @staticmethod
    def _label_args(assignment_id, annotator, choice, strength, rationale, tags, seconds) -> tuple:
        """Checked arguments of a submit, in `_submit`'s order; ValueError names the field."""
        if rationale is None:
            rationale = ""
        return (_check_id(assignment_id), _check_annotator(annotator), choice, strength,
                check_text(rationale, "rationale"), check_label(choice, strength, tags),
                _check_seconds(seconds))

    def _submit(self, conn, assignment_id, annotator, choice, strength, rationale, tags,
                seconds) -> Label:
        self._lock(conn, annotator)
        row = self._assignment_row(conn, assignment_id, lock=True)
        if row.annotator != annotator:
            raise PermissionError(f"assignment {assignment_id} belongs to another annotator")
        if row.label_id is not None:  # labelled already: the same label again
            return self._label_for(conn, assignment_id)
        if row.status == "skipped":
            raise ValueError(f"assignment {assignment_id} was skipped; undo_last() to label it")
        now = _now()
        self._check_rate(conn, annotator, now)
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
            conn.execute(self._q.finish, {"assignment_id": assignment_id, "now": finish["finished_at"]})
        winner, loser = CHOICES[choice](row.left_index, row.right_index)
        values = {"assignment_id": assignment_id, "choice": choice, "strength": strength,
                  "margin": MARGINS[strength] if winner is not None else 0.0, "winner": winner,
                  "loser": loser, "rationale": rationale, "tags": list(tags),
                  "seconds": float(seconds), "created_at": _iso(now)}
        label_id = conn.execute(self._q.insert_label, values).scalar_one()
        self._emit(conn, "assignment", assignment_id)
        return Label(id=label_id, task_id=row.task_id, pair_index=row.pair_index,
                     annotator=annotator, shown_order=row.shown_order,
                     **{**values, "tags": tuple(tags)})

    def _check_rate(self, conn: sa.Connection, annotator: str, now: datetime) -> None:
        """RateLimited when `annotator` stored `rate_limit` labels in the last `rate_window`
        seconds. Counted in the database, inside the annotator's write lock, so it holds
        across processes and servers."""
        limit, window = self.config.rate_limit, self.config.rate_window
        if not limit:
            return
        since = _iso(now - timedelta(seconds=window))
        recent = conn.execute(self._q.recent, {"annotator": annotator, "since": since,
                                               "limit": limit}).scalars().all()
        if len(recent) < limit:
            return
        wait = (datetime.fromisoformat(recent[-1]) + timedelta(seconds=window) - now).total_seconds()
        raise RateLimited(f"{limit} labels in the last {window:g} seconds is faster than anyone "
                          f"reads; wait {math.ceil(max(wait, 0.0))} s, then submit again "
                          f"(the limit is {RATE_ENV}={limit}/{window:g})", retry_after=max(wait, 0.0))

    def _label_for(self, conn: sa.Connection, assignment_id: int) -> Label | None:
        row = conn.execute(self._q.label, {"assignment_id": assignment_id}).first()
        return None if row is None else _label(row)

    def skip(self, assignment_id: int, annotator: str) -> None:
        """Give an outstanding assignment up: its slot frees, and this annotator never gets
        that pairing again unless they `undo_last()`. Skipping twice is a no-op."""
        assignment_id, annotator = _check_id(assignment_id), _check_annotator(annotator)

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
            counts = Counter(dict(conn.execute(self._q.statuses, {"annotator": annotator}).all()))
            open_ = (conn.execute(self._q.below_all).scalar()
                     - conn.execute(self._q.mine_below, {"annotator": annotator}).scalar())
        remaining = counts["served"] + open_
        return {"annotator": annotator, "done": counts["done"], "skipped": counts["skipped"],
                "outstanding": counts["served"], "remaining": remaining,
                "total": counts["done"] + counts["skipped"] + remaining}

    # ------------------------------------------------------------ invites

    def create_invite(self, name: str) -> str:
        """A new secret token that signs in as `name`; returned once, stored only as its
        SHA-256. Inviting a name again replaces its token (the old one stops working) and
        lifts a revocation."""
        name = check_name(name)
        token = secrets.token_urlsafe(32)  # 256 bits
        values = {"token_hash": token_digest(token), "created_at": _iso(_now()), "revoked_at": None}

        def run(conn: sa.Connection) -> None:
            self._lock(conn, f"invite:{name}")
            updated = conn.execute(sa.update(invites_t).where(invites_t.c.name == name).values(**values))
            if updated.rowcount == 0:
                conn.execute(sa.insert(invites_t).values(name=name, **values))

        self._retrying(run)
        return token

    def verify_invite(self, token: str) -> str | None:
        """The name an active invite's token signs in as, else None (unknown, revoked, or
        not a token). Looks the hash up, then compares in constant time."""
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS or not token.isascii():
            return None
        digest = token_digest(token)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(invites_t.c.name, invites_t.c.token_hash)
                               .where(invites_t.c.token_hash == digest,
                                      invites_t.c.revoked_at.is_(None))).first()
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            return None
        return row.name

    def list_invites(self) -> list[Invite]:
        """Every invite (active and revoked) by name, with the labels stored under that name."""
        a, i = assignments_t.c, invites_t.c
        labels = (sa.select(sa.func.count()).where(a.annotator == i.name, a.status == "done")
                  .scalar_subquery())
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(i.name, i.created_at, i.revoked_at, labels.label("labels"))
                                .order_by(i.name)).all()
        return [Invite(r.name, r.created_at, r.revoked_at, r.labels) for r in rows]

    def revoke_invite(self, name: str) -> None:
        """Stop `name`'s invite from signing in (its labels stay). LookupError when there is
        no invite for `name`; revoking twice is a no-op."""
        name = check_name(name)

        def run(conn: sa.Connection) -> None:
            found = conn.execute(sa.select(invites_t.c.revoked_at).where(invites_t.c.name == name)).first()
            if found is None:
                raise LookupError(f"no invite for {name!r}; `python -m labeling invites` lists them")
            if found.revoked_at is None:
                conn.execute(sa.update(invites_t).where(invites_t.c.name == name)
                             .values(revoked_at=_iso(_now())))

        self._retrying(run)

    # ------------------------------------------------------------ reading labels

    def labels(self) -> pd.DataFrame:
        """One row per label, oldest first, with its task and what was shown.

        Columns: label_id, assignment_id, task_id, task_kind, category, pair_index, pair
        (e.g. "bc": the pairing's response letters in canonical order), annotator, prompt,
        left_index, right_index, shown_order, left, right, choice, strength, margin,
        winner, loser (response indices, <NA> for tie/both_bad), chosen, rejected (winner
        and loser texts; for tie/both_bad the left and right texts), tie (no response
        won: choice tie or both_bad, so a trainer never reads both_bad as a win), both_bad,
        rationale, tags, seconds, fast (time on task under `min_seconds`), created_at,
        agreeing, better.
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
        return labels_frame(rows, self.config.min_seconds)


LABEL_FRAME_COLUMNS = [
    "label_id", "assignment_id", "task_id", "task_kind", "category", "pair_index", "pair",
    "annotator", "prompt", "left_index", "right_index", "shown_order", "left", "right",
    "choice", "strength", "margin", "winner", "loser", "chosen", "rejected", "tie",
    "both_bad", "rationale", "tags", "seconds", "fast", "created_at", "agreeing", "better",
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


def labels_frame(rows: list[dict], min_seconds: float) -> pd.DataFrame:
    """Rows of the label query -> the `Store.labels()` DataFrame (also empty, with columns).

    `fast`: time on task under `min_seconds` (FastChat drops votes cast that quickly)."""
    frame = pd.DataFrame([_derive(dict(r)) for r in rows], columns=LABEL_FRAME_COLUMNS)
    for name in ("winner", "loser", "agreeing", "better"):
        frame[name] = frame[name].astype("Int64")
    frame["seconds"] = frame["seconds"].astype(float)
    frame["fast"] = (frame["seconds"] < min_seconds).astype(bool)  # NaN (unknown) is not fast
    return frame


def open_store(db: str | Path | None = None, config: StoreConfig | None = None) -> Store:
    """A `Store` on `db` (SQLite path or SQLAlchemy URL; None -> env RMLAB_DB -> runs/labels.db)."""
    return Store(db, config)
