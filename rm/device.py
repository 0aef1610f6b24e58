"""One place that decides device and precision: bf16 autocast where the hardware has it, else fp32.

Detect, don't assume: a CPU does bf16 matmuls fast only with AVX512-BF16 or AMX; without them
bf16 autocast is slower than fp32.
"""
from contextlib import contextmanager
from functools import lru_cache

import torch

PRECISIONS = ("auto", "bf16", "fp32")


@lru_cache(maxsize=None)
def cpu_has_fast_bf16() -> bool:
    """True when the CPU has AVX512-BF16 or AMX tiles (torch's own CPUID probes)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def default_device() -> torch.device:
    """The first CUDA GPU if there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast_dtype(device: torch.device | str | None = None, precision: str = "auto") -> torch.dtype | None:
    """bf16 when asked for, or when `precision="auto"` and the device runs bf16 fast; None means fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return None
    device = torch.device(device) if device is not None else default_device()
    fast = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_fast_bf16()
    return torch.bfloat16 if precision == "bf16" or fast else None


def mixed_precision_name(dtype: torch.dtype | None) -> str:
    """The accelerate `mixed_precision` string for an autocast dtype."""
    return "bf16" if dtype == torch.bfloat16 else "no"


@contextmanager
def torch_threads(n: int | None):
    """Run the block with `n` intra-op CPU threads (None: unchanged), then restore the old count.

    On a machine shared with other busy processes, fewer threads than cores avoids threads
    waiting on each other at every op (measured here: 1 thread 3x faster than 2 under load).
    """
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# Attention kernel per (device type, autocast dtype; None = fp32). On CPU under bf16 autocast
# (AVX512-BF16), torch's SDPA flash kernel took 36% of a MiniLM training step (its backward alone
# 976 ms of 2.7 s) against ~5% of the FLOPs; the plain matmul-softmax ("eager") path trained
# 15-40% faster and scored no slower. In fp32 (a CPU without fast bf16) SDPA was the faster one:
# 13% per training step at 256 tokens, equal at 96 (bench/README.md).
ATTENTION = {("cpu", torch.bfloat16): "eager", ("cpu", None): "sdpa"}


def attention_implementation(device: torch.device | str, dtype: torch.dtype | None = None) -> str:
    """The transformers `attn_implementation` to use on `device` under autocast `dtype` (None: fp32)."""
    return ATTENTION.get((torch.device(device).type, dtype), "sdpa")


def use_attention(model, device: torch.device | str, choice: str = "auto", dtype: torch.dtype | None = None) -> None:
    """Switch a transformers model to the attention kernel for `device` and `dtype` ("auto") or to `choice`."""
    choice = attention_implementation(device, dtype) if choice == "auto" else choice
    if hasattr(model, "set_attn_implementation") and model.config._attn_implementation != choice:
        model.set_attn_implementation(choice)
