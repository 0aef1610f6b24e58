"""`kill -9` durability: app.py is SIGKILLed while annotators' requests are in flight, then
restarted on the same SQLite store; every acknowledged label is there exactly once, and a
client that retries its unacknowledged submit stores it once.

The annotators are bench/label_load.py's scripted ones (light asyncio HTTP on the
`next_task` / `submit_label` routes; a share of submits sent twice).
"""
from __future__ import annotations

import asyncio
import random
import signal
import sys
from pathlib import Path

import httpx

from app_support import app_process, app_server, call_api
from labeling.store import StoreConfig, open_store
from labeling.testing import tiny_tasks

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from label_load import Annotator  # noqa: E402

ANNOTATORS = 6
KILL_AFTER = 24  # acknowledged labels before the SIGKILL
ENV = {"RMLAB_RATE_LIMIT": "off", "RMLAB_SIGNIN": "open", "RMLAB_HUB_DATASET": ""}


async def label_until_killed(base: str, proc, kill_after: int) -> tuple[list[Annotator], int, list]:
    """Annotators label in a closed loop; once `kill_after` labels are acknowledged, the one that
    saw it SIGKILLs the server. Returns (annotators, how many were mid-request at the kill, how
    each loop ended: None or the exception that cut it off)."""
    in_flight, at_kill = set(), []
    async with httpx.AsyncClient(timeout=60) as client:
        people = [Annotator(client, base, f"ann-{i}", random.Random(i), repeat=0.3) for i in range(ANNOTATORS)]
        await asyncio.gather(*(p.start() for p in people))

        async def run(p: Annotator) -> None:
            while True:
                in_flight.add(p.name)
                more = await p.label()
                in_flight.discard(p.name)
                if not more:
                    return
                if not at_kill and sum(len(q.acked) for q in people) >= kill_after:
                    at_kill.append(len(in_flight))  # the others are suspended inside a request
                    proc.send_signal(signal.SIGKILL)

        ended = await asyncio.gather(*(run(p) for p in people), return_exceptions=True)
    return people, at_kill[0] if at_kill else 0, ended


def test_kill_9_mid_stream_keeps_every_acknowledged_label_once(tmp_path):
    db = tmp_path / "labels.db"
    with open_store(db, StoreConfig(seed=0)) as store:
        store.import_tasks(tiny_tasks(pairs=120, triads=2, agreement=0, gold=0))
    args = ("--db", str(db), "--runs", str(tmp_path / "runs"))

    with app_server(*args, log=tmp_path / "first.log", env=ENV) as (proc, base):
        people, in_flight, ended = asyncio.run(label_until_killed(base, proc, KILL_AFTER))
        assert proc.wait(timeout=30) == -signal.SIGKILL
    acked = {(p.name, a): label for p in people for a, label in p.acked.items()}
    assert len(acked) >= KILL_AFTER
    assert in_flight == ANNOTATORS - 1  # every other annotator was waiting on the server
    assert all(isinstance(e, (httpx.TransportError, RuntimeError)) for e in ended)  # cut off, not finished

    # restart on the same store; each annotator retries the submit it never saw acknowledged
    with app_process(*args, log=tmp_path / "second.log", env=ENV) as base, httpx.Client(timeout=60) as client:
        retried = {}
        for p in people:
            aid = p.task["assignment_id"]
            out = call_api(client, base, "submit_label", p.name, aid, "A", "clearly", "", [])
            retried[(p.name, aid)] = out["label_id"]
            assert out["next"]["assignment_id"] not in (None, aid)

    with open_store(db) as store:
        labels = store.labels()
    stored = labels.groupby(["annotator", "assignment_id"]).label_id.agg(list)
    assert {key: stored[key] for key in acked} == {key: [label] for key, label in acked.items()}
    assert {key: stored[key] for key in retried} == {key: [label] for key, label in retried.items()}
    assert set(stored.index) == set(acked) | set(retried)  # nothing else: no label from nowhere
    assert not labels.duplicated(["annotator", "task_id", "pair_index"]).any()
    assert labels.label_id.is_unique
