"""labeling.stats against values computed by hand (formulas in the comments)."""
import json
import math

import pandas as pd
import pytest
from scipy.stats import beta

from labeling import stats
from labeling.stats import NO_WINNER, OVERALL
from labeling.store import Store, StoreConfig
from labeling.testing import tiny_tasks



def frame(rows):
    """Minimal labels frame: (annotator, task_id, kind, pair_index, choice, winner[, extra])."""
    records = []
    for annotator, task_id, kind, pair_index, choice, winner, *extra in rows:
        records.append({"annotator": annotator, "task_id": task_id, "task_kind": kind,
                        "pair_index": pair_index, "choice": choice, "winner": winner,
                        "tie": winner is None, "both_bad": choice == "both_bad",
                        "seconds": 10.0, "fast": False, "agreeing": None, "better": None,
                        **(extra[0] if extra else {})})
    out = pd.DataFrame(records)
    for name in ("winner", "agreeing", "better"):
        out[name] = out[name].astype("Int64")
    return out


def row(table, annotator):
    return table.set_index("annotator").loc[annotator]


# ---------------------------------------------------------------- alpha

def test_alpha_matches_the_coincidence_matrix_by_hand():
    # units: u1 = [0, 0], u2 = [1, 1], u3 = [0, 1]; u4 has one label and is not pairable.
    # o_00 = 2, o_11 = 2, o_01 = o_10 = 1; n = 6, n_0 = n_1 = 3
    # D_o = 2/6, D_e = 2 * 3 * 3 / (6 * 5) = 0.6, alpha = 1 - (1/3) / 0.6 = 4/9
    labels = frame([
        ("ann", "u1", "pair", 0, "left", 0), ("bob", "u1", "pair", 0, "right", 0),
        ("ann", "u2", "pair", 0, "left", 1), ("bob", "u2", "pair", 0, "left", 1),
        ("ann", "u3", "pair", 0, "left", 0), ("bob", "u3", "pair", 0, "left", 1),
        ("cat", "u4", "pair", 0, "left", 0),
    ])
    assert stats.krippendorff_alpha(labels) == pytest.approx(4 / 9)


def test_alpha_counts_tie_and_both_bad_as_one_value():
    # u1 = [0, tie], u2 = [1, 1]: o_03 = o_30 = 1, o_11 = 2; n = 4, n_0 = 1, n_1 = 2, n_3 = 1
    # D_o = 2/4; D_e = (2*(1*2) + 2*(1*1) + 2*(2*1)) / (4*3) = 10/12; alpha = 1 - 0.5/(10/12) = 0.4
    labels = frame([
        ("ann", "u1", "pair", 0, "left", 0), ("bob", "u1", "pair", 0, "tie", None),
        ("ann", "u2", "pair", 0, "right", 1), ("bob", "u2", "pair", 0, "left", 1),
    ])
    assert stats.krippendorff_alpha(labels) == pytest.approx(0.4)
    both_bad = labels.assign(choice=labels.choice.replace("tie", "both_bad"))
    assert stats.krippendorff_alpha(both_bad) == pytest.approx(0.4)
    data, annotators, units = stats.reliability_data(labels)
    assert annotators == ["ann", "bob"] and units == [("u1", 0), ("u2", 0)]
    assert data.tolist() == [[0.0, 1.0], [NO_WINNER, 1.0]]


def test_alpha_is_nan_when_undefined():
    one_rater = frame([("ann", "u1", "pair", 0, "left", 0), ("ann", "u2", "pair", 0, "left", 1)])
    assert math.isnan(stats.krippendorff_alpha(one_rater))
    one_value = frame([("ann", "u1", "pair", 0, "left", 0), ("bob", "u1", "pair", 0, "left", 0)])
    assert math.isnan(stats.krippendorff_alpha(one_value))
    assert math.isnan(stats.krippendorff_alpha(one_rater.iloc[:0]))


