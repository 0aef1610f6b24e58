"""What machine a benchmark ran on, and its measured matmul peak (the MFU denominator).

Every bench script prints `machine_line()` at its start and `load_line()` at its end, so the
numbers in bench/README.md always come with the CPU, cores, threads, bf16 support and the
load average (the machine is shared: other jobs' load changes throughput).
"""
import os
import platform
import time


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_info() -> dict:
    """CPU model, cores, torch threads, bf16 autocast decision, GPU (if any), load average."""
    import torch

    from rm.device import autocast_dtype, cpu_has_fast_bf16, default_device

    device = default_device()
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "device": str(device),
            "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
            "cpu_fast_bf16": cpu_has_fast_bf16(), "autocast": str(autocast_dtype(device)),
            "loadavg": os.getloadavg()}


def machine_line() -> str:
    """One line for logs and the README."""
    m = machine_info()
    gpu = f", GPU {m['gpu']}" if m["gpu"] else ""
    return (f"machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} with {m['torch_threads']} threads{gpu}, "
            f"fast bf16 {m['cpu_fast_bf16']} (autocast {m['autocast']}), load average {load_text()}")


def load_text() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def load_line() -> str:
    return f"load average at end: {load_text()}"


def matmul_peak(dtype=None, n: int = 1024, seconds: float = 3.0) -> float:
    """Measured FLOP/s of an n×n @ n×n torch.matmul in `dtype` on the default device (best of runs)."""
    import torch

    from rm.device import default_device

    device = default_device()
    dtype = dtype or torch.float32
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    torch.matmul(a, b)  # warm-up: thread pool, kernel selection
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        for _ in range(4):
            torch.matmul(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = max(best, 4 * 2 * n ** 3 / (time.perf_counter() - t0))
    return best


if __name__ == "__main__":
    import torch

    print(machine_line())
    print(f"matmul peak fp32: {matmul_peak(torch.float32) / 1e9:.1f} GFLOP/s, "
          f"bf16: {matmul_peak(torch.bfloat16) / 1e9:.1f} GFLOP/s")
