"""profile() end to end on small models, its parts (energy, memory, roofline), and its errors."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
import torch

from frugalml import open_store, profile
from frugalml.errors import InvalidArgumentError
from frugalml.measure.energy import CpuTimeEstimate, RaplMeter, carbon_intensity_g_per_kwh, co2e_g_per_1k_items
from frugalml.measure.memory import RssSampler
from frugalml.measure.roofline import roofline_point

FAST = dict(max_time_s=0.3, energy_min_s=0.05)


def test_profile_digits_mlp_and_store(digits_mlp, sqlite_url: str) -> None:
    p = profile(digits_mlp, batch_sizes="1,16", store=sqlite_url, **FAST)
    assert p.batch_sizes == [1, 16] and p.params == 64 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10
    assert p.params_nonzero <= p.params
    assert p.size_bytes == digits_mlp.weight_files[0].stat().st_size
    assert p.flops_per_item == 2 * (64 * 128 + 128 * 64 + 64 * 10) and p.macs_per_item == p.flops_per_item / 2
    for b in (1, 16):
        s = p.latency_ms[b]
        assert 0 < s.min <= s.p50 <= s.p90 <= s.p95 <= s.p99 <= s.max and s.n >= 10
        assert p.throughput_items_per_s[b] == pytest.approx(b * 1e3 / s.mean)
        assert p.energy_j_per_item[b] > 0 and p.memory[b].peak_rss_bytes > 0
    assert p.energy_source in ("rapl", "estimate")
    assert p.roofline.bound in ("memory", "compute") and p.roofline.device.source == "probe"
    assert {layer.kind for layer in p.roofline.layers} == {"Linear"}
    doc = json.loads(json.dumps(p.to_dict()))
    for key in ("params", "size_bytes", "flops_per_item", "macs_per_item", "latency_ms", "throughput_items_per_s",
                "peak_memory_bytes", "energy_j_per_item", "energy_source", "roofline", "env", "run_id"):
        assert key in doc
    assert set(doc["latency_ms"]["1"]) >= {"p50", "p90", "p95", "p99"} and "bound" in doc["roofline"]
    run = open_store(sqlite_url).get_run(p.run_id)
    assert run.status == "succeeded" and run.kind == "profile" and run.result["run_id"] == p.run_id
    names = {(m.name, m.batch) for m in run.measurements}
    assert {("latency_p95", 1), ("throughput", 16), ("size", None), ("energy_per_item", 16)} <= names


def test_profile_text_model_onnxruntime(minilm) -> None:
    p = profile(minilm, batch_sizes=[2], seq_len=16, runtime="onnxruntime", layers=False, **FAST)
    assert p.runtime == "onnxruntime" and p.seq_len == 16 and p.data == "zoo:stdlib-docs"
    assert p.flops_per_item == pytest.approx(2 * 6 * 16 * (4 * 384**2 + 2 * 384 * 1536) + 2 * 6 * 2 * 16 * 16 * 384
                                             + 2 * 384**2)
    assert p.roofline.layers and all(layer.time_ms is None for layer in p.roofline.layers)


def test_profile_onnx_file_and_region(digits_mlp, tmp_path: Path) -> None:
    path = digits_mlp.export_onnx(tmp_path / "m.onnx")
    p = profile(str(path), batch_sizes=[4], region="fra", **FAST)  # runtime defaults to onnxruntime
    assert p.format == "onnx" and p.runtime == "onnxruntime" and p.flops_source == "onnx-graph" and p.region == "FRA"
    with pytest.raises(InvalidArgumentError, match="runtime='torch'.*onnxruntime"):
        profile(str(path), batch_sizes=[4], runtime="torch", **FAST)
    assert p.co2e_g_per_1k_items[4] == pytest.approx(co2e_g_per_1k_items(p.energy_j_per_item[4],
                                                                         p.carbon_intensity_g_per_kwh))
    assert p.params == digits_mlp.module.net[0].weight.numel() + 128 + 128 * 64 + 64 + 640 + 10


def test_failed_profile_is_recorded_as_failed(digits_mlp, sqlite_url: str, monkeypatch) -> None:
    import frugalml.measure._profile as mod

    def explode(*a, **k):
        raise RuntimeError("device fell off the bus")

    monkeypatch.setattr(mod, "measure_energy", explode)
    with pytest.raises(RuntimeError, match="bus"):
        profile(digits_mlp, batch_sizes=[1], store=sqlite_url, **FAST)
    (run,) = open_store(sqlite_url).list_runs()
    full = open_store(sqlite_url).get_run(run.id)
    assert full.status == "failed" and "bus" in full.error
    assert {m.name for m in full.measurements} == {"run_cpu_time", "run_energy", "run_co2e"}


@pytest.mark.parametrize("kwargs, name", [
    ({"batch_sizes": "0,8"}, "batch_sizes"), ({"batch_sizes": "1,x"}, "batch_sizes"), ({"batch_sizes": []}, "batch_sizes"),
    ({"device": "tpu"}, "device"), ({"runtime": "tensorrt"}, "runtime"), ({"threads": 0}, "threads"),
    ({"region": "Mars"}, "region"), ({"seq_len": 8}, "seq_len"),
])
def test_bad_arguments(digits_mlp, kwargs: dict, name: str) -> None:
    with pytest.raises(InvalidArgumentError, match=name):
        profile(digits_mlp, **{**FAST, **kwargs})


def test_profile_takes_the_items_themselves(digits_mlp, sqlite_url: str) -> None:
    rows = torch.rand(5, 64)  # fewer rows than the batch: repeated to fill it
    for data in (rows, rows.numpy(), rows.tolist()):
        p = profile(digits_mlp, data=data, batch_sizes=[8], layers=False, store=sqlite_url, **FAST)
        assert p.data == "5 given items" and p.latency_ms[8].n >= 10
    assert open_store(sqlite_url).get_run(p.run_id).config["data"] == "5 given items"
    with pytest.raises(InvalidArgumentError, match="data.*dict.*list of texts"):
        profile(digits_mlp, data={"x": rows}, **FAST)
    with pytest.raises(InvalidArgumentError, match="no rows"):
        profile(digits_mlp, data=rows[:0], **FAST)


def test_seq_len_beyond_the_model(minilm) -> None:
    with pytest.raises(InvalidArgumentError, match="seq_len.*256"):
        profile(minilm, seq_len=1000, **FAST)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_cuda_without_gpu(digits_mlp) -> None:
    with pytest.raises(InvalidArgumentError, match="no CUDA GPU"):
        profile(digits_mlp, device="cuda", **FAST)


def test_rapl_meter_reads_and_handles_wraparound(tmp_path: Path) -> None:
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "max_energy_range_uj").write_text("1000000")
    (zone / "energy_uj").write_text("999000")
    (tmp_path / "intel-rapl:0:0").mkdir()  # a sub-zone: not counted twice
    meter = RaplMeter(tmp_path)
    (zone / "energy_uj").write_text("999500")
    assert meter.read_j() == pytest.approx(0.0005)
    (zone / "energy_uj").write_text("500")  # wrapped: +500 to the max, then +500
    assert meter.read_j() == pytest.approx(0.0015)


def test_cpu_estimate_scales_with_cpu_time(monkeypatch) -> None:
    meter = CpuTimeEstimate(watts_per_core=10.0)
    cpu0 = time.process_time()
    start = meter.read_j()
    busy = time.process_time()
    while time.process_time() - busy < 0.05:  # >= 50 ms of CPU between the two readings
        sum(i * i for i in range(10_000))
    joules = meter.read_j() - start
    assert 10.0 * 0.05 <= joules <= 10.0 * (time.process_time() - cpu0)
    monkeypatch.setenv("FRUGAL_CPU_WATTS_PER_CORE", "abc")
    with pytest.raises(InvalidArgumentError, match="FRUGAL_CPU_WATTS_PER_CORE"):
        CpuTimeEstimate()


def test_carbon_intensity_table() -> None:
    g, country = carbon_intensity_g_per_kwh("usa")
    assert 100 < g < 1000 and country == "United States"
    with pytest.raises(InvalidArgumentError, match="Did you mean"):
        carbon_intensity_g_per_kwh("USAA")
    # 3.6 kJ per item x 1,000 items = 3.6 MJ = 1 kWh, at 500 g/kWh
    assert co2e_g_per_1k_items(3600.0, 500.0) == pytest.approx(500.0)


def test_rss_sampler_sees_an_allocation() -> None:
    import mmap
    import time

    size = 64 * 1024 * 1024
    with RssSampler(0.001) as sampler:
        # A fresh anonymous mapping: new pages, never memory the allocator already had resident.
        block = mmap.mmap(-1, size)
        for offset in range(0, size, 4096):
            block[offset] = 1  # touch every page
        time.sleep(0.02)
    block.close()
    assert sampler.peak_bytes - sampler.before_bytes >= 48 * 1024 * 1024 and sampler.samples >= 2


def test_roofline_point_math() -> None:
    peak, bw = 100e9, 10e9  # ridge at 10 FLOP/B
    low = roofline_point(flops=1e9, moved=1e9, seconds=0.5, peak=peak, bandwidth=bw)
    assert low.bound == "memory" and low.attainable_flops_per_s == 10e9 and low.fraction_of_roof == pytest.approx(0.2)
    high = roofline_point(flops=1e11, moved=1e9, seconds=2.0, peak=peak, bandwidth=bw)
    assert high.bound == "compute" and high.attainable_flops_per_s == peak and high.fraction_of_roof == 0.5
    unknown = roofline_point(flops=1e9, moved=1e9, seconds=1.0, peak=math.nan, bandwidth=math.nan)
    assert unknown.bound == "unknown" and unknown.fraction_of_roof is None


def test_precision_is_what_the_matrix_products_run_at(digits_mlp) -> None:
    from frugalml.compress import CastPrecision, QuantizeDynamic, compress
    from frugalml.measure.roofline import precision_of

    assert precision_of(digits_mlp.module) == "fp32"
    assert precision_of(compress(digits_mlp, [CastPrecision(dtype="bf16")]).module) == "bf16"
    # INT8 weights are packed parameters, not nn.Parameters: counted by the layers that hold them.
    assert precision_of(compress(digits_mlp, [QuantizeDynamic(backend="torch")]).module) == "int8"
    # Only the 64x10 output layer in INT8: 640 of 17,024 weight elements.
    mostly_float = compress(digits_mlp, [QuantizeDynamic(backend="torch", include=("net.4",))]).module
    assert precision_of(mostly_float) == "fp32"


def test_profile_of_models_cast_to_half_precision(tmp_path: Path) -> None:
    """Float inputs (pixels) reach a model in its own precision: the bf16 CNN's FLOPs are counted
    (the counter once fed it float32 and failed), and an fp16 ONNX graph takes fp16 inputs."""
    from frugalml import evaluate, load_model
    from frugalml.compress import CastPrecision, ExportOnnx, compress

    cnn = load_model("zoo:digits-cnn")
    full = profile(cnn, batch_sizes=[4], layers=False, **FAST)
    bf16 = profile(compress(cnn, [CastPrecision(dtype="bf16")]), batch_sizes=[4], layers=False, **FAST)
    assert bf16.precision == "bf16" and bf16.flops_per_item == full.flops_per_item > 0
    fp16 = compress(cnn, [CastPrecision(dtype="fp16"), ExportOnnx()])
    assert fp16.format == "onnx"
    p = profile(fp16, batch_sizes=[4], layers=False, **FAST)
    assert p.precision == "fp16" and p.flops_per_item == full.flops_per_item
    assert evaluate(fp16, "zoo:digits", reference=cnn, n_boot=50).overall["agreement"].value > 0.97


def test_gpu_table_matches_device_names() -> None:
    from frugalml.measure.devices import gpu_spec

    assert gpu_spec("NVIDIA H100 80GB HBM3").name == "NVIDIA H100 SXM"
    assert gpu_spec("NVIDIA H100 80GB HBM3").peak_flops["bf16"] == 989e12
    assert gpu_spec("NVIDIA H100 80GB HBM3").bandwidth_bytes_per_s == 3.35e12
    assert gpu_spec("NVIDIA H100 PCIe").name == "NVIDIA H100 PCIe"
    assert gpu_spec("NVIDIA A100-SXM4-80GB").name == "NVIDIA A100 80GB SXM"
    assert gpu_spec("Some Future GPU") is None


def test_in_memory_module_size_and_threads() -> None:
    from safetensors.torch import save

    from frugalml import load_model
    from frugalml.measure import model_size

    module = torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.ReLU(), torch.nn.Linear(20, 3))
    handle = load_model(module, example_inputs=torch.randn(4, 10))
    expected = len(save({k: v.contiguous() for k, v in module.state_dict().items()}))
    assert model_size(handle) == expected
    previous = torch.get_num_threads()
    try:
        p = profile(handle, batch_sizes=[2], threads=1, **FAST)
    finally:
        torch.set_num_threads(previous)
    assert p.threads == 1 and p.env["threads"] == 1 and p.params == 10 * 20 + 20 + 20 * 3 + 3
    assert p.bytes_per_param == pytest.approx(expected / p.params)
