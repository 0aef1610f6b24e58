"""Intransitive preferences: directed 3-cycles and Bradley-Terry scores per group of items.

Input: comparisons `{group, a, b, winner ∈ a|b|tie [, annotator]}`: a JSONL/CSV/Parquet
file, the label store (`--format store`), or UKPConvArg1's `pairs.jsonl.gz` (`--format ukp`).

Per group (e.g. a prompt or a debate topic) the preference graph has an edge x -> y when x
beat y in more comparisons than y beat x (ties and even splits add no edge). With `A` the
0/1 adjacency matrix, the number of directed 3-cycles x > y > z > x is trace(A³) / 3 (each
cycle counted once, not once per rotation), and a triad is any 3 items whose 3 pairs all
have an edge; transitivity = 1 - cycles / triads. Bradley-Terry scores (log-odds scale,
centred) are fit by L2-regularised maximum likelihood with ties counted as half a win each
way, and bootstrap CIs come from resampling comparisons, as Chatbot Arena's leaderboard does.

    python -m analysis.intransitivity ../shared/data/ukpconvarg1/pairs.jsonl.gz --format ukp --json
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

import numpy as np
import pandas as pd
from scipy.special import expit

WINNERS = ("a", "b", "tie")
COLUMNS = ["group", "a", "b", "winner", "annotator"]


# ---- loading ------------------------------------------------------------------------------

def validate_comparisons(df: pd.DataFrame, where: str = "comparisons") -> pd.DataFrame:
    """Columns group, a, b, winner (a|b|tie), annotator (None when absent); as strings."""
    missing = [c for c in ("group", "a", "b", "winner") if c not in df.columns]
    if missing:
        raise ValueError(f"{where}: missing columns {missing}; each row needs group, a, b, winner (a|b|tie)")
    out = df.reindex(columns=COLUMNS).copy()
    for col in ("group", "a", "b"):
        out[col] = out[col].astype(str)
    out["winner"] = out["winner"].astype(str).str.lower()
    bad = out.loc[~out["winner"].isin(WINNERS), "winner"]
    if len(bad):
        raise ValueError(f"{where}: row {bad.index[0]}: winner {bad.iloc[0]!r} is not one of {list(WINNERS)}")
    if (out["a"] == out["b"]).any():
        row = int(np.flatnonzero((out["a"] == out["b"]).to_numpy())[0])
        raise ValueError(f"{where}: row {row}: an item is compared with itself ({out['a'].iloc[row]!r})")
    out["annotator"] = out["annotator"].astype(object).where(out["annotator"].notna(), None)
    return out.reset_index(drop=True)


def _jsonl_records(path: Path) -> Iterable[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def load_table(src: str | Path, **_: Any) -> pd.DataFrame:
    """A comparisons table (JSONL / CSV / Parquet, gz allowed)."""
    from analysis.responses import read_table

    table = read_table(src)
    if table is None:
        raise ValueError(f"{src}: not a readable .jsonl/.json/.csv/.parquet file")
    return validate_comparisons(table, str(src))


UKP_WINNER = {"a1": "a", "a2": "b", "equal": "tie"}
UKP_LABEL_FIELD = {"gold": "gold", "strict": "strict_label"}  # label option -> record field


def load_ukp(src: str | Path, label: str = "gold", **_: Any) -> pd.DataFrame:
    """UKPConvArg1 pairs: group = topic, items = argument ids.

    label "gold" (MACE label; null rows dropped), "strict" (cycle-cleaned subset), or
    "votes" (one comparison per crowd vote, annotator = worker id).
    """
    rows = []
    for rec in _jsonl_records(Path(src)):
        base = (rec["topic"], rec["a1_id"], rec["a2_id"])
        if label == "votes":
            rows += [(*base, UKP_WINNER[v["value"]], v["worker"]) for v in rec["votes"]]
        elif rec.get(UKP_LABEL_FIELD[label]) is not None:
            rows.append((*base, UKP_WINNER[rec[UKP_LABEL_FIELD[label]]], None))
    return validate_comparisons(pd.DataFrame(rows, columns=COLUMNS), str(src))


def load_store(src: str | None = None, **_: Any) -> pd.DataFrame:
    """Labels from the label store (`src` = DB path/URL, None = default); see `comparisons_from_labels`."""
    from labeling.store import open_store  # lazy: only for --format store

    store = open_store(src or None)
    try:
        return comparisons_from_labels(store.labels())
    finally:
        store.close()


def comparisons_from_labels(labels: pd.DataFrame) -> pd.DataFrame:
    """Comparisons from `Store.labels()` rows: group = task id, items = response letters a/b/c.

    A decided label is winner beat loser; "tie" and "both_bad" are ties between the two
    responses shown. Triads (3 responses a task) are the tasks that can hold a cycle.
    """
    letters = np.array(list("abc"))
    tie = labels["tie"].to_numpy(bool)
    first = np.where(tie, labels["left_index"], labels["winner"].fillna(-1)).astype(int)
    second = np.where(tie, labels["right_index"], labels["loser"].fillna(-1)).astype(int)
    df = pd.DataFrame({"group": labels["task_id"], "a": letters[first], "b": letters[second],
                       "winner": np.where(tie, "tie", "a"), "annotator": labels["annotator"]})
    return validate_comparisons(df, "label store")


def sniff_format(src: str | Path) -> str:
    """'ukp' for UKPConvArg1 pairs, 'store' for a database, else 'table'."""
    text = str(src)
    if "://" in text or text.endswith((".db", ".sqlite")):
        return "store"
    path = Path(src)
    if path.name.endswith((".jsonl", ".jsonl.gz")):
        first = next(iter(_jsonl_records(path)), {})
        if {"a1_id", "a2_id", "votes"} <= set(first):
            return "ukp"
    return "table"


LOADERS: dict[str, Callable[..., pd.DataFrame]] = {"table": load_table, "ukp": load_ukp, "store": load_store}


def load_comparisons(src: str | Path | None, fmt: str = "auto", label: str = "gold") -> pd.DataFrame:
    """Comparisons from `src` in format `fmt` (see `LOADERS`; "auto" sniffs the file)."""
    fmt = sniff_format(src) if fmt == "auto" and src is not None else ("store" if fmt == "auto" else fmt)
    if fmt not in LOADERS:
        raise ValueError(f"unknown format {fmt!r}; choose from {['auto', *LOADERS]}")
    return LOADERS[fmt](src, label=label)


# ---- graph math ---------------------------------------------------------------------------

def win_matrix(a: np.ndarray, b: np.ndarray, winner: np.ndarray, n: int) -> np.ndarray:
    """(n, n) counts W[i, j] = times item i beat item j (ties ignored); a, b are item indices."""
    w = np.zeros((n, n), dtype=np.int64)
    a_won, b_won = winner == "a", winner == "b"
    np.add.at(w, (a[a_won], b[a_won]), 1)
    np.add.at(w, (b[b_won], a[b_won]), 1)
    return w


def majority_graph(wins: np.ndarray) -> np.ndarray:
    """(n, n) 0/1 adjacency: i -> j when i beat j more often than j beat i."""
    return (wins > wins.T).astype(np.int64)


def count_3_cycles(adj: np.ndarray) -> int:
    """Directed 3-cycles, each counted once: trace(A³) / 3."""
    return int(np.trace(adj @ adj @ adj)) // 3


def count_triads(adj: np.ndarray) -> int:
    """Sets of 3 items whose 3 pairs all have an edge (either direction): trace(U³) / 6."""
    und = ((adj + adj.T) > 0).astype(np.int64)
    return int(np.trace(und @ und @ und)) // 6


def list_3_cycles(adj: np.ndarray) -> list[tuple[int, int, int]]:
    """Every directed 3-cycle once, as (i, j, k) meaning i -> j -> k -> i with i the smallest index."""
    n = len(adj)
    cycles = []
    for i in range(n):
        later = np.arange(n) > i
        for j in np.flatnonzero(adj[i] & later):
            for k in np.flatnonzero(adj[j] & adj[:, i] & later):
                cycles.append((i, int(j), int(k)))
    return cycles


# ---- Bradley-Terry --------------------------------------------------------------------------

def bt_design(a: np.ndarray, b: np.ndarray, winner: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(win, lose, weight), each (M,): row m says item win[m] beat item lose[m] with weight[m].

    a, b are item indices of the C comparisons; a tie becomes half a win each way, so
    M = C + number of ties and the first C rows follow the comparisons' order.
    """
    tie = winner == "tie"
    win = np.concatenate([np.where(winner == "b", b, a), b[tie]])
    lose = np.concatenate([np.where(winner == "b", a, b), a[tie]])
    weight = np.concatenate([np.where(tie, 0.5, 1.0), np.full(int(tie.sum()), 0.5)])
    return win, lose, weight


