"""The environment fingerprint: CPU features parsed from /proc/cpuinfo text, and the recorded keys."""

from __future__ import annotations

import json

from frugalml.measure.devices import ML_CPU_FEATURES, cpu_features
from frugalml.measure.env import fingerprint

X86 = """processor\t: 0
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512_vnni avx512_bf16 sha_ni
processor\t: 1
flags\t\t: fpu
"""
ARM = "processor\t: 0\nFeatures\t: fp asimd asimddp i8mm bf16 sve\nCPU implementer\t: 0x41\n"


def test_cpu_features_keep_the_ml_relevant_flags_in_a_fixed_order() -> None:
    assert cpu_features(X86) == ["avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"]
    assert cpu_features(ARM) == ["asimd", "asimddp", "i8mm", "bf16", "sve"]
    assert cpu_features("model name : something\n") == []


def test_fingerprint_names_the_cpu_features_and_is_json() -> None:
    fp = fingerprint(threads=2)
    assert fp["threads"] == 2
    assert set(fp["cpu_features"]) <= set(ML_CPU_FEATURES)
    assert isinstance(fp["torch_cpu_capability"], str) and fp["torch_cpu_capability"]
    json.dumps(fp)
