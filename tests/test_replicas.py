"""Two app processes on one PostgreSQL database, 16 annotators driven across both over HTTP.

Each annotator asks one replica for work and submits to the other (and repeats every fourth
submit on the first), concurrently with the others, until no work is left. The database must
then hold every acknowledged label exactly once, no pairing over k labels and no annotator on
one pairing twice; with 40 pairs and k = 4 that is exactly 160 labels.
Skips only when RMLAB_TEST_PG_URL is unset (`make test-postgres` sets it).
"""
from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlalchemy as sa

from app_support import ApiError, app_process, call_api
from labeling.store import Store, StoreConfig, assignments_t, labels_t
from labeling.tasks import Task
from labeling.testing import PG_ENV, temp_db

pytestmark = pytest.mark.skipif(not os.environ.get(PG_ENV), reason=f"{PG_ENV} is not set")

K, PAIRS, ANNOTATORS = 4, 40, 16


def pair_tasks(n: int) -> list[Task]:
    return [Task(id=f"pair-{i:02d}", kind="pair", prompt=f"prompt {i}",
                 responses=(f"answer {i} a", f"answer {i} b")) for i in range(n)]


def server_errors(folder) -> str:
    """The last traceback in each app log under `folder` (the API only says "the endpoint failed")."""
    tails = []
    for log in sorted(folder.glob("app*.log")):
        text = log.read_text()
        if "Traceback" in text:
            tails.append(f"--- {log.name}\n" + text[text.rindex("Traceback"):][-3000:])
    return "\n".join(tails) or "no traceback in the app logs"


def annotate(name: str, bases: tuple[str, str]) -> dict:
    """Label until no work is left: next_task on one replica, submit_label on the other."""
    served, acked, repeats = [], {}, 0
    with httpx.Client(timeout=120) as client:
        for turn in range(10 * PAIRS):
            ask, send = bases[turn % 2], bases[(turn + 1) % 2]
            task = call_api(client, ask, "next_task", name)
            if task["assignment_id"] is None:
                return {"served": served, "acked": acked, "repeats": repeats, "left": task["progress"]}
            served.append(task["assignment_id"])
            choice = "AB"[turn % 2]
            result = call_api(client, send, "submit_label", name, task["assignment_id"], choice, "clearly", "", [])
            acked[result["assignment_id"]] = result["label_id"]
            if turn % 4 == 0:  # a retried submit (say, after a timeout) on the other replica
                again = call_api(client, ask, "submit_label", name, task["assignment_id"], choice, "clearly", "", [])
                assert again["label_id"] == result["label_id"]
                repeats += 1
    raise AssertionError(f"{name} never ran out of work")


def test_two_replicas_never_overfill_repeat_lose_or_duplicate(tmp_path):
    with temp_db("postgresql", tmp_path) as url:
        store = Store(url, StoreConfig(labels_per_task=K))
        store.import_tasks(pair_tasks(PAIRS))
        env = {"RMLAB_LABELS_PER_TASK": str(K), "RMLAB_HUB_DATASET": "", "RMLAB_SIGNIN": "open"}  # typed names
        with app_process("--db", url, "--runs", str(tmp_path / "runs1"), log=tmp_path / "app1.log", env=env) as one, \
                app_process("--db", url, "--runs", str(tmp_path / "runs2"), log=tmp_path / "app2.log", env=env) as two:
            names = [f"annotator-{i:02d}" for i in range(ANNOTATORS)]
            try:
                with ThreadPoolExecutor(ANNOTATORS) as pool:
                    runs = dict(zip(names, pool.map(
                        lambda i: annotate(names[i], (one, two) if i % 2 else (two, one)), range(ANNOTATORS))))
            except ApiError as err:  # the app's own traceback says why
                raise AssertionError(f"{err}\n{server_errors(tmp_path)}") from err
        with store.engine.connect() as conn:
            rows = conn.execute(sa.select(assignments_t.c.id, assignments_t.c.task_id, assignments_t.c.annotator,
                                          assignments_t.c.status, labels_t.c.id.label("label_id"))
                                .join(labels_t, labels_t.c.assignment_id == assignments_t.c.id, isouter=True)).all()
        store.close()

    acked = {a: label for run in runs.values() for a, label in run["acked"].items()}
    stored = {r.id: r.label_id for r in rows if r.label_id is not None}
    assert stored == acked  # 0 lost, 0 duplicated, and every label is the one acknowledged
    assert len(stored) == K * PAIRS == 160
    assert sum(run["repeats"] for run in runs.values()) > 0
    per_pairing = Counter(r.task_id for r in rows if r.label_id is not None)
    assert set(per_pairing.values()) == {K}  # every pairing full, none over k
    per_annotator = Counter((r.annotator, r.task_id) for r in rows)
    assert max(per_annotator.values()) == 1  # nobody served one pairing twice
    assert {r.status for r in rows} == {"done"}  # nothing left open or expired
    for name, run in runs.items():
        assert len(run["served"]) == len(set(run["served"])) == len(run["acked"])
        assert run["left"]["remaining"] == 0
    assert sum(len(run["acked"]) for run in runs.values()) == 160
