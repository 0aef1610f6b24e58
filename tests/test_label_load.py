"""A small bench/label_load.py as a test: 8 scripted annotators label concurrently over HTTP
(repeated submits included), then the store holds every acknowledged label once and nothing
twice. No timing assertions: the speed targets live in the bench and bench/README.md."""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from app_support import app_process
from labeling.store import StoreConfig, open_store
from labeling.testing import tiny_tasks

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from label_load import check_store, closed_loop  # noqa: E402

ENV = {"RMLAB_RATE_LIMIT": "off", "RMLAB_SIGNIN": "open", "RMLAB_HUB_DATASET": ""}


def test_a_crowd_loses_and_duplicates_nothing(tmp_path):
    db = tmp_path / "labels.db"
    with open_store(db, StoreConfig(seed=0)) as store:
        store.import_tasks(tiny_tasks(pairs=300, triads=0, agreement=0, gold=0))
    with app_process("--db", str(db), "--runs", str(tmp_path / "runs"), log=tmp_path / "app.log", env=ENV) as base:
        # closed_loop's annotators assert that each repeated submit returns the same label id
        crowd = asyncio.run(closed_loop(base, 8, seconds=4, repeat=0.3, tag="crowd"))
        # without a session_hash (a bare curl call), every submit sent twice
        bare = asyncio.run(closed_loop(base, 1, seconds=2, repeat=1.0, tag="bare", sessions=False))
    acked = crowd["acked"] | bare["acked"]
    assert crowd["labels"] >= 8 and bare["labels"] >= 1  # each annotator labels at least once
    assert len({name for name, _ in acked}) == 9
    assert check_store(db, acked) == (0, 0)  # (lost, duplicated)
    with open_store(db) as store:
        labels = store.labels()
    assert dict(zip(zip(labels.annotator, labels.assignment_id), labels.label_id)) == acked