def bt_fit(win: np.ndarray, lose: np.ndarray, weights: np.ndarray, n: int, l2: float = 1e-2,
           tol: float = 1e-10, max_iter: int = 50) -> np.ndarray:
    """(B, n) centred Bradley-Terry log-strengths, one row per weight vector.

    `weights` is (M,) or (B, M) (bootstrap resamples). Minimises, per row,
    sum_m w_m · log(1 + exp(-(s_win - s_lose))) + l2/2 · |s|² by batched damped Newton: the
    objective is strictly convex for l2 > 0, so each row converges in a handful of steps.
    Stops when every gradient entry is below `tol` times the row's total weight.
    Gathers and bincounts instead of dense matrix products keep it fast when BLAS threads
    compete for a busy CPU.
    """
    weights = np.atleast_2d(np.asarray(weights, float))
    n_rows = len(weights)
    row = np.arange(n_rows)[:, None]
    vec_at = lambda idx: (row * n + idx).ravel()  # flat index into (B, n)
    mat_at = lambda i, j: (row * n * n + i * n + j).ravel()  # flat index into (B, n, n)

    def loss(s: np.ndarray) -> np.ndarray:  # (B,)
        return (weights * np.logaddexp(0.0, s[:, lose] - s[:, win])).sum(axis=1) + 0.5 * l2 * (s * s).sum(axis=1)

    s = np.zeros((n_rows, n))
    current = loss(s)
    scale = weights.sum(axis=1, keepdims=True) + 1.0  # (B, 1) gradients grow with the data
    for _ in range(max_iter):
        p = expit(s[:, lose] - s[:, win])  # (B, M) P(the recorded loser wins)
        g = weights * p
        grad = (np.bincount(vec_at(lose), g.ravel(), n_rows * n)
                - np.bincount(vec_at(win), g.ravel(), n_rows * n)).reshape(n_rows, n) + l2 * s
        if (np.abs(grad) < tol * scale).all():
            break
        c = (weights * p * (1 - p)).ravel()  # (B*M,) curvature of each comparison
        hess = (np.bincount(mat_at(win, win), c, n_rows * n * n) + np.bincount(mat_at(lose, lose), c, n_rows * n * n)
                - np.bincount(mat_at(win, lose), c, n_rows * n * n)
                - np.bincount(mat_at(lose, win), c, n_rows * n * n)).reshape(n_rows, n, n) + l2 * np.eye(n)
        step = np.linalg.solve(hess, grad[..., None])[..., 0]  # (B, n)
        t = np.ones((n_rows, 1))
        for _ in range(30):  # halve the step on rows whose loss went up
            trial = loss(s - t * step)
            worse = trial > current + 1e-12 * np.abs(current)  # slack for rounding at the optimum
            if not worse.any():
                break
            t[worse] *= 0.5
        s, current = s - t * step, np.minimum(trial, current)
    return s - s.mean(axis=1, keepdims=True)


