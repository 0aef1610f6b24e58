import json

import pytest

from rm.device import torch_threads
from rm.sweep import SweepConfig, main, parse_sizes, scratch_overrides, sweep_runs
from rm.testing import tiny_backbone
from test_rm_train import separable_pairs


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models on a shared machine run fastest on one thread (see rm.device.torch_threads)."""
    with torch_threads(1):
        yield


def test_parse_sizes_and_shapes():
    assert parse_sizes("1x64, 2x128") == [(1, 64), (2, 128)]
    assert scratch_overrides(2, 32)["num_attention_heads"] == 1 and scratch_overrides(4, 256)["num_attention_heads"] == 4
    with pytest.raises(ValueError, match="LAYERSxHIDDEN"):
        parse_sizes("big")


def test_runs_share_data_and_differ_in_size():
    runs = sweep_runs(SweepConfig(data="d.jsonl", sizes="1x32,2x64", out="o"))
    assert [name for name, _ in runs] == ["scratch-1x32", "scratch-2x64", "pretrained"]
    assert {r.data for _, r in runs} == {"d.jsonl"} and [r.from_scratch for _, r in runs] == [True, True, False]


def test_cli_writes_table_plot_and_report(tmp_path, capsys):
    data = separable_pairs(tmp_path / "p.jsonl", n=40)
    table = main(["--data", str(data), "--backbone", tiny_backbone(tmp_path / "bb"), "--sizes", "1x16,2x32",
                  "--max-length", "32", "--scratch-lr", "3e-3", "--lr", "3e-3", "--out", str(tmp_path / "sweep"),
                  "--no-progress", "--json"])
    assert list(table["model"]) == ["scratch-1x16", "scratch-2x32", "pretrained"]
    assert table["non_embedding_params"].iloc[0] < table["non_embedding_params"].iloc[1]
    assert (tmp_path / "sweep" / "sweep.png").stat().st_size > 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["config"]["sizes"] == "1x16,2x32" and len(report["rows"]) == 3
