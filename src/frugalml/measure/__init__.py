"""Measurement: `profile()` and its parts (latency, FLOPs, memory, energy, roofline, devices, env)."""

from frugalml.measure._profile import Profile, model_size, profile
from frugalml.measure.devices import KNOWN_GPUS, DeviceSpec
from frugalml.measure.flops import FlopCount, count_onnx_flops, count_torch_flops
from frugalml.measure.latency import LatencyStats, measure_latency
from frugalml.measure.roofline import Roofline

__all__ = [
           "KNOWN_GPUS",
           "DeviceSpec",
           "FlopCount",
           "LatencyStats",
           "Profile",
           "Roofline",
           "count_onnx_flops",
           "count_torch_flops",
           "measure_latency",
           "model_size",
           "profile",
]
