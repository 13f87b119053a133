"""Measurement: `profile()`, `compare_latency()` and their parts (latency, FLOPs, memory, energy, roofline, devices, env)."""

from frugalml.measure._compare import Comparison, Contender, compare_latency
from frugalml.measure._profile import Profile, model_size, profile
from frugalml.measure.devices import KNOWN_GPUS, DeviceSpec
from frugalml.measure.flops import FlopCount, count_onnx_flops, count_torch_flops
from frugalml.measure.latency import LatencyStats, measure_latency
from frugalml.measure.roofline import Roofline

__all__ = [
           "KNOWN_GPUS",
           "Comparison",
           "Contender",
           "DeviceSpec",
           "FlopCount",
           "LatencyStats",
           "Profile",
           "Roofline",
           "compare_latency",
           "count_onnx_flops",
           "count_torch_flops",
           "measure_latency",
           "model_size",
           "profile",
]
