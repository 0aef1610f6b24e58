"""The label store's own work per label, in process: next_assignment, submit, progress.

  .venv/bin/python bench/store_ops.py [--tasks 1000] [--annotators 32] [--labels 960]
      [--db sqlite|URL ...] [--profile]

A crowd of `--annotators` labels a store of `--tasks` synthetic tasks (the seed set's mix of
kinds; prompts of ~400 and responses of ~800 characters) round-robin. Two ways of labeling,
each on a fresh store:
- separate: each turn runs next_assignment -> submit -> progress (three calls, two commits);
- combined: submit_and_next -> progress (two calls, one commit: one event per label).
Every call is timed; the table gives mean / p50 / p95 per call, the total per label (wall)
and this process's CPU time per label (steadier than wall time on a shared machine), for
each `--db` side by side (`sqlite` is a fresh file under a temporary folder; a PostgreSQL URL
gets a fresh schema that is dropped afterwards). `--profile` runs cProfile over the first
backend's separate run and prints the functions with the most cumulative time. The rate
limit is off (the store is the client here, not a person).
"""
import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root: labeling, bench

from bench._machine import cpu_model, load_line, load_text  # noqa: E402
from labeling.store import Store, StoreConfig  # noqa: E402
from labeling.tasks import Task  # noqa: E402
from labeling.testing import PG_ENV, temp_db  # noqa: E402

# the seed set's mix: 67 pairs, 18 triads, 48 agreement, 14 gold (per 147)
MIX = {"pair": 67, "triad": 18, "agreement": 48, "gold": 14}
OPS = ("next_assignment", "submit", "progress")
WORDS = "the annotator reads a prompt and two responses and says which one is better and why".split()


