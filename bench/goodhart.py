"""Time a full Goodhart curve: 16 prompts × N=64 samples × 64 new tokens, scored and fitted.

  .venv/bin/python bench/goodhart.py [--proxy DIR] [--n-prompts 16] [--n 64] [--max-new-tokens 64]
                                     [--batch-size 128] [--threads T] [--json]

Stages, each timed: loading the policy (SmolLM2-135M-Instruct GGUF), sampling (generated
tokens per second; samples stop at EOS, so this counts tokens actually produced, and also
the nominal prompts×N×max_new_tokens per second), scoring every sample with the proxy RM,
and the curves (estimator, fits, plot). The gold is the arithmetic checker on arithmetic
false-claim prompts, so no second RM is needed. Samples go to a fresh temporary cache, so
sampling is always timed.

The proxy is `--proxy`, else the first checkpoint found in `runs/rm/default`,
`runs/capstone/curated`; else the MiniLM backbone with a fresh (untrained) head, which the
output says: scoring time does not depend on the head's weights, the curve's shape does.
Target: the whole curve in 5 minutes or less on 2 cores.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root: analysis, rm, bench

from bench._machine import load_line, machine_info, machine_line  # noqa: E402

CANDIDATES = ("runs/rm/default", "runs/capstone/curated")


def proxy_scorer(path: str | None):
    """(scorer, description): the given or first found checkpoint, else MiniLM with a fresh head."""
    from rm.defaults import default_backbone
    from rm.model import build_reward_model
    from rm.score import Scorer, load_scorer

    found = path or next((c for c in CANDIDATES if (Path(c) / "config.json").is_file()
                          or any(Path(c).glob("member_*"))), None)
    if found:
        return load_scorer(found), f"trained RM at {found}"
    return (Scorer([build_reward_model(default_backbone())], name="minilm-fresh-head"),
            "MiniLM backbone with a FRESH, UNTRAINED head (no trained checkpoint found): timings are real, "
            "the curve's shape is not meaningful")


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxy", default=None, help="proxy RM checkpoint (default: see module docstring)")
    parser.add_argument("--n-prompts", type=int, default=16, help="arithmetic false-claim prompts")
    parser.add_argument("--n", type=int, default=64, help="samples per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="new tokens per sample at most")
    parser.add_argument("--batch-size", type=int, default=128, help="sample rows per decode batch")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads while sampling and scoring (default: torch's)")
    parser.add_argument("--plot", default="bench/out/goodhart.png", help="where the curve PNG goes")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args(argv)

    import torch

    from analysis import goodhart as G
    from analysis.policy import load_policy
    from rm.device import torch_threads

    print(machine_line(), flush=True)
    result = {"machine": machine_info(), "config": vars(args)}
    policy, result["load_policy_s"] = timed(load_policy)
    result["policy_dtype"] = str(policy.dtype)
    proxy, result["proxy"] = proxy_scorer(args.proxy)
    prompts = G.load_prompts("arithmetic", args.n_prompts, seed=0)
    sampling = G.SamplingConfig(n=args.n, max_new_tokens=args.max_new_tokens)
    with tempfile.TemporaryDirectory() as cache:
        (samples, _, _), gen_s = timed(G.cached_samples, prompts, sampling, None, cache, args.batch_size,
                                       threads=args.threads)
    tokens = int(samples["n_tokens"].sum())
    nominal = args.n_prompts * args.n * args.max_new_tokens
    result.update(sampling_threads=args.threads or torch.get_num_threads(), sampling_s=gen_s,
                  generated_tokens=tokens, tokens_per_s=tokens / gen_s,
                  nominal_tokens=nominal, nominal_tokens_per_s=nominal / gen_s,
                  finished_share=float(samples["finished"].mean()), mean_tokens=float(samples["n_tokens"].mean()),
                  load_after_sampling=machine_info()["loadavg"])
    print(f"sampling with {result['sampling_threads']} torch threads: {gen_s:.1f} s, {tokens} tokens generated "
          f"({tokens / gen_s:.0f} tok/s; nominal "
          f"{nominal} = {nominal / gen_s:.0f} tok/s), {result['finished_share']:.0%} stopped at EOS", flush=True)
    with torch_threads(args.threads):
        scored, result["scoring_s"] = timed(G.score_samples, samples, proxy, G.ArithmeticChecker())
    print(f"scoring {len(scored)} responses with {result['proxy']}: {result['scoring_s']:.1f} s", flush=True)
    curve, result["curve_s"] = timed(G.analyze, scored)
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    _, result["plot_s"] = timed(lambda: G.plot_goodhart(curve).savefig(args.plot, dpi=120))
    result["total_s"] = gen_s + result["scoring_s"] + result["curve_s"] + result["plot_s"]
    result["total_with_load_s"] = result["total_s"] + result["load_policy_s"]
    result["fits"] = {k: vars(v) for k, v in curve.fits.items()}
    result["n_star_empirical"] = curve.n_star_empirical
    result["load_end"] = machine_info()["loadavg"]
    print(f"curves + fit: {result['curve_s']:.2f} s, plot: {result['plot_s']:.2f} s -> {args.plot}")
    print(G.summary(curve))
    print(f"TOTAL curve (sample + score + fit + plot): {result['total_s']:.1f} s "
          f"(+ {result['load_policy_s']:.1f} s loading the policy); target <= 300 s")
    print(load_line())
    if args.json:
        print(json.dumps(result, default=str))
    return result


if __name__ == "__main__":
    main()