def bt_scores(a: np.ndarray, b: np.ndarray, winner: np.ndarray, n: int, n_boot: int = 100,
              confidence: float = 0.95, seed: int = 0, l2: float = 1e-2) -> pd.DataFrame:
    """Per item: score, percentile bootstrap CI (lo, hi) over resampled comparisons, rank (1 = best)."""
    win, lose, weight = bt_design(a, b, winner)
    point = bt_fit(win, lose, weight, n, l2)[0]
    out = pd.DataFrame({"score": point, "lo": np.nan, "hi": np.nan})
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        c = len(a)
        counts = rng.multinomial(c, np.full(c, 1.0 / c), size=n_boot).astype(float)  # (B, C)
        tie = winner == "tie"
        boot_w = np.concatenate([counts, counts[:, tie]], axis=1) * weight  # (B, M) same row layout
        boot = bt_fit(win, lose, boot_w, n, l2)
        alpha = (1 - confidence) / 2
        out["lo"], out["hi"] = np.quantile(boot, alpha, axis=0), np.quantile(boot, 1 - alpha, axis=0)
    out["rank"] = out["score"].rank(ascending=False, method="min").astype(int)
    return out


# ---- analysis -------------------------------------------------------------------------------

@dataclass
class GroupGraph:
    """One group's items, comparisons as item indices, and majority graph."""

    group: str
    items: list[str]
    a: np.ndarray  # (C,) item index of side a
    b: np.ndarray  # (C,)
    winner: np.ndarray  # (C,) "a" | "b" | "tie"
    wins: np.ndarray  # (n, n) W[i, j] = times i beat j
    adj: np.ndarray  # (n, n) majority edges