def text(n_chars: int, seed: int) -> str:
    words = [WORDS[(seed * 7 + i) % len(WORDS)] for i in range(n_chars // 4)]
    return f"#{seed} " + " ".join(words)[:n_chars]


def synthetic_tasks(n: int) -> list[Task]:
    """n tasks in the seed set's mix of kinds, with realistic text lengths."""
    total = sum(MIX.values())
    kinds = [kind for kind, share in MIX.items() for _ in range(round(n * share / total))]
    kinds = (kinds + ["pair"] * n)[:n]
    tasks = []
    for i, kind in enumerate(kinds):
        n_resp = 3 if kind == "triad" else 2
        extra = {"agreement": {"agreeing": i % 2}, "gold": {"better": i % 2}}.get(kind, {})
        tasks.append(Task(id=f"t{i:05d}", kind=kind, prompt=text(400, i),
                          responses=tuple(text(800, 10 * i + r) for r in range(n_resp)), **extra))
    return tasks


def _timed(timings: dict, op: str, fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    timings.setdefault(op, []).append(time.perf_counter() - t)
    return out


def _choice(a) -> str:
    return ("left", "right", "tie")[a.id % 3]


def label_separately(store: Store, names: list[str], n_labels: int, timings: dict) -> int:
    """Round-robin next_assignment -> submit -> progress until n_labels (or no work)."""
    done, idle = 0, set()
    while done < n_labels and len(idle) < len(names):
        for name in names:
            if name in idle or done >= n_labels:
                continue
            a = _timed(timings, "next_assignment", store.next_assignment, name)
            if a is None:
                idle.add(name)
                continue
            _timed(timings, "submit", store.submit, a.id, name, _choice(a), 2, seconds=5.0)
            _timed(timings, "progress", store.progress, name)
            done += 1
    return done


def label_combined(store: Store, names: list[str], n_labels: int, timings: dict) -> int:
    """Round-robin submit_and_next -> progress (each annotator's first task: next_assignment)."""
    current = {name: store.next_assignment(name) for name in names}
    done = 0
    while done < n_labels and any(current.values()):
        for name in names:
            a = current[name]
            if a is None or done >= n_labels:
                continue
            _, current[name] = _timed(timings, "submit_and_next", store.submit_and_next,
                                      a.id, name, _choice(a), 2, seconds=5.0)
            _timed(timings, "progress", store.progress, name)
            done += 1
    return done


MODES = {"separate": label_separately, "combined": label_combined}


def run(db: str, tasks: list[Task], annotators: int, n_labels: int, k: int, mode: str,
        profile: cProfile.Profile | None) -> dict:
    """Label a fresh store with MODES[mode]; per-call and per-label times in ms."""
    config = StoreConfig(labels_per_task=k, seed=0, rate_limit=0)
    timings: dict[str, list[float]] = {}
    with Store(db, config) as store:
        t0 = time.perf_counter()
        store.import_tasks(tasks)
        import_s = time.perf_counter() - t0
        names = [f"annotator-{i:02d}" for i in range(annotators)]
        if profile:
            profile.enable()
        cpu = time.process_time()
        done = MODES[mode](store, names, n_labels, timings)
        cpu = time.process_time() - cpu
        if profile:
            profile.disable()
        assert len(store.labels()) == done
    out = {"labels": done, "import_s": import_s}
    for op, v in timings.items():
        ms = np.asarray(v) * 1e3
        out[op] = {"mean_ms": float(ms.mean()), "p50_ms": float(np.percentile(ms, 50)),
                   "p95_ms": float(np.percentile(ms, 95)), "total_ms": float(ms.sum())}
    out["per_label_ms"] = sum(out[op]["total_ms"] for op in timings) / max(done, 1)
    out["cpu_per_label_ms"] = cpu * 1e3 / max(done, 1)  # this process only (not PostgreSQL's)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", type=int, default=1000)
    p.add_argument("--annotators", type=int, default=32)
    p.add_argument("--labels", type=int, default=960, help="labels to store (default: 30 per annotator)")
    p.add_argument("--k", type=int, default=3, help="labels per task")
    p.add_argument("--db", nargs="+", default=["sqlite"],
                   help="'sqlite' and/or PostgreSQL URLs (each gets a fresh schema)")
    p.add_argument("--profile", action="store_true", help="cProfile the first backend")
    args = p.parse_args(argv)
    print(f"machine: {cpu_model()}, load average {load_text()}")
    tasks = synthetic_tasks(args.tasks)
    print(f"{len(tasks)} tasks, {args.annotators} annotators, k={args.k}, {args.labels} labels")
    results = {}
    for i, db in enumerate(args.db):
        backend = "sqlite" if db == "sqlite" else "postgresql"
        if backend == "postgresql":
            os.environ[PG_ENV] = db
        for mode in MODES:
            profile = cProfile.Profile() if args.profile and i == 0 and mode == "separate" else None
            with tempfile.TemporaryDirectory() as folder, temp_db(backend, folder) as url:
                results[f"{backend} {mode}"] = run(url, tasks, args.annotators, args.labels, args.k,
                                                   mode, profile)
            if profile:
                text = io.StringIO()
                pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(25)
                print(text.getvalue())
    print("| call | " + " | ".join(f"{name}: mean / p50 / p95 ms" for name in results) + " |")
    print("|---|" + "---|" * len(results))
    for op in ("next_assignment", "submit", "submit_and_next", "progress"):
        cells = [f"{r[op]['mean_ms']:.2f} / {r[op]['p50_ms']:.2f} / {r[op]['p95_ms']:.2f}" if op in r else ""
                 for r in results.values()]
        print(f"| {op} | " + " | ".join(cells) + " |")
    print("| **per label** (wall) | " + " | ".join(f"**{r['per_label_ms']:.2f}**" for r in results.values()) + " |")
    print("| per label, CPU of this process | " + " | ".join(f"{r['cpu_per_label_ms']:.2f}" for r in results.values()) + " |")
    print(load_line())
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    with (out / "store_ops.jsonl").open("a") as f:
        f.write(json.dumps({"args": vars(args) | {"db": [d.split("@")[-1] for d in args.db]},
                            "results": results, "time": time.time()}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
