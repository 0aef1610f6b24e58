"""How long the intransitivity analysis takes on the real UKPConvArg1 graph (gold labels,
every vote), with and without bootstrap CIs. Needs ../shared/data/ukpconvarg1.

    python bench/intransitivity.py [--data ../shared/data/ukpconvarg1/pairs.jsonl.gz] [--repeats 3]
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _machine import load_line, machine_line  # noqa: E402

from analysis.intransitivity import analyze, load_comparisons  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ukpconvarg1" / "pairs.jsonl.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(machine_line())
    print(f"{'label':>6} {'n_boot':>6} {'comparisons':>11} {'3-cycles':>8} {'best s':>7}")
    for label in ("gold", "votes"):
        comparisons = load_comparisons(args.data, "ukp", label)
        for n_boot in (0, 100):
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                report = analyze(comparisons, n_boot=n_boot)
                times.append(time.perf_counter() - start)
            print(f"{label:>6} {n_boot:>6} {len(comparisons):>11,} {report.cycles_3:>8,} {min(times):>7.2f}")
    print(load_line())


if __name__ == "__main__":
    main()
