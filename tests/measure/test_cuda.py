"""The CUDA path: events, NVML energy, allocator peak, the device table. Skipped without a GPU."""

from __future__ import annotations

import pytest
import torch

from frugalml import profile

pytestmark = pytest.mark.cuda


def test_profile_on_cuda(digits_mlp) -> None:
    p = profile(digits_mlp, batch_sizes=[1, 64], device="cuda", max_time_s=1.0, energy_min_s=0.5)
    assert p.device == "cuda" and p.env["gpu"]["name"] == torch.cuda.get_device_name()
    assert all(p.memory[b].cuda_max_allocated_bytes > 0 for b in (1, 64))
    assert p.peak_memory_bytes == max(p.memory[b].cuda_max_allocated_bytes for b in (1, 64))
    assert p.energy_source == "nvml" and all(p.energy_j_per_item[b] > 0 for b in (1, 64))
    assert p.latency_ms[1].p50 > 0


def test_cuda_timer_measures_device_time() -> None:
    from frugalml.measure.latency import cuda_timer

    a = torch.randn(4096, 4096, device="cuda")
    timer = cuda_timer()
    timer(lambda: a @ a)
    small = timer(lambda: a[:256, :256] @ a[:256, :256])
    large = timer(lambda: a @ a @ a)
    assert 0 < small < large


def test_known_gpu_has_table_peaks() -> None:
    from frugalml.measure.devices import device_spec, gpu_spec

    spec = device_spec("cuda", threads=1)
    if gpu_spec(torch.cuda.get_device_name()) is None:
        pytest.skip(f"{torch.cuda.get_device_name()} is not in the device table")
    assert spec.source == "table" and spec.bandwidth_bytes_per_s > 1e11