def build_graph(group: str, a: np.ndarray, b: np.ndarray, winner: np.ndarray, names: np.ndarray) -> GroupGraph:
    """The preference graph of one group: a, b are (C,) codes into `names`, winner (C,)."""
    used, local = np.unique(np.concatenate([a, b]), return_inverse=True)
    a_local, b_local = local[: len(a)], local[len(a):]
    wins = win_matrix(a_local, b_local, winner, len(used))
    return GroupGraph(group, names[used].tolist(), a_local, b_local, winner, wins, majority_graph(wins))


def graphs(comps: pd.DataFrame, keys: list[str]) -> Iterable[tuple[Any, GroupGraph]]:
    """(key, graph) for every group of `comps` by `keys`, in sorted key order.

    Items are coded once for the whole table, so many small groups (one per annotator)
    cost little each.
    """
    codes, names = pd.factorize(pd.concat([comps["a"], comps["b"]], ignore_index=True), sort=True)
    a, b = codes[: len(comps)], codes[len(comps):]
    winner = comps["winner"].to_numpy(str)
    names = np.asarray(names, dtype=object)
    for key, rows in sorted(comps.groupby(keys, sort=False).indices.items()):
        group = key[0] if isinstance(key, tuple) else key
        yield key, build_graph(str(group), a[rows], b[rows], winner[rows], names)


def graph_stats(g: GroupGraph) -> dict[str, Any]:
    """Counts for one graph: items, comparisons, ties, edges, triads, 3-cycles, transitivity."""
    cycles, triads = count_3_cycles(g.adj), count_triads(g.adj)
    return {"items": len(g.items), "comparisons": len(g.a), "ties": int((g.winner == "tie").sum()),
            "edges": int(g.adj.sum()), "triads": triads, "cycles_3": cycles,
            "transitivity": 1 - cycles / triads if triads else np.nan}


@dataclass
class IntransitivityConfig:
    """Count intransitive preference cycles and fit Bradley-Terry scores per group."""

    src: str | None = field(default=None, metadata={"help": "comparisons file, UKPConvArg1 pairs file, or label-store DB/URL (default store)"})
    format: Literal["auto", "table", "ukp", "store"] = field(default="auto", metadata={"help": "input format; auto sniffs the file"})
    label: Literal["gold", "strict", "votes"] = field(default="gold", metadata={"help": "UKP only: which label is the winner"})
    per_annotator: bool = field(default=True, metadata={"help": "also build one graph per (group, annotator)"})
    n_boot: int = field(default=100, metadata={"help": "bootstrap resamples for Bradley-Terry CIs (0 = none)"})
    confidence: float = field(default=0.95, metadata={"help": "confidence level of the Bradley-Terry intervals"})
    l2: float = field(default=1e-2, metadata={"help": "L2 penalty on Bradley-Terry scores (keeps unbeaten items finite)"})
    seed: int = field(default=0, metadata={"help": "bootstrap seed"})
    max_cycles: int = field(default=200, metadata={"help": "list at most this many cycles in the JSON report"})
    out: str | None = field(default="runs/reports/intransitivity.json", metadata={"help": "JSON report path"})


@dataclass
class IntransitivityReport:
    """Totals plus per-group, per-annotator, cycle and Bradley-Terry tables."""

    groups: int
    comparisons: int
    cycles_3: int
    triads: int
    transitivity: float
    per_group: pd.DataFrame  # one row per group: graph_stats columns
    cycles: pd.DataFrame  # one row per cycle: group, first, second, third (first > second > third > first)
    bradley_terry: pd.DataFrame  # one row per (group, item): score, lo, hi, rank, wins, losses
    per_annotator: pd.DataFrame | None = None  # one row per (group, annotator)

    def to_dict(self, max_cycles: int | None = None) -> dict[str, Any]:
        cycles = self.cycles if max_cycles is None else self.cycles.head(max_cycles)
        out = {"groups": self.groups, "comparisons": self.comparisons, "cycles_3": self.cycles_3,
               "triads": self.triads, "transitivity": self.transitivity, "per_group": self.per_group,
               "cycles": cycles, "cycles_listed": len(cycles), "bradley_terry": self.bradley_terry}
        if self.per_annotator is not None:
            ann = self.per_annotator
            out["annotators"] = {"graphs": len(ann), "cycles_3": int(ann["cycles_3"].sum()),
                                 "triads": int(ann["triads"].sum()), "per_annotator": ann}
        return out


