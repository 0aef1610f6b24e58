import pytest
import torch

from rm import device


def test_fp32_and_bf16_on_request():
    assert device.autocast_dtype("cpu", "fp32") is None
    assert device.autocast_dtype("cpu", "bf16") == torch.bfloat16


def test_auto_follows_the_cpu_probe(monkeypatch):
    monkeypatch.setattr(device, "cpu_has_fast_bf16", lambda: False)
    assert device.autocast_dtype("cpu") is None
    monkeypatch.setattr(device, "cpu_has_fast_bf16", lambda: True)
    assert device.autocast_dtype("cpu") == torch.bfloat16
    assert device.mixed_precision_name(torch.bfloat16) == "bf16" and device.mixed_precision_name(None) == "no"


def test_unknown_precision():
    with pytest.raises(ValueError, match="precision must be one of"):
        device.autocast_dtype("cpu", "fp8")


def test_attention_kernel_follows_device_and_precision():
    assert device.attention_implementation("cpu", torch.bfloat16) == "eager"
    assert device.attention_implementation("cpu", None) == "sdpa"
    assert device.attention_implementation("meta", None) == "sdpa"  # anything else: transformers' default
