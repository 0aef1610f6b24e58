"""Clear failures: bad input is one `error:` line and exit status 2, never a traceback; a diverged
run saves nothing NaN; data with no preference signal is refused or warned about."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import rm.train
from labeling.cli import run_cli
from rm.checkpoint import list_checkpoints, save_rm
from rm.device import torch_threads
from rm.model import build_reward_model
from rm.testing import tiny_backbone
from test_rm_train import separable_pairs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models on a shared machine run fastest on one thread (see rm.device.torch_threads)."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    return tiny_backbone(tmp_path_factory.mktemp("bb") / "bb")


def _train_args(data, out, backbone, *more):
    return ["--data", str(data), "--out", str(out), "--backbone", backbone, "--max-length", "40",
            "--batch-size", "8", "--no-progress", *more]


def test_run_cli_turns_input_errors_into_one_line_and_keeps_tracebacks_for_bugs(capsys, monkeypatch):
    def bad_input(argv):
        raise FileNotFoundError("data.jsonl: no such file")

    def bug(argv):
        raise KeyError("oops")

    assert run_cli(bad_input, []) == 2
    assert capsys.readouterr().err == "error: data.jsonl: no such file\n"
    with pytest.raises(KeyError):
        run_cli(bug, [])
    monkeypatch.setenv("RMLAB_TRACEBACK", "1")
    with pytest.raises(FileNotFoundError):
        run_cli(bad_input, [])
    assert run_cli(lambda argv: 0, []) == 0 and run_cli(lambda argv: Path("x"), []) == 0


def test_train_on_an_empty_file_is_one_error_line_from_the_command_line(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "rm.train", "--data", str(empty), "--out", str(tmp_path / "rm")],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"error: {empty}: no rows; expected preference rows with prompt, chosen and rejected\n"


def test_zero_epochs_is_an_error_line(tmp_path, capsys, backbone):
    data = separable_pairs(tmp_path / "p.jsonl", n=8)
    assert run_cli(rm.train.main, _train_args(data, tmp_path / "rm", backbone, "--epochs", "0")) == 2
    assert capsys.readouterr().err == "error: --epochs must be >= 1 (TrainConfig.epochs), got 0\n"


def test_a_diverging_run_stops_saves_nothing_nan_and_says_why(tmp_path, capsys, backbone):
    data = separable_pairs(tmp_path / "p.jsonl", n=32)
    out = tmp_path / "runs" / "rm" / "too-high"
    # MiniLM's loss turns NaN at --lr 1000; this 2-layer toy saturates there and only overflows far higher
    assert run_cli(rm.train.main, _train_args(data, out, backbone, "--lr", "1e20", "--epochs", "2")) == 2
    assert capsys.readouterr().err == (
        f"error: training diverged: the loss became nan at step 2 of 8 (epoch 1) with --lr 1e+20; nothing was saved "
        f"to {out} (no evaluated epoch before it to keep). Lower --lr (the default is 0.0001), keep --max-grad-norm "
        "on, or raise --warmup-ratio\n")
    assert not (out / "rmlab_config.json").exists() and list_checkpoints(tmp_path / "runs") == []


def test_divergence_after_an_evaluated_epoch_keeps_that_epoch(tmp_path, capsys, backbone, monkeypatch):
    real, calls = rm.train.bt_loss, []

    def nan_in_epoch_two(*args, **kwargs):  # 24 training pairs / 8 = 3 steps per epoch
        calls.append(1)
        loss = real(*args, **kwargs)
        return loss * float("nan") if len(calls) > 3 else loss

    monkeypatch.setattr(rm.train, "bt_loss", nan_in_epoch_two)
    data = separable_pairs(tmp_path / "p.jsonl", n=32)
    out = tmp_path / "runs" / "rm" / "kept"
    assert run_cli(rm.train.main, _train_args(data, out, backbone, "--epochs", "3", "--eval-fraction", "0.25")) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("error: training diverged: the loss became nan at step 4 of 9 (epoch 2) with --lr 0.0001; "
                          "kept the weights of epoch 1 (eval accuracy ")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["diverged"] == {"step": 4, "total_steps": 9, "epoch": 2, "loss": "nan"}
    assert metrics["best_epoch"] == 1 and list_checkpoints(tmp_path / "runs") == [("kept", str(out))]


def test_all_ties_are_refused_and_a_single_pair_is_warned_about(tmp_path, capsys, backbone):
    ties = tmp_path / "ties.jsonl"
    ties.write_text("".join(json.dumps({"prompt": f"p{i}", "chosen": "a", "rejected": "b", "tie": True}) + "\n"
                            for i in range(12)))
    assert run_cli(rm.train.main, _train_args(ties, tmp_path / "rm", backbone)) == 2
    assert capsys.readouterr().err == (
        "error: training data: all 11 pairs are ties (no response preferred), so a reward model has nothing to "
        "learn; label which response is better in some pairs\n")  # 1 of the 12 is held out
    one = separable_pairs(tmp_path / "one.jsonl", n=1)
    assert run_cli(rm.train.main, _train_args(one, tmp_path / "one", backbone)) == 0
    assert "warning: training data: only 1 pair(s) with a winner; the model will learn little" in capsys.readouterr().err
    assert (tmp_path / "one" / "rmlab_config.json").is_file()


def test_analysis_pointed_at_a_folder_above_the_checkpoint_says_did_you_mean(tmp_path, capsys, backbone):
    from analysis.sycophancy import main as sycophancy_main

    model = build_reward_model(backbone, pooling="mean")
    save_rm(model, model.tokenizer, tmp_path / "capstone" / "biased" / "rm")
    folder = tmp_path / "capstone" / "biased"
    assert run_cli(sycophancy_main, ["--rm", str(folder), "--out", str(tmp_path / "report.json")]) == 2
    assert capsys.readouterr().err == (f"error: {folder} is not a reward-model checkpoint (no rmlab_config.json or "
                                       f"config.json); did you mean {folder}/rm?\n")
