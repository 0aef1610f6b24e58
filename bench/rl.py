"""Time an RL Goodhart curve: RLOO + LoRA on SmolLM2-135M-Instruct against a proxy RM, 30 steps.

  .venv/bin/python bench/rl.py --proxy runs/capstone/biased/rm [--steps 30] [--threads 1] [--json]

Everything else is analysis.rl's defaults (RLConfig): the mixed single-digit prompts, the
truthful checker as gold, 2 prompts x 4 samples per step, 24 new tokens, LoRA r 8 on the last
8 blocks, an evaluation on 12 held-out prompts x 2 samples at steps 0, 10, 20, 30. The run
goes to a fresh folder (force), so nothing is read from a cache. Prints the machine and the
load average at start and end, the time of the whole curve (policy load included and apart),
seconds per step and per evaluation, and the curve with its Gao RL fit. It also prints the
CPU seconds the process got: on a machine shared with other jobs the wall time measures the
load as much as the code, and with one thread CPU seconds are what an idle machine would take.
`--budget-s` stops the run (with a last evaluation) once that much wall time has passed.
Target: the 30-step curve in 10 minutes or less on 2 cores.
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root: analysis, rm, bench

from bench._machine import load_line, machine_info, machine_line  # noqa: E402


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxy", default="runs/capstone/biased/rm", help="proxy RM checkpoint")
    parser.add_argument("--prompts", default="mixed", help="prompt source (analysis.gold)")
    parser.add_argument("--steps", type=int, default=30, help="RL steps")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", default="bench/out/rl", help="run folder")
    parser.add_argument("--budget-s", type=float, default=None, help="stop after this many wall seconds")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args(argv)

    from analysis import rl as R
    from analysis.cli import jsonable
    from analysis.policy import load_policy
    from rm.device import torch_threads

    print(machine_line(), flush=True)
    result = {"machine": machine_info(), "args": vars(args)}
    t0, cpu0 = time.perf_counter(), time.process_time()
    with torch_threads(args.threads):
        policy = load_policy()
    result["load_policy_s"] = time.perf_counter() - t0
    config = R.RLConfig(proxy=[args.proxy], prompts=args.prompts, steps=args.steps, threads=args.threads,
                        out=args.out, force=True)
    t1, cpu1 = time.perf_counter(), time.process_time()
    over = (lambda: time.perf_counter() - t0 > args.budget_s) if args.budget_s else None
    run, report = R.run(config, policy=policy, stop=over)
    result["curve_s"], result["curve_cpu_s"] = time.perf_counter() - t1, time.process_time() - cpu1
    result["load_policy_cpu_s"] = cpu1 - cpu0
    result["steps_done"] = int(run.train_log["step"].max())
    log = run.train_log
    result.update(total_s=result["curve_s"] + result["load_policy_s"], step_s_mean=float(log["seconds"].mean()),
                  eval_s=run.curve["eval_seconds"].tolist(), curve=run.curve, fit=run.fit,
                  train_proxy_first5=float(log["proxy"].head(5).mean()),
                  train_proxy_last5=float(log["proxy"].tail(5).mean()), load_end=machine_info()["loadavg"],
                  plot=report["plot"], policy_dtype=str(policy.dtype))
    print(R.summary(run))
    print(f"train proxy (mean of first 5 steps -> last 5): {result['train_proxy_first5']:.3f} -> "
          f"{result['train_proxy_last5']:.3f}; {result['step_s_mean']:.1f} s per step; evaluations "
          + ", ".join(f"{s:.0f}" for s in result["eval_s"]) + " s")
    print(f"TOTAL {result['steps_done']}-step curve: {result['curve_s']:.0f} s wall, {result['curve_cpu_s']:.0f} CPU s "
          f"(+ {result['load_policy_s']:.0f} s, {result['load_policy_cpu_s']:.0f} CPU s loading the policy, "
          f"{policy.dtype}); target <= 600 s for 30 steps. Plot: {report['plot']}")
    print(load_line())
    if args.json:
        print(json.dumps(jsonable(result)))
    return result


if __name__ == "__main__":
    main()
