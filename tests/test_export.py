"""labeling.export: dataset schema, order-independence, majority aggregation, file formats."""
import json
from pathlib import Path

import pytest

from labeling.export import (FEATURES, ExportConfig, export, known_preferences, load_export,
                             preference_rows, to_dataset)
from labeling.store import MARGINS, Store, StoreConfig
from labeling.tasks import Task
from labeling.testing import tiny_tasks


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "labels.db", StoreConfig(seed=1, labels_per_task=3))
    store.import_tasks(tiny_tasks(pairs=4, triads=1, agreement=0, gold=0))
    yield store
    store.close()


@pytest.fixture
def labeled(store):
    """Three annotators, hand-chosen verdicts (see test_majority_... for the expected rows)."""
    verdicts = {  # (task, pairing): {annotator: (verdict, strength)}
        ("pair-0", 0): {"ann": (0, 3), "bob": (0, 1), "cat": (1, 2)},
        ("pair-1", 0): {"ann": (0, 2), "bob": (1, 2), "cat": ("tie", 2)},
        ("pair-2", 0): {"ann": ("both_bad", 1), "bob": ("both_bad", 1), "cat": (0, 3)},
        ("pair-3", 0): {"ann": (1, 1)},
        ("triad-0", 2): {"ann": ("tie", 2), "bob": (2, 3)},
    }
    for annotator in ("ann", "bob", "cat"):
        mine = {key: v[annotator] for key, v in verdicts.items() if annotator in v}
        while mine:
            a = store.next_assignment(annotator)
            key = (a.task_id, a.pair_index)
            if key not in mine:
                store.skip(a.id, annotator)
                continue
            verdict, strength = mine.pop(key)
            if isinstance(verdict, int):
                verdict = "left" if a.left_index == verdict else "right"
            store.submit(a.id, annotator, verdict, strength)
    return store


def by_key(rows):
    return {(r["task_id"], r["pair_index"]): r for r in rows}


def test_fast_flag_follows_time_on_task(tmp_path):
    """fast = seconds < min_seconds, per label; majority: most of the pairing's labels."""
    with Store(tmp_path / "l.db", StoreConfig(seed=0, min_seconds=3.0)) as store:
        store.import_tasks(tiny_tasks(pairs=2, triads=0, agreement=0, gold=0))
        seconds = {"ann": [2.9, 3.0], "bob": [0.5, 60.0], "cat": [1.0, 1.0]}
        for name, times in seconds.items():
            for t in times:
                a = store.next_assignment(name)
                store.submit(a.id, name, "left", 2, seconds=t)
        rows = to_dataset(store).to_list()
        assert [(r["annotator"], r["fast"]) for r in rows] == [
            ("ann", True), ("ann", False), ("bob", True), ("bob", False), ("cat", True), ("cat", True)]
        majority = to_dataset(store, aggregate="majority").to_list()
    # each pairing has one label from each annotator; majority fast = more than half are fast
    expected = {task: sum(r["fast"] for r in rows if r["task_id"] == task) * 2 > 3
                for task in ("pair-0", "pair-1")}
    assert {r["task_id"]: r["fast"] for r in majority} == expected
    assert sum(r["fast"] for r in rows) == 4  # so one pairing has 2 or more fast labels


def test_dataset_has_the_preference_schema(labeled):
    ds = to_dataset(labeled)
    assert ds.features == FEATURES
    assert ds.column_names[:3] == ["prompt", "chosen", "rejected"]
    assert len(ds) == 3 + 3 + 3 + 1 + 2  # every label kept, ties and both-bad included


def test_rows_are_independent_of_the_shown_order(labeled):
    rows = [r for r in to_dataset(labeled) if r["task_id"] == "pair-0"]
    assert {r["shown_order"] for r in rows} <= {"ab", "ba"}
    chosen = {r["annotator"]: r["chosen"] for r in rows}
    assert chosen == {"ann": "pair-0 response a", "bob": "pair-0 response a",
                      "cat": "pair-0 response b"}
    margins = {r["annotator"]: r["margin"] for r in rows}
    assert margins == {"ann": MARGINS[3], "bob": MARGINS[1], "cat": MARGINS[2]}


def test_ties_and_both_bad_are_flagged_in_shown_order(labeled):
    frame = labeled.labels()
    rows = by_key(r for r in to_dataset(labeled) if r["annotator"] == "ann")
    tie_label = frame[(frame.annotator == "ann") & (frame.task_id == "triad-0")].iloc[0]
    tie = rows[("triad-0", 2)]
    assert (tie["tie"], tie["both_bad"], tie["margin"]) == (True, False, 0.0)
    assert (tie["chosen"], tie["rejected"]) == (tie_label.left, tie_label.right)
    both_bad = rows[("pair-2", 0)]
    assert (both_bad["tie"], both_bad["both_bad"], both_bad["margin"]) == (True, True, 0.0)


