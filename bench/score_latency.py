"""Latency of scoring two responses side by side (one prompt, two 200-token answers): p50/p99.

  .venv/bin/python bench/score_latency.py [--rm DIR] [--repeats 200] [--url http://127.0.0.1:7860]
        [--threads 1,2] [--attention sdpa,eager] [--int8]

In process: `Scorer.score(prompt, [a, b])`, the call the app makes for a side-by-side
comparison (both responses in one batch). Over HTTP: the same through a running app's `score`
endpoint via gradio_client (`--url`; the same checkpoint is passed as the endpoint's `model`);
without `--url`, or if the app has no `score` endpoint, only the in-process numbers are reported. Texts are synthetic (fixed words), cut to exactly
`--response-tokens` tokens, so no data file is needed. Without `--rm`, the default MiniLM with a
fresh head is scored: latency does not depend on the head's weights. `--threads` and
`--attention` time every combination side by side, interleaved round by round (the load drifts).
`--int8` adds the same scorer with torch's dynamic int8 quantisation of every backbone Linear
(`torch.ao.quantization.quantize_dynamic`, deprecated in torch 2.13) to that comparison, and
reports how far its scores move.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root: rm, bench

from bench._machine import load_line, machine_line  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
WORDS = ("the reward model reads a prompt and a response and returns one number that says how good the "
         "response is compared with other answers to the same question").split()


def text_of_tokens(tokenizer, n: int, offset: int = 0) -> str:
    """A synthetic text that tokenizes to exactly n tokens (no special tokens)."""
    words = [WORDS[(i + offset) % len(WORDS)] for i in range(2 * n)]
    ids = tokenizer(" ".join(words), add_special_tokens=False)["input_ids"][:n]
    return tokenizer.decode(ids)


def percentiles(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1e3
    return {"n": len(ms), "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(ms.mean()), "min_ms": float(ms.min())}


def time_calls(fn, repeats: int, warmup: int = 5) -> dict:
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - t0)
    return percentiles(seconds)


def interleaved(calls: dict, repeats: int, warmup: int = 5) -> dict:
    """Time each named call `repeats` times, one call of each per round, so load drift hits all alike."""
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    seconds = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            t0 = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - t0)
    return {name: percentiles(s) for name, s in seconds.items()}


def configured_call(scorer, threads: int, attention: str, prompt: str, a: str, b: str):
    """scorer.score(prompt, [a, b]) with `threads` CPU threads and the given attention kernel."""
    from rm.device import use_attention

    def call():
        for m in scorer.models:
            use_attention(m.body, scorer.device, attention)
        scorer.num_threads = threads
        return scorer.score(prompt, [a, b])
    return call


def int8_scorer(scorer):
    """A copy of `scorer` whose backbones' Linear layers run dynamically quantised int8 matmuls
    (the fp32 reward head is kept)."""
    import copy

    import torch
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

    quantized = copy.deepcopy(scorer)
    for m in quantized.models:  # every Linear but a native head (one output, run in fp32 by rm.model)
        spec = {name: default_dynamic_qconfig for name, layer in m.body.named_modules()
                if isinstance(layer, torch.nn.Linear) and layer.out_features > 1}
        m.body = quantize_dynamic(m.body, spec)
    return quantized


def load(rm: str | None):
    from rm.defaults import default_backbone
    from rm.model import build_reward_model
    from rm.score import Scorer, load_scorer

    return load_scorer(rm) if rm else Scorer([build_reward_model(default_backbone())], name="minilm-fresh-head")


def http_score(url: str, model: str = "", api_name: str = "/score"):
    """A callable (prompt, a, b) -> result through gradio_client, or None with the reason.

    The app's `score(prompt, response_a, response_b, model)`; model "" = its newest checkpoint.
    """
    from gradio_client import Client

    client = Client(url, verbose=False)
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    if api_name not in endpoints:
        return None, f"the app at {url} has no {api_name} endpoint (it has {sorted(endpoints)})"
    return (lambda prompt, a, b: client.predict(prompt, a, b, model, api_name=api_name)), None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rm", default=None, help="checkpoint folder (default: MiniLM with a fresh head)")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--response-tokens", type=int, default=200)
    parser.add_argument("--prompt-tokens", type=int, default=40)
    parser.add_argument("--url", default=None, help="a running app (python app.py) to time over HTTP")
    parser.add_argument("--threads", default=None, help="comma list of CPU thread counts to compare (e.g. 1,2)")
    parser.add_argument("--attention", default=None, help="comma list of attention kernels to compare (sdpa,eager)")
    parser.add_argument("--int8", action="store_true", help="also time a dynamically int8-quantised copy, side by side")
    args = parser.parse_args(argv)

    print(machine_line(), flush=True)
    scorer = load(args.rm)
    tok = scorer.models[0].tokenizer
    prompt = text_of_tokens(tok, args.prompt_tokens, offset=3)
    a, b = text_of_tokens(tok, args.response_tokens), text_of_tokens(tok, args.response_tokens, offset=7)
    results = {"scorer": scorer.name, "dtype": str(scorer.dtype), "response_tokens": args.response_tokens,
               "prompt_tokens": args.prompt_tokens}
    if args.int8:
        quantized = int8_scorer(scorer)
        moved = np.abs(quantized.score(prompt, [a, b]).mean - scorer.score(prompt, [a, b]).mean).max()
        results["int8_max_score_change"] = float(moved)
        results["in_process"] = interleaved({"as loaded": lambda: scorer.score(prompt, [a, b]),
                                             "int8 dynamic": lambda: quantized.score(prompt, [a, b])}, args.repeats)
        for name, r in results["in_process"].items():
            print(f"in process, 2 x {args.response_tokens}-token responses, {name}: {json.dumps(r)}", flush=True)
        print(f"int8 moves the scores by at most {moved:.4f}", flush=True)
    elif args.threads or args.attention:
        from rm.device import attention_implementation

        default = attention_implementation(scorer.device, scorer.dtype)
        calls = {f"{t} threads, {k}": configured_call(scorer, int(t), k, prompt, a, b)
                 for t in (args.threads or str(torch_threads_now())).split(",")
                 for k in (args.attention or default).split(",")}
        results["in_process"] = interleaved(calls, args.repeats)
        for name, r in results["in_process"].items():
            print(f"in process, 2 x {args.response_tokens}-token responses, {name}: {json.dumps(r)}", flush=True)
    else:
        results["in_process"] = time_calls(lambda: scorer.score(prompt, [a, b]), args.repeats)
        print(f"in process, 2 x {args.response_tokens}-token responses: {json.dumps(results['in_process'])}", flush=True)
    if args.url:
        call, why = http_score(args.url, str(Path(args.rm).resolve()) if args.rm else "")
        if call is None:
            results["http"] = why
        else:
            results["http"] = time_calls(lambda: call(prompt, a, b), max(20, args.repeats // 4))
        print(f"HTTP via gradio_client: {json.dumps(results['http'])}")
    else:
        print("HTTP: not measured (no --url: start the app, e.g. `python app.py --port 7860`, and pass its URL)")
    print(load_line())
    results["load_end"] = load_line()
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "score_latency.jsonl", "a") as f:
        f.write(json.dumps({"args": vars(args), "machine": machine_line(), **results}) + "\n")
    return results


def torch_threads_now() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
