"""analysis.intransitivity: cycle counts on graphs with known answers, Bradley-Terry, loaders, CLI."""
import gzip
import itertools
import json
from math import comb

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from analysis.intransitivity import (
    analyze,
    bt_design,
    bt_fit,
    bt_scores,
    comparisons_from_labels,
    count_3_cycles,
    count_triads,
    list_3_cycles,
    load_comparisons,
    main,
    majority_graph,
    plot_bradley_terry,
    validate_comparisons,
    win_matrix,
)


def comps(rows, annotator=None):
    """Comparisons in group "g" from (a, b, winner) triples."""
    return pd.DataFrame([{"group": "g", "a": a, "b": b, "winner": w, "annotator": annotator} for a, b, w in rows])


# A 4-node tournament: a>b>c>a is a cycle, d beats a and b, c beats d.
# Out-degrees (1, 1, 2, 2) -> C(4,3) - sum C(s,2) = 4 - 2 = 2 cycles: abc and bcd.
TOURNAMENT = [("a", "b", "a"), ("b", "c", "a"), ("c", "a", "a"), ("d", "a", "a"), ("b", "d", "b"), ("c", "d", "a")]


def test_four_node_tournament_has_two_3_cycles_and_ties_are_ignored():
    with_ties = TOURNAMENT + [("a", "d", "tie"), ("a", "e", "tie"), ("b", "e", "tie")]
    report = analyze(comps(with_ties), n_boot=0)
    row = report.per_group.iloc[0]
    assert (row["items"], row["comparisons"], row["ties"], row["edges"]) == (5, 9, 3, 6)
    assert (report.cycles_3, report.triads, report.transitivity) == (2, 4, 0.5)
    listed = {tuple(r) for r in report.cycles[["first", "second", "third"]].itertuples(index=False)}
    assert listed == {("a", "b", "c"), ("b", "c", "d")}


def test_single_cycle_and_transitive_triangle():
    cycle = analyze(comps([("x", "y", "a"), ("y", "z", "a"), ("z", "x", "a")]), n_boot=0)
    assert (cycle.cycles_3, cycle.triads, cycle.transitivity) == (1, 1, 0.0)
    chain = analyze(comps([("x", "y", "a"), ("y", "z", "a"), ("x", "z", "a")]), n_boot=0)
    assert (chain.cycles_3, chain.triads, chain.transitivity) == (0, 1, 1.0)


def test_cycle_count_matches_brute_force_and_the_tournament_formula():
    rng = np.random.default_rng(0)
    for n in (3, 5, 8, 12):
        upper = np.triu(rng.integers(0, 2, size=(n, n)), 1)
        adj = upper + np.triu(1 - upper, 1).T  # a random tournament
        brute = sum(1 for i, j, k in itertools.permutations(range(n), 3)
                    if i < j and i < k and adj[i, j] and adj[j, k] and adj[k, i])
        assert count_3_cycles(adj) == brute
        assert count_3_cycles(adj) == comb(n, 3) - sum(comb(int(s), 2) for s in adj.sum(axis=1))
        assert count_triads(adj) == comb(n, 3)
        listed = list_3_cycles(adj)
        assert len(listed) == len(set(listed)) == brute
        assert all(adj[i, j] and adj[j, k] and adj[k, i] and i < min(j, k) for i, j, k in listed)


def test_majority_edges_need_strictly_more_wins():
    a, b = np.array([0, 0, 1, 1, 2]), np.array([1, 1, 0, 2, 1])
    winner = np.array(["a", "a", "a", "a", "a"])  # 0>1 twice, 1>0 once, 1>2 once, 2>1 once
    wins = win_matrix(a, b, winner, 3)
    assert wins.tolist() == [[0, 2, 0], [1, 0, 1], [0, 1, 0]]
    assert majority_graph(wins).tolist() == [[0, 1, 0], [0, 0, 0], [0, 0, 0]]