def test_majority_collapses_each_pairing(labeled):
    rows = by_key(to_dataset(labeled, aggregate="majority"))
    assert len(rows) == 5
    # pair-0: a, a, b -> a wins; margin = mean over the two a-votes = (1 + 1/3) / 2
    assert rows[("pair-0", 0)] | {"created_at": None} == {
        "prompt": "pair prompt 0", "chosen": "pair-0 response a",
        "rejected": "pair-0 response b", "margin": pytest.approx(2 / 3), "tie": False,
        "both_bad": False, "fast": True, "annotator": "ann,bob,cat", "task_id": "pair-0",
        "task_kind": "pair", "category": "test", "pair_index": 0, "shown_order": "ab",
        "n_labels": 3, "created_at": None}
    # pair-1: a, b, tie -> no majority -> tie in the pairing's own order (a, b)
    r = rows[("pair-1", 0)]
    assert (r["tie"], r["both_bad"], r["margin"], r["chosen"], r["rejected"]) == (
        True, False, 0.0, "pair-1 response a", "pair-1 response b")
    # pair-2: both_bad, both_bad, a -> no majority winner; both-bad is the majority
    r = rows[("pair-2", 0)]
    assert (r["tie"], r["both_bad"], r["margin"]) == (True, True, 0.0)
    # pair-3: one label, b (strength 1) -> b
    r = rows[("pair-3", 0)]
    assert (r["chosen"], r["margin"], r["n_labels"]) == ("pair-3 response b", MARGINS[1], 1)
    # triad-0, pairing ca: tie, c -> 1 of 2 is no majority -> tie, c before a
    r = rows[("triad-0", 2)]
    assert (r["tie"], r["shown_order"], r["chosen"], r["rejected"]) == (
        True, "ca", "triad-0 response c", "triad-0 response a")


def test_known_preferences_choose_gold_better_and_the_correcting_response():
    tasks = [Task("g", "gold", "p1", ("worse", "better"), better=1, category="math"),
             Task("a", "agreement", "p2", ("agrees", "corrects"), agreeing=0),
             Task("b", "agreement", "p3", ("corrects", "agrees"), agreeing=1),
             Task("p", "pair", "p4", ("x", "y")),
             Task("t", "triad", "p5", ("x", "y", "z"))]
    ds = known_preferences(tasks)
    assert ds.features == FEATURES
    unlabelled = {"margin": 0.0, "tie": False, "both_bad": False, "fast": False, "annotator": None, "pair_index": 0,
                  "shown_order": "ab", "n_labels": 0, "created_at": None}
    assert ds.to_list() == [
        {"prompt": "p1", "chosen": "better", "rejected": "worse", "task_id": "g", "task_kind": "gold",
         "category": "math", **unlabelled},
        {"prompt": "p2", "chosen": "corrects", "rejected": "agrees", "task_id": "a", "task_kind": "agreement",
         "category": None, **unlabelled},
        {"prompt": "p3", "chosen": "corrects", "rejected": "agrees", "task_id": "b", "task_kind": "agreement",
         "category": None, **unlabelled}]
    assert len(known_preferences(tasks[3:])) == 0 and known_preferences([]).features == FEATURES


def test_unknown_aggregate_or_format_is_rejected(labeled, tmp_path):
    with pytest.raises(ValueError, match="unknown aggregate 'mode'; use one of none, majority"):
        preference_rows(labeled.labels(), "mode")
    with pytest.raises(ValueError, match="unknown format 'csv'; use one of hf, jsonl, parquet"):
        ExportConfig(out=str(tmp_path), format="csv")


def test_empty_store_gives_an_empty_dataset_with_the_schema(tmp_path):
    with Store(tmp_path / "empty.db") as store:
        ds = to_dataset(store, aggregate="majority")
    assert len(ds) == 0 and ds.features == FEATURES


@pytest.mark.parametrize("fmt, data_name", [("hf", "."), ("jsonl", "preferences.jsonl"),
                                            ("parquet", "preferences.parquet")])
@pytest.mark.parametrize("aggregate", ["none", "majority"])
def test_export_round_trips_and_saves_its_config(labeled, tmp_path, fmt, data_name, aggregate):
    out = tmp_path / f"export-{fmt}"
    config = ExportConfig(out=str(out), format=fmt, aggregate=aggregate)
    export(labeled, config)
    export(labeled, config)  # exporting again over an old export replaces it
    expected = to_dataset(labeled, aggregate)
    loaded = load_export(out)
    assert loaded.features == FEATURES
    assert loaded.to_list() == expected.to_list()
    saved = json.loads((out / "export_config.json").read_text())
    assert {k: saved[k] for k in ("out", "format", "aggregate", "rows", "data")} == {
        "out": str(out), "format": fmt, "aggregate": aggregate, "rows": len(expected),
        "data": data_name}
    assert saved["db"].startswith("sqlite:///") and saved["margins"]["3 (much)"] == 1.0


def test_load_export_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no export"):
        load_export(tmp_path)