def analyze(comps: pd.DataFrame, per_annotator: bool = True, n_boot: int = 100, confidence: float = 0.95,
            l2: float = 1e-2, seed: int = 0) -> IntransitivityReport:
    """Graphs, cycles and Bradley-Terry scores for every group of validated comparisons."""
    comps = validate_comparisons(comps)
    stats_rows, cycle_rows, bt_rows = [], [], []
    for _, g in graphs(comps, ["group"]):
        stats_rows.append({"group": g.group, **graph_stats(g)})
        cycle_rows += [(g.group, g.items[i], g.items[j], g.items[k]) for i, j, k in list_3_cycles(g.adj)]
        bt = bt_scores(g.a, g.b, g.winner, len(g.items), n_boot, confidence, seed, l2)
        bt.insert(0, "item", g.items)
        bt.insert(0, "group", g.group)
        bt["wins"], bt["losses"] = g.wins.sum(axis=1), g.wins.sum(axis=0)
        bt_rows.append(bt.sort_values("rank"))
    per_group = pd.DataFrame(stats_rows, columns=["group", "items", "comparisons", "ties", "edges", "triads",
                                                  "cycles_3", "transitivity"])
    cycles, triads = int(per_group["cycles_3"].sum()), int(per_group["triads"].sum())
    per_ann = None
    if per_annotator and comps["annotator"].notna().any():
        rows = [{"group": g.group, "annotator": str(key[1]), **graph_stats(g)}
                for key, g in graphs(comps.dropna(subset=["annotator"]), ["group", "annotator"])]
        per_ann = pd.DataFrame(rows)
    return IntransitivityReport(
        groups=len(per_group), comparisons=len(comps), cycles_3=cycles, triads=triads,
        transitivity=1 - cycles / triads if triads else float("nan"), per_group=per_group,
        cycles=pd.DataFrame(cycle_rows, columns=["group", "first", "second", "third"]),
        bradley_terry=pd.concat(bt_rows, ignore_index=True) if bt_rows else pd.DataFrame(),
        per_annotator=per_ann)


def plot_bradley_terry(report: IntransitivityReport, group: str, top: int = 30):
    """Figure: one group's Bradley-Terry scores with bootstrap CIs, best at the top."""
    from matplotlib.figure import Figure  # not pyplot: no global registry keeps the figure alive

    bt = report.bradley_terry[report.bradley_terry["group"] == group].sort_values("score").tail(top)
    if bt.empty:
        raise ValueError(f"no group {group!r}; groups: {sorted(report.per_group['group'])[:10]}...")
    fig = Figure(figsize=(6, 0.25 * len(bt) + 1.2))
    ax = fig.add_subplot()
    y = np.arange(len(bt))
    err = np.vstack([bt["score"] - bt["lo"], bt["hi"] - bt["score"]]) if bt["lo"].notna().all() else None
    ax.errorbar(bt["score"], y, xerr=err, fmt="o", ms=3, capsize=2)
    ax.set_yticks(y, [str(s)[:40] for s in bt["item"]], fontsize=7)
    ax.set_xlabel("Bradley-Terry score (log-odds)")
    ax.set_title(f"{group[:60]}", fontsize=9)
    fig.tight_layout()
    return fig


def run(config: IntransitivityConfig) -> tuple[IntransitivityReport, dict]:
    """Load comparisons from `config`, analyze; (report, JSON dict with the resolved config)."""
    comps = load_comparisons(config.src, config.format, config.label)
    report = analyze(comps, config.per_annotator, config.n_boot, config.confidence, config.l2, config.seed)
    return report, {"config": config, **report.to_dict(config.max_cycles)}


def main(argv: list[str] | None = None) -> None:
    from analysis.cli import config_from_args, emit, parser_for

    args = parser_for(IntransitivityConfig, positional=("src",)).parse_args(argv)
    config = config_from_args(IntransitivityConfig, args)
    report, out = run(config)
    emit(out, config.out, args.json,
         f"{report.groups} groups, {report.comparisons} comparisons, {report.cycles_3} directed 3-cycles "
         f"in {report.triads} triads (transitivity {report.transitivity:.3f})")


if __name__ == "__main__":
    from labeling.cli import run_cli

    raise SystemExit(run_cli(main))
