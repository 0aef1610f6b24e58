"""Throwaway stores and tiny task sets for tests and demos (no files outside a given folder).

`temp_store("sqlite", tmp_path)` opens a store on a file under `tmp_path`;
`temp_store("postgresql", tmp_path)` opens one in a fresh schema of the database named by
env RMLAB_TEST_PG_URL and drops that schema afterwards, so parallel test runs never meet.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from labeling.store import Store, StoreConfig
from labeling.tasks import Task

PG_ENV = "RMLAB_TEST_PG_URL"
BACKENDS = ("sqlite", "postgresql")


def with_search_path(url: str, schema: str) -> str:
    """A psycopg URL whose connections create and find tables in `schema`."""
    return sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}) \
        .render_as_string(hide_password=False)


@contextmanager
def _pg_schema() -> Iterator[str]:
    base = os.environ[PG_ENV]
    schema = f"rmlab_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield with_search_path(base, schema)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@contextmanager
def temp_db(backend: str, folder: str | Path) -> Iterator[str]:
    """A database URL/path for `backend` that lives only inside the `with` block."""
    if backend == "postgresql":
        with _pg_schema() as url:
            yield url
    elif backend == "sqlite":
        yield str(Path(folder) / "labels.db")
    else:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")


@contextmanager
def temp_store(backend: str, folder: str | Path,
               config: StoreConfig | None = None) -> Iterator[Store]:
    """A fresh `Store` on `backend`, closed (and for PostgreSQL, dropped) on exit."""
    with temp_db(backend, folder) as db:
        store = Store(db, config or StoreConfig(seed=0))
        try:
            yield store
        finally:
            store.close()


def tiny_tasks(pairs: int = 4, triads: int = 1, agreement: int = 1, gold: int = 1) -> list[Task]:
    """Synthetic tasks with ids like "pair-0"; response texts name their task and index."""
    def responses(kind: str, i: int, n: int) -> tuple[str, ...]:
        return tuple(f"{kind}-{i} response {'abc'[r]}" for r in range(n))

    tasks = [Task(id=f"pair-{i}", kind="pair", prompt=f"pair prompt {i}",
                  responses=responses("pair", i, 2), category="test") for i in range(pairs)]
    tasks += [Task(id=f"triad-{i}", kind="triad", prompt=f"triad prompt {i}",
                   responses=responses("triad", i, 3)) for i in range(triads)]
    tasks += [Task(id=f"agreement-{i}", kind="agreement", prompt=f"I'm sure 2 + 2 = {5 + i}, right?",
                   responses=responses("agreement", i, 2), agreeing=i % 2) for i in range(agreement)]
    tasks += [Task(id=f"gold-{i}", kind="gold", prompt=f"gold prompt {i}",
                   responses=responses("gold", i, 2), better=0) for i in range(gold)]
    return tasks