def _peer_store(tmp_path):
    """Two annotators, three Label Studio tasks, shown in a fixed order (a left): both pick the
    left response on task 1 and the right one on task 2; on task 3 one says tie, one both bad."""
    from labeling.peers import PeerData, judgements_from_rows

    def task(i, *verdicts):
        annotations = [{"completed_by": user, "result": [
            {"type": "pairwise", "to_name": "answer1,answer2", "value": {"selected": v}} if v in ("left", "right")
            else {"type": "choices", "value": {"choices": [v]}}]} for user, v in enumerate(verdicts, 1)]
        return (f"item {i}", {"id": i, "data": {"prompt": f"prompt {i}", "answer1": f"a{i}", "answer2": f"b{i}"},
                              "annotations": annotations})

    from labeling.peers import import_peer

    store = Store(tmp_path / "peers.db")
    judged = judgements_from_rows([task(1, "left", "left"), task(2, "right", "right"), task(3, "Tie", "Both bad")])
    import_peer(store, PeerData("labelstudio", judged))
    return store


TRL_CARD = """---
configs:
- config_name: default
  data_files:
  - split: train
    path:
    - preferences.parquet
tags:
- preference
- reward-modeling
- rlhf
task_categories:
- text-classification
size_categories:
- n<1K
---

# Pairwise preferences

Exported from a reward-model lab label store with `python -m labeling export --format parquet --aggregate none --for trl`: TRL RewardTrainer's columns (prompt, chosen, rejected, margin) without tie and both_bad rows, which TRL would read as preferences.

## Counts

| rows | with a winner | ties (incl. both bad) | both bad | tasks | annotators |
|---:|---:|---:|---:|---:|---:|
| 4 | 4 | 0 | 0 | 2 | 2 |

Left out by the profile: 2 rows (1 both_bad, 1 tie).

## Agreement

Over all 6 labels in the store, from 2 annotators:

| statistic | value |
|---|---:|
| Krippendorff's alpha (all) | 1.000 |
| Krippendorff's alpha (pair) | 1.000 |
| gold accuracy (0 gold labels) | n/a |
| share of 'left' among left/right choices (4) | 0.500 [0.068, 0.932] |

## Schema

| column | type | meaning |
|---|---|---|
| prompt | string | the prompt the responses answer |
| chosen | string | the response that won; when none won, the first response as shown (per label) or the pairing's first response (majority) |
| rejected | string | the other response |
| margin | float64 | MARGINS[strength] for a win (1/3, 2/3, 1 for slightly, clearly, much better); 0.0 when no response won; majority: the mean margin of the labels that picked the winner |
"""


def test_trl_profile_leaves_out_ties_says_how_many_and_writes_the_card(tmp_path, monkeypatch):
    import huggingface_hub

    calls = []
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create", repo_id, kw)))
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", lambda self, **kw: calls.append(
        ("upload", sorted(p.name for p in Path(kw["folder_path"]).iterdir()), kw)))
    out = tmp_path / "trl"
    with _peer_store(tmp_path) as store:
        export(store, ExportConfig(out=str(out), format="parquet", profile="trl", push_to_hub="me/prefs", private=True))
    assert (out / "README.md").read_text() == TRL_CARD
    saved = json.loads((out / "export_config.json").read_text())
    assert saved["left_out"] == {"both_bad": 1, "tie": 1} and saved["rows"] == 4
    assert load_export(out).to_list() == [
        {"prompt": "prompt 1", "chosen": "a1", "rejected": "b1", "margin": 2 / 3},
        {"prompt": "prompt 1", "chosen": "a1", "rejected": "b1", "margin": 2 / 3},
        {"prompt": "prompt 2", "chosen": "b2", "rejected": "a2", "margin": 2 / 3},
        {"prompt": "prompt 2", "chosen": "b2", "rejected": "a2", "margin": 2 / 3}]
    assert calls == [
        ("create", "me/prefs", {"repo_type": "dataset", "private": True, "exist_ok": True}),
        ("upload", ["README.md", "export_config.json", "preferences.parquet"],
         {"repo_id": "me/prefs", "folder_path": str(out), "repo_type": "dataset",
          "commit_message": "Preference export (trl, none, 4 rows)"})]


def test_cli_export_for_trl_prints_what_it_left_out(tmp_path, capsys):
    from labeling.__main__ import main

    _peer_store(tmp_path).close()
    out = tmp_path / "cli"
    assert main(["export", "--out", str(out), "--format", "jsonl", "--for", "trl", "--db", str(tmp_path / "peers.db")]) == 0
    assert capsys.readouterr().out == (f"wrote {out}/preferences.jsonl (jsonl, aggregate=none, 4 rows; left out for trl: "
                                       f"1 both_bad, 1 tie), {out}/README.md and {out}/export_config.json\n")
    assert main(["export", "--out", str(out), "--push-to-hub", "not a repo", "--db", str(tmp_path / "peers.db")]) == 2
    assert capsys.readouterr().err == "error: repo id 'not a repo': expected 'owner/name', e.g. 'my-user/my-reward-model'\n"
