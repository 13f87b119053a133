"""Bit widths for INT8 matrix products on this CPU, so that no sum of INT8 products overflows.

x86 CPUs without VNNI multiply INT8 pairs with ``vpmaddubsw``: an unsigned 8-bit activation times a
signed 8-bit weight, two adjacent products summed into a *saturating* 16-bit integer. Two products
of 255 x 127 (64,770) do not fit in 32,767, and the sum is silently clipped. All three INT8 backends
run such kernels there: on an AVX2 EPYC, a 384-long dot product whose true value is 383 came back
as 193 to 194 from PyTorch's fbgemm, from oneDNN compiled by TorchInductor and from ONNX Runtime
alike (tests/compress/test_int8.py runs that case).

Keeping one operand to 7 bits makes every pair sum fit: 255 x 64 x 2 = 32,640. PyTorch's own
dynamic Linear keeps activations to 7 bits; ONNX Runtime's ``reduce_range`` option (documented for
non-VNNI machines) keeps weights to 7 bits instead, which costs less: weights have one scale per output
channel, activations one per tensor (zoo:minilm with PyTorch's INT8 on AVX2 CPUs, mean cosine to
FP32: 0.9917 with 7-bit weights, benchmarks/results/compress_minilm_cpu_2026-11-30_avx2.json; 0.9745
with 7-bit activations, compress_minilm_cpu_2026-11-23_avx2.json). So frugalml keeps the weights to
7 bits and the activations at 8 where the sums can saturate.

With VNNI (AVX512-VNNI; AVX-VNNI on newer AVX2 CPUs; every AMX CPU has it) the products are
accumulated in 32 bits, and both operands keep 8 bits. fbgemm's VNNI kernels are AVX-512 only;
oneDNN and ONNX Runtime use AVX-VNNI too. Arm kernels widen before they sum.
"""

from __future__ import annotations

import platform
from typing import Any, NamedTuple

__all__ = ["BACKENDS", "Int8Bits", "check_weight_bits", "int8_bits", "wide_sums", "x86_cpu"]

BACKENDS = ("torch", "inductor", "onnxruntime")
_X86 = ("x86_64", "amd64", "i686", "x86")
# CPU features whose INT8 instructions accumulate in 32 bits, per backend's kernels.
_VNNI = {"torch": ("avx512_vnni",), "inductor": ("avx512_vnni", "avx_vnni", "amx_int8"),
         "onnxruntime": ("avx512_vnni", "avx_vnni", "amx_int8")}


class Int8Bits(NamedTuple):
    """Bits an INT8 backend uses here: activations (unsigned, one scale per tensor, set per batch)
    and weights (signed, one scale per output channel or per tensor)."""

    activations: int
    weights: int


def x86_cpu(machine: str | None = None) -> bool:
    """Whether this machine's CPU (or ``machine``, a ``platform.machine()`` value) is x86."""
    return (platform.machine() if machine is None else machine).lower() in _X86


def check_weight_bits(value: Any, argument: str = "weight_bits") -> Any:
    """``value`` if it is ``"auto"``, 7 or 8; otherwise a named error."""
    from frugalml.errors import InvalidArgumentError

    if not (value == "auto" or (type(value) is int and value in (7, 8))):
        raise InvalidArgumentError(argument, value, "must be auto, 7 or 8",
                                   "Use weight_bits: auto (7 only where INT8 sums can overflow, CPUs without VNNI).")
    return value


def wide_sums(backend: str, *, features: list[str] | None = None, machine: str | None = None) -> bool:
    """Whether ``backend``'s INT8 kernels sum INT8 products without 16-bit saturation on this CPU
    (``features`` / ``machine``: decide for another CPU's features / ``platform.machine()``)."""
    from frugalml.measure.devices import cpu_features

    if not x86_cpu(machine):
        return True
    present = cpu_features() if features is None else features
    return any(f in present for f in _VNNI[backend])


def int8_bits(backend: str, weight_bits: Any = "auto", *, features: list[str] | None = None,
              machine: str | None = None, engine: str | None = None) -> Int8Bits:
    """The bits ``backend`` (torch, inductor or onnxruntime) quantizes with on this CPU.

    ``weight_bits``: ``"auto"`` keeps weights to 7 bits only where the sums can saturate; 7 always
    (a model built here for a CPU without VNNI); 8 always, in which case torch and inductor keep the
    activations to 7 bits where the sums can saturate, and ONNX Runtime, whose activations are
    always 8-bit, may overflow there (its own default). ``engine``: PyTorch's quantized engine
    (default ``torch.backends.quantized.engine``); engines other than x86 / fbgemm keep PyTorch's
    7-bit activations.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    check_weight_bits(weight_bits)
    wide = wide_sums(backend, features=features, machine=machine)
    weights = 8 if weight_bits == 8 or (weight_bits == "auto" and wide) else 7
    if backend == "torch":
        import torch

        if (torch.backends.quantized.engine if engine is None else engine) not in ("x86", "fbgemm"):
            return Int8Bits(7, weights)
    if backend == "onnxruntime":
        return Int8Bits(8, weights)
    return Int8Bits(8 if wide or weights == 7 else 7, weights)
