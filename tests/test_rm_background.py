"""rm.background: safe run names, run configs from named options, training data files, the
training curves plot, and training in a worker thread with a stop flag."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from rm.background import TrainingRun, plot_training, run_config, safe_name, train_in_background, write_pairs
from rm.testing import tiny_backbone


@pytest.mark.parametrize("name, expected", [("my run/2", "my-run-2"), ("../..", None), ("ok_1.v2", "ok_1.v2")])
def test_safe_name(name, expected):
    out = safe_name(name)
    assert out == expected if expected else out.startswith("rm-")


def test_plot_training_draws_members_and_eval_points():
    events = [{"event": "step", "step": s, "total_steps": 4, "loss": 1 / s, "accuracy": 0.5, "member": m}
              for m in (0, 1) for s in range(1, 5)]
    events.append({"event": "eval", "step": 4, "eval_accuracy": 0.75, "member": 0})
    fig = plot_training(events)
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == 2
    assert any(list(line.get_ydata()) == [0.75] for line in acc_ax.lines)
    assert plot_training([]) is None




def test_write_pairs_keeps_the_training_columns(tmp_path):
    pairs = pd.DataFrame({"prompt": ["p", "q"], "chosen": ["a", "b"], "rejected": ["c", "d"], "margin": [1.0, 0.5],
                          "tie": [False, True], "annotator": ["x", "y"]})
    path = write_pairs(pairs, tmp_path / "d" / "run.jsonl")
    rows = [json.loads(line) for line in open(path)]
    assert rows[1] == {"prompt": "q", "chosen": "b", "rejected": "d", "margin": 0.5, "tie": True}
    with pytest.raises(ValueError, match="only 1 preference pair"):
        write_pairs(pairs.iloc[:1], tmp_path / "one.jsonl")


def test_run_config_names_the_folder_and_checks_the_keys(tmp_path):
    config = run_config({"name": "../my run", "epochs": 3, "backbone": "", "max_pairs": 0}, tmp_path, progress=False)
    assert config.out == str(tmp_path / "rm" / "my-run") and config.epochs == 3
    assert config.backbone is None and config.max_pairs is None and config.progress is False
    (tmp_path / "rm" / "taken").mkdir(parents=True)
    with pytest.raises(ValueError, match="a checkpoint named 'taken' already exists"):
        run_config({"name": "taken"}, tmp_path)
    with pytest.raises(TypeError, match="did you mean 'lr'"):
        run_config({"learning_rate": 1e-3}, tmp_path)


def test_training_in_the_background_streams_events_and_stops(tmp_path):
    rows = [{"prompt": f"q{i}", "chosen": "good answer", "rejected": "bad answer"} for i in range(8)]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = run_config({"name": "bg", "epochs": 20, "batch_size": 2, "backbone": tiny_backbone(tmp_path / "b"),
                         "from_scratch": True, "max_length": 16}, tmp_path, data=str(data), progress=False,
                        eval_fraction=0.0)
    run = TrainingRun()
    with run.active():
        events = []
        for event in train_in_background(config, stop=lambda: run.stop):
            events.append(event)
            run.stop = event["event"] == "step" and event["step"] >= 2  # press Stop at step 2
    assert not run.running
    steps = [e for e in events if e["event"] == "step"]
    assert events[-1] == {"event": "done", "path": config.out} and 2 <= len(steps) < 80
    assert json.loads((tmp_path / "rm" / "bg" / "metrics.json").read_text())["stopped"]
