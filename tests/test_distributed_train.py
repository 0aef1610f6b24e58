"""`accelerate launch` with 2 CPU processes (gloo) trains what one process trains.

A tiny BERT, 33 training pairs (so the last global batch of 8 has 1 pair and one process gets
none), 2 epochs, fp32. Tolerance, stated once: curves, metrics and parameters agree to
rtol 1e-5 / atol 1e-5. Two parameters are exempt: the reward head's bias and the last
LayerNorm's bias move every reward by one constant, which the Bradley-Terry loss cannot see, so
their gradient is 0 in exact arithmetic and Adam amplifies rounding noise into them. The
rewards' differences, which is all a reward model is used for, agree all the same.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from app_support import free_port
from rm.testing import tiny_backbone
from rm.train import TrainConfig, shard, train

ROOT = Path(__file__).resolve().parents[1]
ACCELERATE = str(Path(sys.executable).parent / "accelerate")  # the CLI installed with the package
RTOL = ATOL = 1e-5
SHIFT_ONLY = {"score.bias", "backbone.encoder.layer.1.output.LayerNorm.bias"}
WORDS = "good bad help yes no the a answer question right wrong safe kind rude".split()


def test_shard_splits_every_batch_and_weights_average_to_one():
    assert shard([7, 8, 9], 0, 2) == ([7, 8], 4 / 3)
    assert shard([7, 8, 9], 1, 2) == ([9], 2 / 3)
    assert shard([7], 1, 2) == ([7], 0.0)  # no pair left: the first one, weighted 0
    assert shard([5, 6], 0, 1) == ([5, 6], 1.0)
    idx = list(range(10, 21))
    parts = [shard(idx, rank, 4) for rank in range(4)]
    assert [i for mine, _ in parts for i in mine] == idx
    assert sum(w for _, w in parts) == pytest.approx(4)  # DDP divides by the world size


def write_pairs(path: Path, n: int, seed: int, tie_every: int = 0) -> str:
    rng = np.random.default_rng(seed)

    def text(lo, hi):
        return " ".join(rng.choice(WORDS, size=rng.integers(lo, hi)))

    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"prompt": text(2, 12), "chosen": "good " + text(1, 20),
                                "rejected": "bad " + text(1, 20), "tie": bool(tie_every and i % tie_every == 0)}) + "\n")
    return str(path)


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return {k: v for f in sorted(folder.glob("*.safetensors")) for k, v in load_file(f).items()}


def curves(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "curves.jsonl").read_text().splitlines()]


def test_two_cpu_processes_match_one(tmp_path):
    config = TrainConfig(data=write_pairs(tmp_path / "train.jsonl", 33, seed=0, tie_every=11),
                         eval_data=write_pairs(tmp_path / "eval.jsonl", 12, seed=1),
                         backbone=tiny_backbone(tmp_path / "backbone"), out=str(tmp_path / "one"),
                         batch_size=8, epochs=2, lr=1e-3, precision="fp32", progress=False, num_threads=1,
                         attn_implementation="eager")  # SDPA's CPU kernels round differently per batch shape
    train(config)
    args = [f"--{k.replace('_', '-')}={v}" for k, v in
            {"data": config.data, "eval_data": config.eval_data, "backbone": config.backbone,
             "out": tmp_path / "two", "batch_size": 8, "epochs": 2, "lr": 1e-3, "precision": "fp32",
             "num_threads": 1, "attn_implementation": "eager"}.items()] + ["--no-progress"]
    run = subprocess.run([ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2",
                          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                          "--main_process_port", str(free_port()), "-m", "rm.train", *args],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    # only the main process prints
    assert run.stdout.split() == [str(tmp_path / "two")]
    assert run.stderr.count("epoch 1: train acc") == run.stderr.count("epoch 2: train acc") == 1

    one, two = tmp_path / "one", tmp_path / "two"
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert (m1["num_processes"], m2["num_processes"]) == (1, 2)
    # each process trained on its slice: per epoch 4 batches of 8 split 4 + 4, then 1 + 0
    assert m1["pairs_per_process"] == [66] and m2["pairs_per_process"] == [34, 32]
    assert m1["steps"] == m2["steps"] == 10  # same global batches, same number of optimiser steps
    for key in ("accuracy", "log_loss", "reward_gap", "temperature"):
        assert m2[key] == pytest.approx(m1[key], rel=RTOL, abs=ATOL), key
    c1, c2 = curves(one), curves(two)
    assert len(c1) == len(c2) == 12
    for a, b in zip(c1, c2):
        for key in ("loss", "accuracy", "reward_gap", "grad_norm", "lr", "eval_accuracy", "eval_loss"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=RTOL, abs=ATOL), (a["step"], key)
    w1, w2 = weights(one), weights(two)
    assert w1.keys() == w2.keys()
    for name in w1.keys() - SHIFT_ONLY:
        torch.testing.assert_close(w2[name], w1[name], rtol=RTOL, atol=ATOL, msg=name)
    start = load_file(Path(config.backbone) / "model.safetensors")["encoder.layer.0.attention.self.query.weight"]
    assert (w1["backbone.encoder.layer.0.attention.self.query.weight"] - start).abs().max() > 1e-3  # it trained


CONFIGS = {"multi_gpu.yaml": "MULTI_GPU", "deepspeed_zero2.yaml": "DEEPSPEED", "deepspeed_zero3.yaml": "DEEPSPEED",
           "fsdp.yaml": "FSDP"}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_example_accelerate_configs_are_what_accelerate_launch_reads(name, monkeypatch):
    """docs/accelerate/*.yaml go through `accelerate launch`'s own parsing into the environment its
    processes get; the FSDP one also builds accelerate's FSDP plugin (DeepSpeed's needs deepspeed)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    args = launch_command_parser().parse_args(["--config_file", str(ROOT / "docs" / "accelerate" / name), "-m", "rm.train"])
    args, defaults, _ = _validate_launch_command(args)
    assert defaults.distributed_type.name == CONFIGS[name]
    assert (args.num_processes, args.mixed_precision) == (2, "no")  # precision is rm.train's --precision
    if args.use_deepspeed:
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
        env = prepare_deepspeed_cmd_env(args)[1]
        assert env["ACCELERATE_DEEPSPEED_ZERO_STAGE"] == name[-6]
        assert env["ACCELERATE_GRADIENT_ACCUMULATION_STEPS"] == "1"  # one optimiser step per global batch
    else:
        env = prepare_multi_gpu_env(args)
    if args.use_fsdp:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        plugin = FullyShardedDataParallelPlugin()
        assert (plugin.fsdp_version, plugin.state_dict_type.name) == (2, "FULL_STATE_DICT")
