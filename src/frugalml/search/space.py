"""The recipe space: which recipes a search may try, for a model, a context and technique families.

A trial draws its recipe define-by-run (Optuna's ``suggest_*``), so parameters exist only when their
technique does. Recipes are built in the order that composes: structural changes first (drop
layers, prune FFN width or channels), distillation to recover from them, low-rank factorization,
then the runtime (ONNX export with graph optimization), and quantization last. Each recipe also
carries its *components*, short keys such as ``lowrank@0.05`` (technique and severity): the search
screens every technique alone at its mildest setting first, and a technique that breaks the quality
budget on its own is not combined further, at that setting or any harsher one (accuracy-aware
pruning of the space).

What the contexts allow:

- cpu contexts: ``structure`` (none | drop_layers | prune_ffn | prune_heads for transformer encoders; none |
  channels for other models), ``lowrank`` energy, ``runtime`` (torch | onnx), ``quantize`` (none |
  dynamic | static INT8; dynamic may keep the most sensitive layers in FP32 until a fidelity
  target holds, ``keep_fp32: auto``, and a PyTorch model's dynamic INT8 runs eagerly or, on x86
  CPUs, compiled by TorchInductor, ``torch_int8: torch | inductor``; and ``bf16``, a PyTorch cast,
  only on CPUs with native BF16 math: AVX512-BF16, AMX or Arm BF16, where it keeps FP32 quality at
  up to twice the speed);
- a PyTorch model frugalml cannot rebuild without its code (a user's own ``nn.Module`` passed to
  ``optimize(model=...)``) is saved as ONNX, so on the cpu contexts every one of its recipes runs
  as ONNX (``runtime`` is not drawn; no BF16 cast or PyTorch INT8, which have no ONNX form): what
  is measured is what is saved;
- tinyml: every recipe ends in static INT8 (the only arithmetic a microcontroller runtime has);
- cloud-gpu: ``structure`` (none | drop_layers, with distillation), ``precision`` (fp32 | bf16 | fp16 |
  int8 weight-only | int8 dynamic | int4 weight-only | fp8, torchao), ``sparsity`` (none | 2:4 semi-
  structured with the pattern fixed during distillation; float precisions only) and ``compile``
  (none | default | reduce-overhead: TorchInductor kernels, and CUDA graphs, one per shape). Every
  candidate is measured on the GPU (CUDA events, NVML energy) and evaluated there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from frugalml.compress import Recipe
from frugalml.compress._int8 import wide_sums, x86_cpu
from frugalml.compress.distill import Distill
from frugalml.compress.gpu import QuantizeWeights, Sparsify24
from frugalml.compress.lowrank import LowRank
from frugalml.compress.prune import DropLayers, PruneStructured
from frugalml.compress.quantize import CastPrecision, QuantizeDynamic, QuantizeStatic
from frugalml.compress.runtime import Compile, ExportOnnx
from frugalml.gate.contexts import Context
from frugalml.measure.devices import native_bf16_cpu
from frugalml.models import ModelHandle

__all__ = ["Candidate", "is_encoder", "onnx_only", "screening_params", "suggest"]


@dataclass(frozen=True)
class Candidate:
    recipe: Recipe
    # "technique@severity", e.g. ("structure=drop_layers@2", "lowrank@0.05", "quantize=static@0"):
    # the severity orders settings of one technique, harsher is larger (layers removed, fraction
    # pruned, spectral energy discarded).
    components: tuple[str, ...]
    params: dict[str, Any]


def implied_broken(component: str, broken: set[str]) -> str | None:
    """The broken component that rules ``component`` out: the same technique, at most as harsh.
    If removing one layer breaks quality alone, removing two is not tried in any combination."""
    name, _, severity = component.rpartition("@")
    for other in broken:
        other_name, _, other_severity = other.rpartition("@")
        if other_name == name and float(severity) >= float(other_severity):
            return other
    return None


def is_encoder(handle: ModelHandle) -> bool:
    return handle.input_spec.kind == "text" and bool(handle.metadata.get("num_layers") or
                                                     handle.metadata.get("hidden_size"))


def onnx_only(handle: ModelHandle) -> bool:
    """Whether a PyTorch model's compressed versions can only be saved as ONNX (its architecture
    cannot be rebuilt from safetensors without its code)."""
    from frugalml.compress.artifact import rebuildable

    return handle.module is not None and not rebuildable(handle.module)


def _layers(handle: ModelHandle) -> int:
    from frugalml.compress.prune import encoder_layers

    return len(encoder_layers(handle.module)[2]) if handle.module is not None else 0


def suggest(trial: Any, handle: ModelHandle, context: Context, families: set[str], *, distill_items: int) -> Candidate:
    """Draw one recipe for ``trial`` (an Optuna trial or anything with ``suggest_categorical`` / ``params``)."""
    steps: list[Any] = []
    parts: list[str] = []
    text = handle.input_spec.kind == "text"
    encoder = is_encoder(handle) and handle.module is not None
    torch_model = handle.module is not None
    lr = 5e-5 if text else 1e-3
    distill = Distill(epochs=1, max_items=distill_items, lr=lr) if text else Distill(epochs=3, lr=lr)

    if "prune" in families and torch_model:
        if context.device == "cuda":
            options = ["none", "drop_layers"] if encoder else ["none"]
        else:
            options = ["none", "drop_layers", "prune_ffn", "prune_heads"] if encoder else ["none", "channels"]
        structure = trial.suggest_categorical("structure", options)
        if structure == "drop_layers":
            n = _layers(handle)
            keep = trial.suggest_categorical("keep_layers", [max(1, n - 2), n - 1])
            steps.append(DropLayers(keep=keep))
            parts.append(f"structure=drop_layers@{_layers(handle) - keep}")
        elif structure == "prune_ffn":
            amount = trial.suggest_categorical("ffn_amount", [0.25, 0.5])
            steps.append(PruneStructured(target="ffn", amount=amount))
            parts.append(f"structure=prune_ffn@{amount}")
        elif structure == "prune_heads":
            amount = trial.suggest_categorical("heads_amount", [0.25, 0.5])
            steps.append(PruneStructured(target="heads", amount=amount))
            parts.append(f"structure=prune_heads@{amount}")
        elif structure == "channels":
            amount = trial.suggest_categorical("channel_amount", [0.25, 0.5])
            steps.append(PruneStructured(target="channels", amount=amount))
            parts.append(f"structure=channels@{amount}")
        if structure != "none" and "distill" in families:
            steps.append(distill)  # structural pruning always gets its quality recovered when allowed
    if "lowrank" in families and torch_model and context.device == "cpu":
        energy = trial.suggest_categorical("lowrank", ["none", "0.95", "0.9"])
        if energy != "none":
            steps.append(LowRank(energy=float(energy)))
            parts.append(f"lowrank@{1 - float(energy):.2f}")
    if context.device == "cuda":
        _suggest_gpu(trial, steps, parts, families, torch_model, distill_items)
        return Candidate(Recipe(steps), tuple(parts), dict(trial.params))

    as_onnx = onnx_only(handle)
    if context.int8_only:
        quantize = "static"
    elif "quantize" in families:
        quantize = trial.suggest_categorical("quantize", _cpu_quantize_options(torch_model and not as_onnx))
    else:
        quantize = "none"
    if quantize == "bf16":  # a PyTorch model cast: ONNX Runtime has no fast BF16 CPU kernels
        steps.append(CastPrecision(dtype="bf16"))
        parts.append("quantize=bf16@0")
        return Candidate(Recipe(steps), tuple(parts), dict(trial.params))
    onnx = (not torch_model) or as_onnx or quantize == "static" or (
        "runtime" in families and trial.suggest_categorical("runtime", ["torch", "onnx"]) == "onnx")
    if onnx and torch_model and quantize != "static":
        # Static quantization exports the plain graph itself: ONNX Runtime's calibrator needs the
        # unfused operators (an offline-fused graph hides the activations it must observe).
        steps.append(ExportOnnx(optimize="graph"))
        if not as_onnx:  # for a model saved as ONNX the export is the format, not a technique
            parts.append("runtime=onnx@0")
    if quantize == "dynamic":
        keep = trial.suggest_categorical("keep_fp32", ["none", "auto"])
        backend = "onnxruntime" if onnx else "torch"
        if not onnx and compiled_int8_offered():
            # The same INT8 arithmetic run two ways: layer by layer (eager fbgemm calls), or the whole
            # model compiled by TorchInductor into oneDNN INT8 kernels.
            backend = trial.suggest_categorical("torch_int8", ["torch", "inductor"])
        steps.append(QuantizeDynamic(backend=backend, keep_fp32=keep))
        parts.append(f"quantize=dynamic/{'onnx' if onnx else backend}/keep={keep}@0")
    elif quantize == "static":
        steps.append(QuantizeStatic())
        parts.append("quantize=static@0")
    return Candidate(Recipe(steps), tuple(parts), dict(trial.params))


def compiled_int8_offered() -> bool:
    """Whether the cpu space offers the compiled INT8 (``quantize_dynamic backend: inductor``): on x86
    CPUs whose INT8 instructions accumulate in 32 bits (VNNI, AMX). Without VNNI it ran slower than
    PyTorch's eager INT8 (AVX2 EPYC, zoo:minilm: 171 against 213 items/s at batch 32,
    benchmarks/results/compress_minilm_cpu_2026-11-30_avx2.json), so there it would only cost a
    trial and a compile."""
    return x86_cpu() and wide_sums("inductor")


PRECISIONS = {"fp32": None, "bf16": "bf16", "fp16": "fp16", "int8_weight": "int8", "int8_dynamic": "int8_dynamic",
              "int4_weight": "int4", "fp8": "fp8"}  # search value -> CastPrecision / QuantizeWeights dtype
COMPILE_MODES = ("none", "default", "reduce-overhead")


def _suggest_gpu(trial: Any, steps: list[Any], parts: list[str], families: set[str], torch_model: bool,
                 distill_items: int) -> None:
    """The cloud-gpu dimensions after structure: precision, 2:4 sparsity, compile (in that order)."""
    if not torch_model:
        return
    precision = "fp32"
    if "quantize" in families:
        precision = trial.suggest_categorical("precision", list(PRECISIONS))
        dtype = PRECISIONS[precision]
        if precision in ("bf16", "fp16"):
            steps.append(CastPrecision(dtype=precision))
        elif dtype is not None:
            steps.append(QuantizeWeights(dtype=dtype))
        if dtype is not None:
            parts.append(f"precision={precision}@0")
    # 2:4 compresses float weights only (torchao tensors cannot be made semi-structured), so it is a
    # choice for float precisions; fp32 models are cast to fp16 by it.
    if "prune" in families and precision in ("fp32", "bf16", "fp16"):
        if trial.suggest_categorical("sparsity", ["none", "2:4"]) == "2:4":
            recover = 1 if "distill" in families else 0
            steps.append(Sparsify24(recover_epochs=recover, recover_items=distill_items if recover else 0))
            parts.append(f"sparsity=2:4/recover={recover}@0")
    if "runtime" in families:
        mode = trial.suggest_categorical("compile", list(COMPILE_MODES))
        if mode != "none":
            # dynamic=False: one specialised graph per (batch, length) shape; CUDA graphs need fixed
            # shapes anyway, and the measured shapes (batch 1 and 256 at seq_len) are few.
            steps.append(Compile(mode=mode, dynamic=False))
            parts.append(f"compile={mode}@0")


def _cpu_quantize_options(torch_model: bool) -> list[str]:
    return ["none", "dynamic", "static"] + (["bf16"] if torch_model and native_bf16_cpu() else [])


def screening_params(handle: ModelHandle, context: Context, families: set[str]) -> list[dict[str, Any]]:
    """One trial per technique alone (and the unchanged baseline first), enqueued before the search."""
    if context.device == "cuda":
        torch_model = handle.module is not None
        base: dict[str, Any] = {}
        if "prune" in families and torch_model:
            base["structure"] = "none"
        if "quantize" in families and torch_model:
            base["precision"] = "fp32"
        if "prune" in families and torch_model:
            base["sparsity"] = "none"
        if "runtime" in families and torch_model:
            base["compile"] = "none"
        out = [dict(base)]
        if "quantize" in families and torch_model:
            out += [{**base, "precision": p} for p in ("bf16", "int8_dynamic", "fp8")]
        if "runtime" in families and torch_model:
            out.append({**base, "compile": "reduce-overhead"})
        if "prune" in families and torch_model:
            out.append({**base, "sparsity": "2:4"})
            if is_encoder(handle):
                out.append({**base, "structure": "drop_layers", "keep_layers": _layers(handle) - 1})
        return out
    base = {}
    as_onnx = onnx_only(handle)
    if "prune" in families and handle.module is not None:
        base["structure"] = "none"
    if "lowrank" in families and handle.module is not None:
        base["lowrank"] = "none"
    if not context.int8_only and "quantize" in families:
        base["quantize"] = "none"
    if "runtime" in families and handle.module is not None and not as_onnx:
        base["runtime"] = "torch"
    out = [dict(base)]
    if "runtime" in families and handle.module is not None and not context.int8_only and not as_onnx:
        out.append({**base, "runtime": "onnx"})
    if "quantize" in families and not context.int8_only:
        out.append({**base, "quantize": "dynamic", "keep_fp32": "none",
                    **({} if as_onnx else {"runtime": "onnx"})})
        out.append({**base, "quantize": "static"})
        if handle.module is not None and not as_onnx and compiled_int8_offered():
            out.append({**base, "quantize": "dynamic", "keep_fp32": "none", "runtime": "torch",
                        "torch_int8": "inductor"})
        if "bf16" in _cpu_quantize_options(handle.module is not None and not as_onnx):
            out.append({**{k: v for k, v in base.items() if k != "runtime"}, "quantize": "bf16"})
    if "prune" in families and handle.module is not None:
        if is_encoder(handle):
            out.append({**base, "structure": "drop_layers", "keep_layers": _layers(handle) - 1})
            out.append({**base, "structure": "prune_ffn", "ffn_amount": 0.25})
            out.append({**base, "structure": "prune_heads", "heads_amount": 0.25})
        else:
            out.append({**base, "structure": "channels", "channel_amount": 0.25})
    if "lowrank" in families and handle.module is not None:
        out.append({**base, "lowrank": "0.95"})
    return [{k: v for k, v in p.items() if not (k == "runtime" and "runtime" not in families)} for p in out]