def test_graphs_are_built_per_group_and_per_annotator():
    both = pd.concat([comps(TOURNAMENT, annotator="ann1").assign(group="g1"),
                      comps([("x", "y", "a"), ("y", "z", "a"), ("z", "x", "a")], annotator="ann2").assign(group="g2"),
                      comps([("x", "y", "b")], annotator="ann1").assign(group="g2")])
    report = analyze(both, n_boot=0)
    assert report.per_group.set_index("group")["cycles_3"].to_dict() == {"g1": 2, "g2": 0}  # x-y flipped to a tie
    assert (report.groups, report.comparisons) == (2, 10)
    per_ann = report.per_annotator.set_index(["group", "annotator"])["cycles_3"].to_dict()
    assert per_ann == {("g1", "ann1"): 2, ("g2", "ann1"): 0, ("g2", "ann2"): 1}
    assert report.to_dict()["annotators"]["cycles_3"] == 3


def test_bt_fit_matches_a_direct_minimisation_of_the_same_objective():
    a, b = np.array([0, 1, 2, 0, 1, 3]), np.array([1, 2, 0, 3, 3, 2])
    winner = np.array(["a", "a", "b", "a", "tie", "b"])
    win, lose, weight = bt_design(a, b, winner)
    assert (win.tolist(), lose.tolist(), weight.tolist()) == (
        [0, 1, 0, 0, 1, 2, 3], [1, 2, 2, 3, 3, 3, 1], [1, 1, 1, 1, 0.5, 1, 0.5])
    l2 = 0.1

    def objective(s):
        return np.sum(weight * np.logaddexp(0, -(s[win] - s[lose]))) + 0.5 * l2 * s @ s

    ref = optimize.minimize(objective, np.zeros(4), method="BFGS", options={"gtol": 1e-10}).x
    np.testing.assert_allclose(bt_fit(win, lose, weight, 4, l2)[0], ref - ref.mean(), atol=1e-6)


def test_bt_recovers_the_ordering_of_simulated_strengths_with_covering_cis():
    rng = np.random.default_rng(0)
    n, c = 8, 3000
    true = np.linspace(-1.5, 1.5, n)
    a = rng.integers(0, n, c)
    b = (a + rng.integers(1, n, c)) % n  # never a == b
    a_wins = rng.random(c) < 1 / (1 + np.exp(-(true[a] - true[b])))
    winner = np.where(a_wins, "a", "b")
    bt = bt_scores(a, b, winner, n, n_boot=200, seed=1, l2=1e-3)
    assert stats.spearmanr(bt["score"], true).statistic == pytest.approx(1.0)
    assert bt["rank"].tolist() == list(range(n, 0, -1))
    np.testing.assert_allclose(bt["score"], true - true.mean(), atol=0.15)
    covered = ((bt["lo"] <= true - true.mean()) & (true - true.mean() <= bt["hi"])).mean()
    assert covered >= 0.75
    assert (bt["hi"] - bt["lo"]).max() < 0.6


def test_ties_only_give_equal_scores():
    bt = bt_scores(np.array([0, 1]), np.array([1, 0]), np.array(["tie", "tie"]), 2, n_boot=0)
    np.testing.assert_allclose(bt["score"], [0.0, 0.0], atol=1e-12)


def test_validation_names_the_problem():
    with pytest.raises(ValueError, match="missing columns \\['winner'\\]"):
        validate_comparisons(pd.DataFrame({"group": ["g"], "a": ["x"], "b": ["y"]}))
    with pytest.raises(ValueError, match="winner 'left' is not one of"):
        validate_comparisons(comps([("x", "y", "left")]))
    with pytest.raises(ValueError, match="compared with itself"):
        validate_comparisons(comps([("x", "x", "a")]))


