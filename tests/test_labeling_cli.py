"""python -m labeling: import (all or nothing), export, stats --json, seed, --db / RMLAB_DB."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labeling import seed
from labeling.__main__ import main
from labeling.store import Store
from labeling.testing import tiny_tasks

ROOT = Path(__file__).resolve().parents[1]


def write_tasks(path, tasks):
    path.write_text("".join(json.dumps(t.to_record()) + "\n" for t in tasks), encoding="utf-8")
    return path


def label_everything(db, annotators=("ann", "bob")):
    with Store(db) as store:
        for name in annotators:
            while (a := store.next_assignment(name)) is not None:
                store.submit(a.id, name, "left")


def test_import_then_reimport_adds_nothing(tmp_path, capsys):
    db, src = tmp_path / "l.db", write_tasks(tmp_path / "t.jsonl", tiny_tasks())
    assert main(["import", str(src), "--db", str(db)]) == 0
    assert main(["import", str(src), "--db", str(db)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("imported 7 new task(s) (0 already present) from")
    assert out[1].startswith("imported 0 new task(s) (7 already present) from")
    with Store(db) as store:
        assert len(store.tasks()) == 7


def test_bad_file_imports_nothing_and_names_line_and_field(tmp_path, capsys):
    db = tmp_path / "l.db"
    src = write_tasks(tmp_path / "t.jsonl", tiny_tasks(pairs=2, triads=0, agreement=0, gold=0))
    with src.open("a") as f:
        f.write('{"kind": "gold", "prompt": "p", "responses": ["a", "b"]}\n')
    assert main(["import", str(src), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: 1 problem(s) in {src}, nothing imported:\n"
                   "t.jsonl line 3, field 'better': is required for kind 'gold'\n")
    with Store(db) as store:
        assert store.tasks() == []


def test_export_formats(tmp_path, capsys):
    db = tmp_path / "l.db"
    main(["import", str(write_tasks(tmp_path / "t.jsonl", tiny_tasks())), "--db", str(db)])
    label_everything(db)
    assert main(["export", "--out", str(tmp_path / "hf"), "--db", str(db)]) == 0
    assert (tmp_path / "hf" / "state.json").is_file()
    assert main(["export", "--out", str(tmp_path / "j"), "--format", "jsonl",
                 "--aggregate", "majority", "--db", str(db)]) == 0
    rows = [json.loads(line) for line in (tmp_path / "j" / "preferences.jsonl").open()]
    assert len(rows) == 4 + 3 + 1 + 1 and all(r["n_labels"] == 2 for r in rows if r["task_kind"] != "gold")
    config = json.loads((tmp_path / "j" / "export_config.json").read_text())
    assert (config["format"], config["aggregate"], config["rows"]) == ("jsonl", "majority", 9)
    with pytest.raises(SystemExit):
        main(["export", "--out", str(tmp_path / "x"), "--format", "csv", "--db", str(db)])
    assert "invalid choice: 'csv'" in capsys.readouterr().err


def test_stats_json(tmp_path, capsys):
    db = tmp_path / "l.db"
    main(["import", str(write_tasks(tmp_path / "t.jsonl", tiny_tasks())), "--db", str(db)])
    label_everything(db)
    capsys.readouterr()
    assert main(["stats", "--json", "--db", str(db)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["labels"], out["annotators"]) == (2 * 9, 2)  # 4 pairs + 3 triad pairings + 2, twice
    assert main(["stats", "--db", str(db)]) == 0
    assert "position_bias" in capsys.readouterr().out


def test_seed_imports_only_into_an_empty_store(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(seed, "SEED_DIR", tmp_path)
    write_tasks(tmp_path / "gold.jsonl", tiny_tasks(pairs=0, triads=0, agreement=0, gold=2))
    db = str(tmp_path / "l.db")
    assert main(["seed", "--db", db]) == 0 and main(["seed", "--db", db]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"imported 2 seed task(s) from {tmp_path}",
                   f"sqlite:///{tmp_path / 'l.db'} already has tasks; nothing imported"]


def test_module_entry_point_reads_rmlab_db(tmp_path):
    src = write_tasks(tmp_path / "t.jsonl", tiny_tasks(pairs=1, triads=0, agreement=0, gold=0))
    env = {**os.environ, "RMLAB_DB": str(tmp_path / "env.db")}
    done = subprocess.run([sys.executable, "-m", "labeling", "import", str(src)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"into sqlite:///{tmp_path / 'env.db'}" in done.stdout
    with Store(tmp_path / "env.db") as store:
        assert [t.id for t in store.tasks()] == ["pair-0"]