def test_alpha_by_kind_separates_kinds():
    labels = frame([
        ("ann", "u1", "pair", 0, "left", 0), ("bob", "u1", "pair", 0, "left", 0),
        ("ann", "u2", "pair", 0, "left", 1), ("bob", "u2", "pair", 0, "left", 1),
        ("ann", "t1", "triad", 0, "left", 0), ("bob", "t1", "triad", 0, "left", 1),
        ("ann", "t1", "triad", 1, "left", 1), ("bob", "t1", "triad", 1, "left", 2),
    ])
    alphas = stats.alpha_by_kind(labels)
    assert alphas["pair"] == pytest.approx(1.0)
    # triad: units [0,1] and [1,2]: all disagreement; o_01=o_10=o_12=o_21=1, n=4, n_1=2
    # D_o = 1; D_e = (2*(1*2) + 2*(1*1) + 2*(2*1)) / 12 = 10/12; alpha = 1 - 12/10 = -0.2
    assert alphas["triad"] == pytest.approx(-0.2)
    assert set(alphas) == {"all", "pair", "triad"}


# ---------------------------------------------------------------- biases and quality

def test_position_bias_with_exact_binomial_ci():
    labels = frame([("ann", f"u{i}", "pair", 0, c, 0 if c != "tie" else None)
                    for i, c in enumerate(["left", "left", "left", "right", "tie"])]
                   + [("bob", "u9", "pair", 0, "right", 1)])
    table = stats.position_bias(labels)
    ann = row(table, "ann")
    assert (ann.left, ann.decisive, ann.share_left) == (3, 4, 0.75)
    # Clopper-Pearson: [Beta(0.025; k, n-k+1), Beta(0.975; k+1, n-k)]
    assert ann.ci_low == pytest.approx(beta.ppf(0.025, 3, 2))
    assert ann.ci_high == pytest.approx(beta.ppf(0.975, 4, 1))
    assert ann.p_value == pytest.approx(10 / 16)  # P(X>=3) + P(X<=1) = 5/16 + 5/16
    everyone = row(table, OVERALL)
    assert (everyone.left, everyone.decisive, everyone.share_left) == (3, 5, 0.6)
    assert list(table.annotator) == ["ann", "bob", OVERALL]


def test_gold_accuracy_counts_ties_as_wrong():
    labels = frame([
        ("ann", "g1", "gold", 0, "left", 0, {"better": 0}),
        ("ann", "g2", "gold", 0, "tie", None, {"better": 1}),
        ("bob", "g1", "gold", 0, "right", 0, {"better": 0}),
        ("bob", "p1", "pair", 0, "right", 1),
    ])
    table = stats.gold_accuracy(labels)
    assert row(table, "ann")[["gold_labels", "correct", "accuracy"]].tolist() == [2, 1, 0.5]
    assert row(table, "bob")[["gold_labels", "correct", "accuracy"]].tolist() == [1, 1, 1.0]
    assert row(table, OVERALL).accuracy == pytest.approx(2 / 3)


def test_agreement_bias_rate_per_annotator_and_overall():
    labels = frame([
        ("ann", "a1", "agreement", 0, "left", 0, {"agreeing": 0}),
        ("ann", "a2", "agreement", 0, "left", 1, {"agreeing": 1}),
        ("ann", "a3", "agreement", 0, "right", 1, {"agreeing": 0}),
        ("bob", "a1", "agreement", 0, "tie", None, {"agreeing": 0}),
        ("bob", "p1", "pair", 0, "left", 0),
    ])
    table = stats.agreement_bias(labels)
    ann, bob, everyone = (row(table, n) for n in ("ann", "bob", OVERALL))
    assert ann[["agreement_labels", "agreeing_won", "correcting_won", "no_winner"]].tolist() == [3, 2, 1, 0]
    assert ann.rate == pytest.approx(2 / 3)
    assert ann.ci_low == pytest.approx(beta.ppf(0.025, 2, 2))
    assert (bob.rate, bob.no_winner) == (0.0, 1)
    assert everyone.rate == 0.5


