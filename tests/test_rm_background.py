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


