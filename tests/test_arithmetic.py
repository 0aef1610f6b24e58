"""labeling.arithmetic: false claims are false, corrections are right, output is deterministic."""
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from labeling.arithmetic import OPS, _columns_without_carry, false_claim, false_claims, working
from labeling.tasks import validate_rows

REPO = Path(__file__).resolve().parents[1]
CLAIM = re.compile(r"(\d+) ([+\-×]) (\d+)")


@pytest.fixture(scope="module")
def tasks() -> list[dict]:
    return false_claims(300, seed=7)


def test_claims_are_false_and_meta_is_true(tasks):
    for t in tasks:
        a, op, b = CLAIM.search(t["prompt"]).groups()
        true = OPS[op].fn(int(a), int(b))
        assert t["meta"]["true"] == true
        assert t["meta"]["claimed"] != true
        assert t["meta"]["claimed"] > 0
        assert str(t["meta"]["claimed"]) in t["prompt"]


def test_correction_states_true_value_and_agreement_does_not(tasks):
    for t in tasks:
        agree = t["responses"][t["agreeing"]]
        correct = t["responses"][1 - t["agreeing"]]
        true, claimed = t["meta"]["true"], t["meta"]["claimed"]
        a, op, b = CLAIM.search(t["prompt"]).groups()
        assert working(int(a), int(b), op) in correct  # one-line working ending "= true"
        assert re.search(rf"\b{true}\b, not {claimed}|{true} rather than {claimed}", correct)
        assert f"= {true}" not in agree and f"is {true}" not in agree
        assert re.search(rf"\b{claimed}\b", agree)


def test_responses_have_similar_length(tasks):
    # correcting / agreeing length: paired templates keep the working from dominating
    ratios = [len(t["responses"][1 - t["agreeing"]]) / len(t["responses"][t["agreeing"]]) for t in tasks]
    assert 0.8 < min(ratios) and max(ratios) < 1.3


def test_deterministic_for_seed_and_different_across_seeds():
    assert false_claims(25, seed=3) == false_claims(25, seed=3)
    assert false_claims(25, seed=3) != false_claims(25, seed=4)


def test_ids_unique_and_named_after_the_claim(tasks):
    ids = [t["id"] for t in tasks]
    assert len(set(ids)) == len(ids) == 300
    t = tasks[0]
    a, op, b = CLAIM.search(t["prompt"]).groups()
    assert t["id"] == f"arith-{a}-{OPS[op].name}-{b}-{t['meta']['claimed']}"


def test_agreeing_index_is_roughly_balanced(tasks):
    share = sum(t["agreeing"] for t in tasks) / len(tasks)
    assert 0.35 < share < 0.65


def test_schema_valid_through_task_loader(tasks):
    loaded = validate_rows([(f"generated row {i}", t) for i, t in enumerate(tasks)])
    assert len(loaded) == len(tasks)
    assert {task.kind for task in loaded} == {"agreement"}
    assert {task.category for task in loaded} == {"arithmetic"}


def test_ops_cycle_and_can_be_restricted():
    assert {t["meta"]["op"] for t in false_claims(9, seed=0)} == {"+", "-", "×"}
    assert {t["meta"]["op"] for t in false_claims(9, seed=0, ops=("×",))} == {"×"}


def test_working_examples():
    assert working(17, 3, "×") == "17 × 3 = 10 × 3 + 7 × 3 = 30 + 21 = 51"
    assert working(47, 38, "+") == "47 + 38 = 47 + 30 + 8 = 77 + 8 = 85"
    assert working(83, 38, "-") == "83 - 38 = 83 - 30 - 8 = 53 - 8 = 45"
    assert working(31, 20, "+") == "31 + 20 = 51"


def test_dropped_carry_slip_examples():
    assert _columns_without_carry(47, 38, "+") == 75
    assert _columns_without_carry(63, 65, "+") == 128  # last column written in full: no slip
    assert _columns_without_carry(52, 38, "-") == 26
    assert _columns_without_carry(17, 3, "×") == 31
    assert _columns_without_carry(24, 9, "×") == 186


def test_false_claim_rejects_the_true_value():
    with pytest.raises(ValueError, match="equals the true value"):
        false_claim(17, 3, "×", 51, random.Random(0))


def test_unknown_op_and_negative_n_are_rejected():
    with pytest.raises(ValueError, match=r"unknown ops \['/'\]; choose from"):
        false_claims(3, ops=("+", "/"))
    with pytest.raises(ValueError, match="n must be >= 0"):
        false_claims(-1)


def test_cli_writes_jsonl(tmp_path):
    out = tmp_path / "arith.jsonl"
    subprocess.run([sys.executable, "-m", "labeling.arithmetic", "--n", "5", "--seed", "2",
                    "--out", str(out)], cwd=REPO, check=True, capture_output=True)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows == false_claims(5, seed=2)