def test_triad_cycles():
    labels = frame([
        # ann, t1: a>b, b>c, c>a -> wins (1, 1, 1): a cycle
        ("ann", "t1", "triad", 0, "left", 0), ("ann", "t1", "triad", 1, "left", 1),
        ("ann", "t1", "triad", 2, "left", 2),
        # ann, t2: a>b, b>c, a>c -> wins (2, 1, 0): transitive
        ("ann", "t2", "triad", 0, "left", 0), ("ann", "t2", "triad", 1, "left", 1),
        ("ann", "t2", "triad", 2, "right", 0),
        # bob, t1: a tie on bc -> not completed
        ("bob", "t1", "triad", 0, "left", 0), ("bob", "t1", "triad", 1, "tie", None),
        ("bob", "t1", "triad", 2, "left", 2),
        # cat, t1: two pairings only -> not completed
        ("cat", "t1", "triad", 0, "left", 1), ("cat", "t1", "triad", 1, "left", 2),
    ])
    done = stats.completed_triads(labels)
    assert done[["annotator", "task_id", "wins", "cycle"]].values.tolist() == [
        ["ann", "t1", (1, 1, 1), True], ["ann", "t2", (2, 1, 0), False]]
    table = stats.triad_cycles(labels)
    assert row(table, "ann")[["completed_triads", "cycles", "cycle_rate"]].tolist() == [2, 1, 0.5]
    assert row(table, OVERALL)[["completed_triads", "cycles"]].tolist() == [2, 1]
    assert "bob" not in set(table.annotator)  # nobody without a completed triad


def test_counts_per_annotator_and_kind():
    labels = frame([
        ("ann", "u1", "pair", 0, "left", 0), ("ann", "t1", "triad", 0, "both_bad", None),
        ("bob", "u1", "pair", 0, "tie", None), ("bob", "t1", "triad", 1, "left", 1),
    ])
    per_annotator = stats.labels_per_annotator(labels)
    assert row(per_annotator, "ann")[["labels", "ties", "both_bad"]].tolist() == [2, 1, 1]
    assert row(per_annotator, OVERALL)[["labels", "ties", "both_bad"]].tolist() == [4, 2, 1]
    per_kind = stats.labels_per_kind(labels).set_index("task_kind")
    assert per_kind.loc["triad"][["labels", "pairings", "annotators"]].tolist() == [2, 2, 2]
    assert per_kind.loc["pair"][["labels", "pairings", "annotators"]].tolist() == [2, 1, 2]


def test_share_of_fast_labels_per_annotator():
    labels = frame([
        ("ann", "u1", "pair", 0, "left", 0, {"seconds": 1.0, "fast": True}),
        ("ann", "u2", "pair", 0, "left", 0, {"seconds": 2.0, "fast": True}),
        ("ann", "u3", "pair", 0, "left", 0),
        ("bob", "u1", "pair", 0, "tie", None),
    ])
    table = stats.labels_per_annotator(labels)
    assert row(table, "ann")[["fast", "fast_share"]].tolist() == [2, pytest.approx(2 / 3)]
    assert row(table, "bob")[["fast", "fast_share"]].tolist() == [0, 0.0]
    assert row(table, OVERALL)[["fast", "fast_share"]].tolist() == [2, 0.5]
    assert row(table, "ann").median_seconds == 2.0


# ---------------------------------------------------------------- on a real store

def test_summary_of_a_store_is_json_ready(tmp_path):
    # min_seconds far above any time on task here: every label is fast
    with Store(tmp_path / "labels.db", StoreConfig(seed=0, gold_every=2, min_seconds=1e6)) as store:
        store.import_tasks(tiny_tasks(pairs=3, triads=1, agreement=2, gold=1))
        for annotator, choice in (("ann", "left"), ("bob", "right")):
            while (a := store.next_assignment(annotator)) is not None:
                store.submit(a.id, annotator, choice)
        labels = store.labels()
    out = json.loads(json.dumps(stats.summary(labels)))
    assert (out["labels"], out["annotators"]) == (18, 2)
    by_name = {r["annotator"]: r for r in out["position_bias"]}
    assert by_name["ann"]["share_left"] == 1.0 and by_name["bob"]["share_left"] == 0.0
    assert by_name[OVERALL]["share_left"] == 0.5
    # ann always picks left, bob always right, so they agree only when the shown orders differ
    assert out["alpha"]["all"] is not None
    assert {r["annotator"] for r in out["gold_accuracy"]} == {"ann", "bob", OVERALL}
    assert [r["completed_triads"] for r in out["triads"]] == [1, 1, 2]
    assert set(out) == {"labels", "annotators", "alpha", *stats.TABLES}
    assert [(r["fast"], r["fast_share"]) for r in out["per_annotator"]] == [(9, 1.0), (9, 1.0), (18, 1.0)]
