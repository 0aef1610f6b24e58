"""labeling.hub_sync: folder layout, scheduler wiring, restore from a copy of the repo, shutdown upload.

The Hub is replaced at its boundary: `FakeHub` is an `HfApi` whose create_repo, create_commit
and snapshot_download read and write a local folder laid out like the dataset repo. The real
CommitScheduler runs on top of it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
import sqlalchemy as sa
from huggingface_hub import HfApi
from huggingface_hub.errors import RepositoryNotFoundError
from huggingface_hub.hf_api import RepoUrl

from labeling import hub_sync
from labeling.store import StoreConfig, assignments_t
from labeling.testing import BACKENDS, PG_ENV, temp_store, tiny_tasks

ENV = {"RMLAB_HUB_DATASET": "someone/labels", "HF_TOKEN": "hf_test", "RMLAB_HUB_EVERY": "60"}


class FakeHub(HfApi):
    """HfApi whose network calls use `root` (a folder laid out like the repo) instead of the Hub."""

    def __init__(self, root: Path):
        super().__init__(token="hf_test")
        self.root, self.repos, self.commits = Path(root), [], []

    def create_repo(self, repo_id, *, private=None, repo_type=None, exist_ok=False, **kwargs):
        self.repos.append({"repo_id": repo_id, "private": private, "repo_type": repo_type,
                           "exist_ok": exist_ok})
        self.root.mkdir(parents=True, exist_ok=True)
        return RepoUrl(f"https://huggingface.co/datasets/{repo_id}")

    def create_commit(self, repo_id, operations, *, commit_message, repo_type=None, **kwargs):
        paths = []
        for op in operations:
            with op.as_file() as f:
                data = f.read()
            (self.root / op.path_in_repo).parent.mkdir(parents=True, exist_ok=True)
            (self.root / op.path_in_repo).write_bytes(data)
            paths.append(op.path_in_repo)
        self.commits.append({"repo_id": repo_id, "repo_type": repo_type, "paths": sorted(paths)})

    def snapshot_download(self, repo_id, *, repo_type=None, allow_patterns=None, local_dir=None, **kwargs):
        if not self.root.is_dir():
            response = httpx2.Response(404, request=httpx2.Request("GET", f"https://hub/{repo_id}"))
            raise RepositoryNotFoundError(f"{repo_id} not found", response=response)
        assert repo_type == "dataset"
        for pattern in allow_patterns:
            for path in self.root.glob(pattern):
                target = Path(local_dir) / path.relative_to(self.root)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target)
        return str(local_dir)


def backend_or_skip(backend: str) -> None:
    if backend == "postgresql" and not os.environ.get(PG_ENV):
        pytest.skip(f"{PG_ENV} is not set")


def label_some(store) -> dict:
    """Label, skip, undo and leave one task open, as three annotators; returns what was done."""
    done = {}
    for name in ("ann", "bob", "cat"):
        for _ in range(3):
            a = store.next_assignment(name)
            store.submit(a.id, name, "left", 3, rationale=f"{name} says", tags=["hedges"], seconds=1.5)
            done.setdefault(name, []).append(a.id)
    skipped = store.next_assignment("ann")
    store.skip(skipped.id, "ann")
    undone = store.next_assignment("bob")
    store.submit(undone.id, "bob", "tie", 1)
    assert store.undo_last("bob").id == undone.id  # bob's label is gone; the task is open again
    open_ = store.next_assignment("cat")
    return {"done": done, "skipped": skipped.id, "undone": undone.id, "open": open_.id}


def assignment_rows(store) -> list[dict]:
    with store.engine.connect() as conn:
        return [r._asdict() for r in conn.execute(sa.select(assignments_t).order_by(assignments_t.c.id))]


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---------------------------------------------------------------- configuration


def test_config_is_off_without_a_repo_and_reads_every_setting(tmp_path):
    assert hub_sync.HubSyncConfig.from_env(tmp_path, {}) is None
    config = hub_sync.HubSyncConfig.from_env(tmp_path, {**ENV, "RMLAB_HUB_EVERY": "0.5",
                                                       "RMLAB_HUB_PRIVATE": "false"})
    assert (config.repo_id, config.token, config.every, config.private) == ("someone/labels", "hf_test", 0.5, False)
    assert config.folder == tmp_path / "hub_sync"
    assert hub_sync.HubSyncConfig.from_env(tmp_path, {**ENV, "RMLAB_HUB_EVERY": ""}).every == 5.0


@pytest.mark.parametrize("change, message", [
    ({"HF_TOKEN": ""}, "HF_TOKEN is not"),
    ({"RMLAB_HUB_EVERY": "soon"}, "RMLAB_HUB_EVERY='soon' is not a positive number"),
    ({"RMLAB_HUB_EVERY": "0"}, "RMLAB_HUB_EVERY='0'"),
    ({"RMLAB_HUB_PRIVATE": "maybe"}, "RMLAB_HUB_PRIVATE='maybe' is not a boolean"),
])
def test_bad_settings_say_what_to_set(tmp_path, change, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        hub_sync.HubSyncConfig.from_env(tmp_path, {**ENV, **change})


def test_attach_does_nothing_without_a_repo(tmp_path):
    with temp_store("sqlite", tmp_path) as store:
        assert hub_sync.attach(store, tmp_path / "runs", env={}, api=FakeHub(tmp_path / "hub")) is None
        assert store.listeners == []
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- writing


def test_folder_layout_one_writer_per_process(tmp_path):
    runs = tmp_path / "runs"
    with temp_store("sqlite", tmp_path) as store:
        sync = hub_sync.attach(store, runs, env=ENV, api=FakeHub(tmp_path / "hub"), handle_signals=False)
        store.import_tasks(tiny_tasks())
        store.import_tasks(tiny_tasks())  # nothing new: nothing logged
        a = store.next_assignment("ann")
        store.submit(a.id, "ann", "right", 2, tags=["hedges"])
        sync.close()
    folder = runs / "hub_sync"
    assert sorted(p.relative_to(folder).parts[0] for p in folder.iterdir()) == ["README.md", "assignments", "tasks"]
    (task_shard,) = (folder / "tasks").iterdir()
    (assignment_shard,) = (folder / "assignments").iterdir()
    name = r"\d{8}T\d{6}Z-" + sync.writer_id + r"-0000\.jsonl"
    assert re.fullmatch(name, task_shard.name) and re.fullmatch(name, assignment_shard.name)
    tasks = jsonl(task_shard)
    assert [t["task"] for t in tasks] == [t.to_record() for t in tiny_tasks()]
    assert {t["writer"] for t in tasks} == {sync.writer}
    served, labelled = jsonl(assignment_shard)
    assert (served["assignment"]["id"], served["assignment"]["status"], served["label"]) == (a.id, "served", None)
    assert labelled["assignment"]["status"] == "done"
    assert (labelled["label"]["choice"], labelled["label"]["strength"], labelled["label"]["tags"]) == ("right", 2, ["hedges"])
    assert served["logged_at"] < labelled["logged_at"]
    assert "configs:" in (folder / "README.md").read_text()


def test_each_writer_has_its_own_files_and_shards_rotate(tmp_path):
    config = hub_sync.HubSyncConfig("someone/labels", tmp_path / "hub_sync", shard_bytes=200)

    class Scheduler:  # only the lock is used when writing
        import threading
        lock = threading.Lock()

    with temp_store("sqlite", tmp_path) as store:
        one, two = hub_sync.HubSync(store, config, Scheduler()), hub_sync.HubSync(store, config, Scheduler())
        for sync in (one, two):
            sync.on_event("tasks", tiny_tasks(pairs=3, triads=0, agreement=0, gold=0))
    names = sorted(p.name for p in (tmp_path / "hub_sync" / "tasks").iterdir())
    assert len(names) == 6  # 3 records of > 200 bytes each: one shard per record, per writer
    assert {n.split("-")[1] for n in names} == {one.writer_id, two.writer_id}
    assert sorted(n.split("-")[2] for n in names) == ["0000.jsonl", "0000.jsonl", "0001.jsonl",
                                                       "0001.jsonl", "0002.jsonl", "0002.jsonl"]


def test_a_failing_listener_does_not_fail_the_write(tmp_path, caplog):
    with temp_store("sqlite", tmp_path) as store:
        store.listeners.append(lambda event, payload: 1 / 0)
        assert store.import_tasks(tiny_tasks()) == len(tiny_tasks())
        assert "store listener" in caplog.text and "ZeroDivisionError" in caplog.text


def test_rolled_back_writes_are_not_logged(tmp_path):
    seen = []
    with temp_store("sqlite", tmp_path) as store:
        store.listeners.append(lambda event, payload: seen.append((event, payload)))
        store.import_tasks(tiny_tasks())
        a = store.next_assignment("ann")
        with pytest.raises(PermissionError):
            store.submit(a.id, "bob", "left")
        store.skip(a.id, "ann")
    assert [e for e, _ in seen] == ["tasks", "assignment", "assignment"]
    assert seen[1][1] == seen[2][1] == a.id


# ---------------------------------------------------------------- uploading


def test_scheduler_uploads_the_folder_to_the_dataset_repo(tmp_path):
    hub = FakeHub(tmp_path / "hub")
    env = {**ENV, "RMLAB_HUB_EVERY": "0.005"}  # every 0.3 s
    with temp_store("sqlite", tmp_path) as store:
        sync = hub_sync.attach(store, tmp_path / "runs", env=env, api=hub, handle_signals=False)
        s = sync.scheduler
        assert (s.repo_id, s.repo_type, s.every, s.folder_path) == (
            "someone/labels", "dataset", 0.005, (tmp_path / "runs" / "hub_sync").resolve())
        assert hub.repos == [{"repo_id": "someone/labels", "private": True, "repo_type": "dataset",
                              "exist_ok": True}]
        store.import_tasks(tiny_tasks())
        a = store.next_assignment("ann")
        store.submit(a.id, "ann", "left", 2)
        deadline = time.monotonic() + 30
        uploaded = []
        while time.monotonic() < deadline:  # no upload call from us: the schedule does it
            uploaded = [r for p in (tmp_path / "hub" / "assignments").glob("*.jsonl") for r in jsonl(p)]
            if any(r["label"] for r in uploaded):
                break
            time.sleep(0.1)
        sync.close()
    assert [r["assignment"]["status"] for r in uploaded] == ["served", "done"]
    assert all(c["repo_type"] == "dataset" for c in hub.commits)
    assert {p for c in hub.commits for p in c["paths"]} == {
        "README.md", f"tasks/{sync.writers['tasks'].path.name}", f"assignments/{sync.writers['assignments'].path.name}"}


def test_close_uploads_what_is_left_and_stops_logging(tmp_path):
    hub = FakeHub(tmp_path / "hub")
    with temp_store("sqlite", tmp_path) as store:
        sync = hub_sync.attach(store, tmp_path / "runs", env=ENV, api=hub, handle_signals=False)
        sync.upload()  # after the scheduler's first upload (of the card alone)
        n_commits = len(hub.commits)
        store.import_tasks(tiny_tasks())
        a = store.next_assignment("ann")
        store.submit(a.id, "ann", "left", 2)
        assert not (tmp_path / "hub" / "assignments").exists()  # every=60 minutes: nothing yet
        sync.close()
        sync.close()  # a second close is a no-op
        b = store.next_assignment("bob")
        store.submit(b.id, "bob", "left", 2)
    assert len(hub.commits) == n_commits + 1
    (shard,) = (tmp_path / "hub" / "assignments").glob("*.jsonl")
    assert [(r["assignment"]["id"], r["assignment"]["status"]) for r in jsonl(shard)] == [(a.id, "served"), (a.id, "done")]
    assert store.listeners == []


SIGTERM_SCRIPT = """
import sys, time
sys.path.insert(0, {tests!r})
from test_hub_sync import ENV, FakeHub
from labeling import hub_sync
from labeling.store import Store
from labeling.testing import tiny_tasks

