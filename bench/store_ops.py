"""The label store's own work per label, in process: next_assignment, submit, progress.

  .venv/bin/python bench/store_ops.py [--tasks 1000] [--annotators 32] [--labels 960]
      [--db sqlite|URL ...] [--profile]

A crowd of `--annotators` labels a store of `--tasks` synthetic tasks (the seed set's mix of
kinds; prompts of ~400 and responses of ~800 characters) round-robin: each turn one
annotator runs next_assignment -> submit -> progress, the three store calls one label costs
the app. Every call is timed; the table gives the mean, p50 and p95 per call and the
total per label, for each `--db` side by side (`sqlite` is a fresh file under a temporary
folder; a PostgreSQL URL gets a fresh schema that is dropped afterwards). `--profile` runs
cProfile over the first backend and prints the functions with the most cumulative time.
The rate limit is off (the store is the client here, not a person).
"""
import argparse
import cProfile
import io
import json
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
from labeling.testing import temp_db  # noqa: E402

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


def run(db: str, tasks: list[Task], annotators: int, n_labels: int, k: int,
        profile: cProfile.Profile | None) -> dict:
    """Label round-robin until n_labels are stored (or no one gets work); times per call."""
    config = StoreConfig(labels_per_task=k, seed=0, rate_limit=0)
    timings = {op: [] for op in OPS}
    with Store(db, config) as store:
        t0 = time.perf_counter()
        store.import_tasks(tasks)
        import_s = time.perf_counter() - t0
        names = [f"annotator-{i:02d}" for i in range(annotators)]
        done, idle = 0, set()
        if profile:
            profile.enable()
        while done < n_labels and len(idle) < len(names):
            for name in names:
                if name in idle or done >= n_labels:
                    continue
                t = time.perf_counter()
                a = store.next_assignment(name)
                timings["next_assignment"].append(time.perf_counter() - t)
                if a is None:
                    idle.add(name)
                    continue
                t = time.perf_counter()
                store.submit(a.id, name, ("left", "right", "tie")[a.id % 3], 2, seconds=5.0)
                timings["submit"].append(time.perf_counter() - t)
                t = time.perf_counter()
                store.progress(name)
                timings["progress"].append(time.perf_counter() - t)
                done += 1
        if profile:
            profile.disable()
        assert len(store.labels()) == done
    ms = {op: np.asarray(v) * 1e3 for op, v in timings.items()}
    out = {"labels": done, "import_s": import_s}
    for op, v in ms.items():
        out[op] = {"mean_ms": float(v.mean()), "p50_ms": float(np.percentile(v, 50)),
                   "p95_ms": float(np.percentile(v, 95))}
    per_label = sum(ms[op].sum() for op in OPS) / max(done, 1)
    out["per_label_ms"] = float(per_label)
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
        profile = cProfile.Profile() if args.profile and i == 0 else None
        with tempfile.TemporaryDirectory() as folder:
            if backend == "postgresql":
                import os
                os.environ["RMLAB_TEST_PG_URL"] = db
            with temp_db(backend, folder) as url:
                results[backend] = run(url, tasks, args.annotators, args.labels, args.k, profile)
        if profile:
            s = io.StringIO()
            pstats.Stats(profile, stream=s).sort_stats("cumulative").print_stats(25)
            print(s.getvalue())
    header = f"| call | " + " | ".join(f"{b} mean / p50 / p95 ms" for b in results) + " |"
    print(header)
    print("|---|" + "---|" * len(results))
    for op in OPS:
        cells = [f"{r[op]['mean_ms']:.2f} / {r[op]['p50_ms']:.2f} / {r[op]['p95_ms']:.2f}"
                 for r in results.values()]
        print(f"| {op} | " + " | ".join(cells) + " |")
    print("| per label (all three) | " + " | ".join(f"{r['per_label_ms']:.2f}" for r in results.values()) + " |")
    print(load_line())
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    with (out / "store_ops.jsonl").open("a") as f:
        f.write(json.dumps({"args": vars(args) | {"db": [d.split("@")[-1] for d in args.db]},
                            "results": results, "time": time.time()}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