def write_ukp(path):
    """A tiny file in UKPConvArg1's format: a1 > a2 > a3 > a1 by gold; strict keeps two pairs."""
    def rec(x, y, gold, strict, votes):
        return {"topic": "t", "id": f"{x}_{y}", "a1_id": x, "a2_id": y, "a1": "text", "a2": "text",
                "gold": gold, "strict_label": strict,
                "votes": [{"worker": w, "value": v, "reason": "", "competence": 0.5} for w, v in votes]}

    rows = [rec("a1", "a2", "a1", "a1", [("w1", "a1"), ("w2", "a1")]),
            rec("a2", "a3", "a1", "a1", [("w1", "a1"), ("w2", "equal")]),
            rec("a3", "a1", "a1", None, [("w1", "a1"), ("w2", "a2")]),
            rec("a1", "a4", None, None, [("w1", "equal")])]
    with gzip.open(path, "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)


def test_ukp_loader_reads_gold_strict_and_votes(tmp_path):
    path = tmp_path / "pairs.jsonl.gz"
    write_ukp(path)
    gold = load_comparisons(path)  # sniffed as ukp
    assert gold[["a", "b", "winner"]].values.tolist() == [["a1", "a2", "a"], ["a2", "a3", "a"], ["a3", "a1", "a"]]
    assert analyze(gold, n_boot=0).cycles_3 == 1
    assert len(load_comparisons(path, "ukp", label="strict")) == 2
    votes = load_comparisons(path, "ukp", label="votes")
    assert len(votes) == 7 and set(votes["annotator"]) == {"w1", "w2"}
    report = analyze(votes, n_boot=0)
    assert report.per_annotator.set_index("annotator")["cycles_3"].to_dict() == {"w1": 1, "w2": 0}


def test_comparisons_from_label_store_rows():
    labels = pd.DataFrame({"task_id": ["t1", "t1", "t1"], "winner": pd.array([0, 1, pd.NA], "Int64"),
                           "loser": pd.array([1, 2, pd.NA], "Int64"), "left_index": [1, 1, 2],
                           "right_index": [0, 2, 0], "tie": [False, False, True], "annotator": ["u"] * 3})
    out = comparisons_from_labels(labels)
    assert out[["a", "b", "winner"]].values.tolist() == [["a", "b", "a"], ["b", "c", "a"], ["c", "a", "tie"]]
    assert analyze(out, n_boot=0).per_group["edges"].tolist() == [2]


def test_store_triad_labels_make_a_cycle(tmp_path):
    from labeling.store import open_store
    from labeling.tasks import Task

    db = tmp_path / "labels.db"
    store = open_store(str(db))
    responses = ("r0", "r1", "r2")
    fillers = [Task(id=f"pair{i}", kind="pair", prompt="q", responses=(f"x{i}", f"y{i}")) for i in range(4)]
    store.import_tasks([Task(id="tri", kind="triad", prompt="p", responses=responses), *fillers])
    while (job := store.next_assignment("ann")) is not None:
        # triad pairings are ab, bc, ca: always preferring the first gives a > b > c > a
        first = responses[[(0, 1), (1, 2), (2, 0)][job.pair_index][0]] if job.task_id == "tri" else job.left
        store.submit(job.id, "ann", "left" if job.left == first else "right")
    store.close()
    report = analyze(load_comparisons(str(db)), n_boot=0)  # a .db path is sniffed as the store
    assert (report.groups, report.comparisons, report.cycles_3) == (5, 7, 1)
    assert report.cycles[["group", "first", "second", "third"]].values.tolist() == [["tri", "a", "b", "c"]]
    assert report.per_annotator["cycles_3"].sum() == 1


def test_cli_prints_groups_comparisons_and_cycles(tmp_path, capsys):
    path = tmp_path / "comparisons.jsonl"
    path.write_text("".join(json.dumps({"group": "g", "a": a, "b": b, "winner": w}) + "\n" for a, b, w in TOURNAMENT))
    main([str(path), "--json", "--n-boot", "20", "--out", str(tmp_path / "report.json")])
    printed = json.loads(capsys.readouterr().out)
    assert (printed["groups"], printed["comparisons"], printed["cycles_3"]) == (1, 6, 2)
    assert printed["config"]["n_boot"] == 20 and printed["config"]["format"] == "auto"
    assert len(printed["bradley_terry"]) == 4 and printed["bradley_terry"][0]["lo"] is not None
    assert json.loads((tmp_path / "report.json").read_text())["cycles_3"] == 2
    fig = plot_bradley_terry(analyze(comps(TOURNAMENT), n_boot=10), "g")
    assert len(fig.axes[0].get_yticklabels()) == 4
    assert fig.canvas.manager is None  # a plain Figure: pyplot's registry does not hold it


def test_real_ukpconvarg1_gold_graph_has_3064_cycles(shared_data):
    # its speed is measured in bench/intransitivity.py, not asserted here
    report = analyze(load_comparisons(shared_data / "ukpconvarg1" / "pairs.jsonl.gz", "ukp"), n_boot=0)
    assert (report.groups, report.cycles_3) == (32, 3064)
    assert (report.per_group["cycles_3"] > 0).all()