store = Store({db!r})
sync = hub_sync.attach(store, {runs!r}, env=ENV, api=FakeHub({hub!r}))
sync.upload()
store.import_tasks(tiny_tasks())
a = store.next_assignment("ann")
store.submit(a.id, "ann", "left", 2)
print("ready", flush=True)
time.sleep(120)
"""


def test_sigterm_uploads_before_the_process_ends(tmp_path):
    script = SIGTERM_SCRIPT.format(tests=str(Path(__file__).parent), db=str(tmp_path / "labels.db"),
                                   runs=str(tmp_path / "runs"), hub=str(tmp_path / "hub"))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=Path(__file__).parents[1])
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        assert not (tmp_path / "hub" / "assignments").exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == -signal.SIGTERM  # terminated as before, after the upload
    finally:
        proc.kill()
    (shard,) = (tmp_path / "hub" / "assignments").glob("*.jsonl")
    assert [r["assignment"]["status"] for r in jsonl(shard)] == ["served", "done"]


# ---------------------------------------------------------------- restoring


@pytest.mark.parametrize("backend", BACKENDS)
def test_restore_from_the_repo_gives_back_the_same_store(tmp_path, backend):
    backend_or_skip(backend)
    hub = FakeHub(tmp_path / "hub")
    config = StoreConfig(labels_per_task=2, seed=0)
    with temp_store(backend, tmp_path / "a", config) as first:
        sync = hub_sync.attach(first, tmp_path / "a" / "runs", env=ENV, api=hub, handle_signals=False)
        first.import_tasks(tiny_tasks())
        did = label_some(first)
        sync.close()
        want_labels, want_rows = first.labels(), assignment_rows(first)
    (tmp_path / "b").mkdir()
    with temp_store(backend, tmp_path / "b", config) as second:  # a new machine: empty disk
        restored = hub_sync.attach(second, tmp_path / "b" / "runs", env=ENV, api=hub, handle_signals=False)
        assert [t.id for t in second.tasks()] == [t.id for t in tiny_tasks()]
        assert assignment_rows(second) == want_rows
        assert second.labels().equals(want_labels)
        assert len(want_labels) == 9
        # the rules still hold: open work comes back, skipped and labelled pairings never do
        assert second.next_assignment("cat").id == did["open"]
        assert second.next_assignment("bob").id == did["undone"]
        fresh = second.next_assignment("ann")
        assert fresh.id > max(r["id"] for r in want_rows)  # new ids continue after the restored ones
        ann_pairs = [(r["task_id"], r["pair_index"]) for r in assignment_rows(second) if r["annotator"] == "ann"]
        assert len(ann_pairs) == len(set(ann_pairs)) == 5
        # a second restore writes nothing
        again = hub_sync.restore(second, hub_sync.read_log([tmp_path / "hub"]))
        assert again == hub_sync.RestoreReport(0, 0, 0, 0, restored=False)
        assert len(second.labels()) == 9
        restored.close()


def test_restore_respects_k_after_a_restart(tmp_path):
    hub = FakeHub(tmp_path / "hub")
    config = StoreConfig(labels_per_task=2, gold_every=1000, seed=0)
    tasks = tiny_tasks(pairs=1, triads=0, agreement=0, gold=0)
    with temp_store("sqlite", tmp_path / "a", config) as first:
        sync = hub_sync.attach(first, tmp_path / "a" / "runs", env=ENV, api=hub, handle_signals=False)
        first.import_tasks(tasks)
        for name in ("ann", "bob"):
            first.submit(first.next_assignment(name).id, name, "left")
        sync.close()
    (tmp_path / "b").mkdir()
    with temp_store("sqlite", tmp_path / "b", config) as second:
        hub_sync.attach(second, tmp_path / "b" / "runs", env=ENV, api=hub, handle_signals=False).close()
        assert second.next_assignment("cat") is None  # the one pairing already has k = 2 labels
        assert second.next_assignment("ann") is None


def test_restore_reads_local_shards_too_and_never_duplicates(tmp_path):
    hub = FakeHub(tmp_path / "hub")
    runs = tmp_path / "runs"
    with temp_store("sqlite", tmp_path / "a") as first:
        sync = hub_sync.attach(first, runs, env=ENV, api=hub, handle_signals=False)
        first.import_tasks(tiny_tasks())
        label_some(first)
        sync.upload()
        a = first.next_assignment("dan")  # logged locally after the last upload
        first.submit(a.id, "dan", "right", 1)
        first.listeners.clear()  # the process dies here: no final upload
        want = first.labels()
    (tmp_path / "b").mkdir()
    with temp_store("sqlite", tmp_path / "b") as second:  # same disk, lost database
        hub_sync.attach(second, runs, env=ENV, api=hub, handle_signals=False).close()
        assert second.labels().equals(want)


def test_restore_goes_into_a_seeded_store(tmp_path):
    """Seed tasks already imported (the same ids) do not stop a restore: only assignments count."""
    hub = FakeHub(tmp_path / "hub")
    with temp_store("sqlite", tmp_path / "a") as first:
        sync = hub_sync.attach(first, tmp_path / "a" / "runs", env=ENV, api=hub, handle_signals=False)
        first.import_tasks(tiny_tasks())
        label_some(first)
        sync.close()
        want = first.labels()
    (tmp_path / "b").mkdir()
    with temp_store("sqlite", tmp_path / "b") as second:
        second.import_tasks(tiny_tasks())
        hub_sync.attach(second, tmp_path / "b" / "runs", env=ENV, api=hub, handle_signals=False).close()
        assert second.labels().drop(columns="label_id").equals(want.drop(columns="label_id"))


def test_latest_snapshot_wins_and_lapsed_slot_holders_expire():
    def row(i, status, slot, served_at, annotator):
        return {"id": i, "task_id": "t", "pair_index": 0, "annotator": annotator, "status": status,
                "slot": slot, "served_at": served_at}

    rows = hub_sync._resolve_slots([row(1, "served", 0, "2020-01-01", "ann"), row(2, "done", 0, "2020-01-02", "bob"),
                                    row(3, "served", 1, "2020-01-01", "cat"), row(4, "served", 1, "2020-01-03", "dan"),
                                    row(5, "skipped", None, "2020-01-01", "eve")])
    assert [r["status"] for r in rows] == ["expired", "done", "expired", "served", "skipped"]


def test_read_log_keeps_the_latest_snapshot_once(tmp_path):
    hub = FakeHub(tmp_path / "hub")
    with temp_store("sqlite", tmp_path) as store:
        sync = hub_sync.attach(store, tmp_path / "runs", env=ENV, api=hub, handle_signals=False)
        store.import_tasks(tiny_tasks())
        did = label_some(store)
        sync.close()
    log = hub_sync.read_log([tmp_path / "hub", tmp_path / "runs" / "hub_sync", tmp_path / "absent"])
    assert [t.id for t in log.tasks] == [t.id for t in tiny_tasks()]
    by_id = {e["assignment"]["id"]: e for e in log.assignments}
    assert len(by_id) == len(log.assignments) == 12
    assert by_id[did["undone"]]["assignment"]["status"] == "served" and by_id[did["undone"]]["label"] is None
    assert by_id[did["skipped"]]["assignment"]["status"] == "skipped"


def test_unfinished_last_line_is_skipped_and_bad_lines_are_errors(tmp_path):
    shard = tmp_path / "tasks" / "x.jsonl"
    shard.parent.mkdir()
    good = json.dumps({"logged_at": "1", "writer": "w", "task": tiny_tasks()[0].to_record()})
    shard.write_text(good + "\n" + good[:20])
    assert [t.id for t in hub_sync.read_log([tmp_path]).tasks] == ["pair-0"]
    shard.write_text(good + "\n{oops\n")
    with pytest.raises(ValueError, match=r"x\.jsonl line 2: invalid JSON"):
        hub_sync.read_log([tmp_path])
    shard.write_text(json.dumps({"logged_at": "1", "task": {"kind": "pair"}}) + "\n")
    with pytest.raises(ValueError, match=r"x\.jsonl line 1, field 'prompt': is required"):
        hub_sync.read_log([tmp_path])
