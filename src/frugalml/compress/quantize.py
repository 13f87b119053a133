"""Quantization: dynamic INT8 (PyTorch or ONNX Runtime), static INT8 with calibration (ONNX Runtime
QDQ), and FP16 / BF16 casts.

Dynamic quantization stores Linear / MatMul weights as INT8 and quantizes activations on the fly.
On x86 CPUs without VNNI, INT8 kernels sum pairs of products in saturating 16-bit integers, so by
default (``weight_bits: auto``) weights are kept to 7 bits there and activations keep 8 (see
``frugalml.compress._int8``); the torch and inductor backends decide where the model runs (they
quantize again on load), ONNX Runtime where it is quantized (the graph holds the INT8 weights).
``keep_fp32="auto"`` runs a sensitivity analysis first: each layer is quantized alone and the
fidelity of the outputs to the original model is measured on calibration data; then layers are
kept in FP32, most sensitive first, until the whole model meets ``target`` (mean cosine for
embedding models, top-1 agreement for classifiers). ``exclude`` keeps named layers in FP32 too.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from frugalml.compress._base import (
    CompressContext,
    StepRecord,
    TechniqueConfig,
    check_fraction,
    check_in,
    check_names,
    register_handler,
)
from frugalml.compress._coverage import float_weights, list_uncovered_layers, list_uncovered_nodes
from frugalml.compress._fidelity import fidelity, reference_outputs
from frugalml.compress._int8 import Int8Bits, check_weight_bits, int8_bits
from frugalml.errors import InvalidArgumentError
from frugalml.models import ModelHandle

__all__ = ["CastPrecision", "QuantizeDynamic", "QuantizeStatic"]

log = logging.getLogger(__name__)


def _before_weight_bits(cls: type, data: dict[str, Any], version: int) -> dict[str, Any]:
    """The ``upgrade`` of both INT8 configs: version 1, before ``weight_bits``, quantized weights to 8 bits."""
    return {"weight_bits": 8, **data} if version < 2 else data


def _before_embeddings(cls: type, data: dict[str, Any], version: int) -> dict[str, Any]:
    """QuantizeDynamic's ``upgrade``: before version 3 (``embeddings``) embedding tables stayed float."""
    data = _before_weight_bits(cls, data, version)
    return {"embeddings": False, **data} if version < 3 else data


@dataclass(frozen=True, kw_only=True)
class QuantizeDynamic(TechniqueConfig):
    """Dynamic INT8 quantization of Linear layers (PyTorch) or of MatMul / Gemm / Attention nodes and
    embedding tables (ONNX Runtime).

    Attributes:
        backend: ``torch`` keeps a PyTorch model (eager, fbgemm kernels); ``inductor`` exports it
            with ``torch.export``, quantizes it with torchao's x86 quantizer and compiles it with
            TorchInductor (oneDNN INT8 kernels; x86 CPUs; see ``frugalml.compress._inductor``);
            ``onnxruntime`` exports to ONNX and quantizes there.
        per_channel: one scale per output channel (more accurate) instead of per tensor (``inductor``
            is per channel only).
        keep_fp32: ``none``, or ``auto`` for the sensitivity analysis described in the module docstring.
        target: the fidelity ``auto`` must reach (mean cosine / top-1 agreement vs the original).
        exclude: layer names (torch module names, or ONNX node-name fragments) kept in FP32.
        include: if given, only these layers are quantized.
        weight_bits: ``auto`` (7 where the CPU's INT8 sums can overflow: x86 without VNNI; 8
            elsewhere), ``7`` (for such a CPU, wherever the model is built) or ``8``.
        embeddings: store embedding tables (ONNX ``Gather`` / ``EmbedLayerNormalization`` nodes) in
            INT8 too, dequantized row by row as they are looked up: a text model's largest weights
            (zoo:minilm: 47 of its 90 MB), for little fidelity. ``auto``: with backend
            ``onnxruntime``; PyTorch's dynamic INT8 has no embedding kernel, so the other backends
            list the tables as left in float (``true`` is an error there).

    Version 2 added ``weight_bits``; version-1 recipes mean ``weight_bits: 8`` (their behaviour).
    Version 3 added ``embeddings``; earlier recipes mean ``embeddings: false``.
    """

    technique: ClassVar[str] = "quantize_dynamic"
    version: ClassVar[int] = 3
    backend: str = "torch"
    per_channel: bool = True
    keep_fp32: str = "none"
    target: float = 0.99
    exclude: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    weight_bits: str | int = "auto"
    embeddings: bool | str = "auto"

    upgrade = classmethod(_before_embeddings)

    @property
    def produces_onnx(self) -> bool:
        return self.backend == "onnxruntime"

    @property
    def needs_torch(self) -> bool:  # type: ignore[override]
        return self.backend in ("torch", "inductor")

    def __post_init__(self) -> None:
        check_in(self.backend, "backend", ("torch", "inductor", "onnxruntime"))
        check_in(self.keep_fp32, "keep_fp32", ("none", "auto"))
        check_fraction(self.target, "target", inclusive_high=True)
        check_weight_bits(self.weight_bits)
        object.__setattr__(self, "exclude", check_names(self.exclude, "exclude"))
        object.__setattr__(self, "include", check_names(self.include, "include"))
        if not isinstance(self.per_channel, bool):
            raise InvalidArgumentError("per_channel", self.per_channel, "must be true or false", "Use per_channel: true.")
        if self.embeddings != "auto" and not isinstance(self.embeddings, bool):
            raise InvalidArgumentError("embeddings", self.embeddings, "must be auto, true or false",
                                       "Use embeddings: auto.")
        if self.embeddings is True and self.backend != "onnxruntime":
            raise InvalidArgumentError("embeddings", True, f"backend {self.backend} has no INT8 embedding kernel",
                                       "Use backend: onnxruntime, or embeddings: auto.")
        if self.backend == "inductor" and not self.per_channel:
            raise InvalidArgumentError("per_channel", self.per_channel, "backend inductor quantizes weights per "
                                       "channel only", "Use per_channel: true, or backend: torch or onnxruntime.")


@dataclass(frozen=True, kw_only=True)
class QuantizeStatic(TechniqueConfig):
    """Static INT8 post-training quantization with ONNX Runtime (QDQ format) and calibration data.

    Attributes:
        calibration: ``minmax``, ``percentile`` or ``entropy``.
        per_channel: per-channel weight scales.
        samples: how many calibration items to use.
        exclude: ONNX node-name fragments kept in FP32.
        weight_bits: ``auto``, ``7`` or ``8``, as for :class:`QuantizeDynamic` (decided on the
            machine that quantizes).
        ops: which nodes get quantized: ``weights`` (MatMul / Gemm / Conv nodes with a weight
            initializer), ``all`` (every operator ONNX Runtime can quantize: additions, softmax,
            normalizations too, so INT8 flows between layers), or ``auto``: ``weights`` for text
            models, ``all`` for the others. A transformer's attention scores carry the padding mask
            (about -3.4e38 at masked positions), so an INT8 range calibrated on them rounds every
            real score to zero: ``all`` took zoo:minilm to a mean cosine of 0.36
            (``benchmarks/results/compress_minilm_cpu_2026-11-30_avx2_static.json``).

    Version 2 added ``weight_bits``; version-1 recipes mean ``weight_bits: 8``. Version 3 added
    ``ops``; earlier recipes mean ``ops: all``.
    """

    technique: ClassVar[str] = "quantize_static"
    version: ClassVar[int] = 3
    produces_onnx: ClassVar[bool] = True
    needs_torch: ClassVar[bool] = False
    calibration: str = "minmax"
    per_channel: bool = True
    samples: int = 128
    exclude: tuple[str, ...] = ()
    weight_bits: str | int = "auto"
    ops: str = "auto"

    @classmethod
    def upgrade(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        data = _before_weight_bits(cls, data, version)
        return {"ops": "all", **data} if version < 3 else data

    def __post_init__(self) -> None:
        check_in(self.ops, "ops", ("auto", "weights", "all"))
        check_in(self.calibration, "calibration", ("minmax", "percentile", "entropy"))
        check_weight_bits(self.weight_bits)
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) or self.samples < 1:
            raise InvalidArgumentError("samples", self.samples, "must be a positive integer", "Use e.g. samples: 128.")
        object.__setattr__(self, "exclude", check_names(self.exclude, "exclude"))


@dataclass(frozen=True, kw_only=True)
class CastPrecision(TechniqueConfig):
    """Cast weights and activations to ``fp16`` or ``bf16`` (halves the size; fast on GPUs with tensor
    cores, usually slower on CPUs without native half-precision math)."""

    technique: ClassVar[str] = "cast"
    version: ClassVar[int] = 1
    dtype: str = "bf16"

    def __post_init__(self) -> None:
        check_in(self.dtype, "dtype", ("fp16", "bf16"))


# ----------------------------------------------------------------------------- helpers
def onnx_handle(handle: ModelHandle, path: Path, *, note: str) -> ModelHandle:
    """A handle for an ONNX file derived from ``handle`` (same tokenizer, task and input roles)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    spec = copy.copy(handle.input_spec)
    names = tuple(i.name for i in session.get_inputs())
    object.__setattr__(spec, "names", names)
    return ModelHandle(name=handle.name, format="onnx", task=handle.task, input_spec=spec, onnx_path=path,
                       tokenizer=handle.tokenizer, example_inputs=handle.example_inputs, weight_files=(path,),
                       metadata={**{k: v for k, v in handle.metadata.items() if not k.startswith("_")}, "onnx": note})


def ensure_onnx(handle: ModelHandle, ctx: CompressContext, name: str) -> Path:
    """The handle as an ONNX file in the work dir (exporting a torch module if needed)."""
    if handle.onnx_path is not None:
        return handle.onnx_path
    path = Path(ctx.workdir) / f"{name}.onnx"
    handle.export_onnx(path, seq_len=min(ctx.seq_len, 16))
    return path


def _linear_names(module: torch.nn.Module) -> list[str]:
    return [name for name, sub in module.named_modules() if isinstance(sub, torch.nn.Linear)]


def _selected(names: list[str], include: tuple[str, ...], exclude: tuple[str, ...]) -> list[str]:
    chosen = [n for n in names if not include or any(i == n or i in n for i in include)]
    return [n for n in chosen if not any(e == n or e in n for e in exclude)]


class _DynamicLinear(torch.ao.nn.quantized.dynamic.Linear):
    """PyTorch's dynamic INT8 Linear with the activation range it is given (PyTorch's own always asks
    for 7 bits; see ``frugalml.compress._int8``)."""

    reduce_range = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._packed_params.dtype != torch.qint8:
            return super().forward(x)
        y = torch.ops.quantized.linear_dynamic(x, self._packed_params._packed_params, reduce_range=self.reduce_range)
        return y.to(x.dtype)


def _torch_dynamic(module: torch.nn.Module, names: list[str], per_channel: bool, bits: Int8Bits) -> torch.nn.Module:
    import warnings

    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
    from torch.ao.quantization import (
        MinMaxObserver,
        PerChannelMinMaxObserver,
        QConfig,
        default_dynamic_quant_observer,
        quantize_dynamic,
    )
    from torch.ao.quantization.quantization_mappings import get_default_dynamic_quant_module_mappings

    # PyTorch's default dynamic qconfigs, with the weight range chosen for this CPU.
    low, high = -(2 ** (bits.weights - 1)), 2 ** (bits.weights - 1) - 1
    observer = (PerChannelMinMaxObserver.with_args(qscheme=torch.per_channel_symmetric, dtype=torch.qint8,
                                                   quant_min=low, quant_max=high) if per_channel
                else MinMaxObserver.with_args(qscheme=torch.per_tensor_symmetric, dtype=torch.qint8,
                                              quant_min=low, quant_max=high))
    qconfig = QConfig(activation=default_dynamic_quant_observer, weight=observer)
    mapping = {k: (_DynamicLinear if v is DynamicLinear else v)
               for k, v in get_default_dynamic_quant_module_mappings().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
        out = quantize_dynamic(copy.deepcopy(module), {name: qconfig for name in names}, dtype=torch.qint8,
                               mapping=mapping)
    for sub in out.modules():
        if isinstance(sub, _DynamicLinear):
            sub.reduce_range = bits.activations == 7
    return out


def _with_module(handle: ModelHandle, module: torch.nn.Module) -> ModelHandle:
    return ModelHandle(name=handle.name, format=handle.format, task=handle.task, input_spec=handle.input_spec,
                       module=module, tokenizer=handle.tokenizer, example_inputs=handle.example_inputs,
                       weight_files=(), metadata={k: v for k, v in handle.metadata.items() if not k.startswith("_")})


def _onnx_weight_nodes(path: Path, *, conv: bool = False) -> list[str]:
    """MatMul / Gemm nodes (and Conv with ``conv``) whose second input is a weight initializer: what
    dynamic quantization touches, and static quantization with ``ops: weights``."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    weights = {init.name for init in model.graph.initializer}
    kinds = ("MatMul", "Gemm", "Conv") if conv else ("MatMul", "Gemm")
    return [n.name for n in model.graph.node if n.op_type in kinds and len(n.input) > 1
            and n.input[1] in weights]


# Where each operator ONNX Runtime's dynamic INT8 takes reads its weights; the last two look up
# embedding tables (EmbedLayerNormalization reads its tables as inputs 2-4).
_DYNAMIC_SLOTS = {"MatMul": 1, "Gemm": 1, "Attention": 1, "Gather": 0, "EmbedLayerNormalization": 2}
_TABLE_OPS = ("Gather", "EmbedLayerNormalization")


def _onnx_dynamic_nodes(path: Path) -> dict[str, str]:
    """Name -> operator type of the nodes ONNX Runtime's dynamic INT8 takes that hold weights: MatMul /
    Gemm, the fused Attention of its transformer optimizer (QAttention), and the lookups into
    embedding tables (see ``_TABLE_OPS``), in graph order."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    weights = float_weights(model)
    return {n.name: n.op_type for n in model.graph.node if n.op_type in _DYNAMIC_SLOTS
            and len(n.input) > _DYNAMIC_SLOTS[n.op_type] and n.input[_DYNAMIC_SLOTS[n.op_type]] in weights}


class _OrtRootLogs(logging.Filter):
    """ONNX Runtime's quantization tools log through the root logger (``logging.warning(...)``: advice
    to pre-process, "Axis 1 is out-of-range for weight ..." for a LayerNorm scale under per-channel
    INT8). In a user's program these land among their own logs as if from their code; while one of
    those tools runs they go to this module's logger at DEBUG instead. Records from elsewhere pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "onnxruntime" not in Path(record.pathname).parts:
            return True
        log.debug("onnxruntime.quantization: %s", record.getMessage())
        return False


@contextlib.contextmanager
def _quiet_ort_root() -> Iterator[None]:
    quiet = _OrtRootLogs()
    logging.getLogger().addFilter(quiet)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(quiet)


def _ort_dynamic(src: Path, dst: Path, nodes: list[str], kinds: dict[str, str], per_channel: bool,
                 bits: Int8Bits) -> Path:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # ONNX Runtime's dynamic quantizer first rewrites each Gemm as MatMul + Add, naming the MatMul
    # "<gemm>_MatMul", and only then matches nodes_to_quantize: under its own name a Gemm would be
    # left in float (onnxruntime issue 19503), so both names are passed. ``kinds``: name -> op type.
    names = nodes + [f"{n}_MatMul" for n in nodes if kinds.get(n) == "Gemm"]
    ops = sorted({kinds[n] for n in nodes if n in kinds} | {"MatMul"})
    # Fused ops from ONNX Runtime's optimizer are in another domain, so shape inference leaves their
    # outputs untyped; they are float tensors. reduce_range: 7-bit weights.
    with _quiet_ort_root():
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel,
                         reduce_range=bits.weights == 7,
                         nodes_to_quantize=names, op_types_to_quantize=ops,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return dst


# ----------------------------------------------------------------------------- handlers
@register_handler(QuantizeDynamic)
def _quantize_dynamic(handle: ModelHandle, config: QuantizeDynamic, ctx: CompressContext,
                      record: StepRecord) -> ModelHandle:
    final = None
    bits = int8_bits(config.backend, config.weight_bits)
    if config.backend in ("torch", "inductor"):
        if handle.module is None:
            raise InvalidArgumentError("backend", config.backend, "the model is ONNX at this step",
                                       "Use backend: onnxruntime, or quantize before exporting.")
        candidates = _selected(_linear_names(handle.module), config.include, config.exclude)
        for name in _linear_names(handle.module):
            if name not in candidates:
                record.skip(name, "excluded by the recipe")
        if config.backend == "torch":
            def build(names: list[str]) -> ModelHandle:
                return _with_module(handle, _torch_dynamic(handle.module, names, config.per_channel, bits))
        else:
            from frugalml.compress import _inductor
            from frugalml.measure.devices import native_bf16_cpu

            _inductor.check_x86()
            if ctx.device != "cpu":
                raise InvalidArgumentError("device", ctx.device, "backend inductor makes a model for x86 CPUs",
                                           "Use device cpu, or quantize_weights (torchao) for GPUs.")
            mixed = native_bf16_cpu()
            for name in _inductor.unused_linears(handle.module, handle.input_spec, candidates):
                record.skip(name, "unused by the model's output (torch.export leaves it out)")
                candidates.remove(name)
            # The sensitivity search scores the uncompiled INT8 graph (the same arithmetic, no compile per try).
            def build(names: list[str]) -> ModelHandle:
                return _with_module(handle, _inductor.converted(handle.module, handle.input_spec, names, bits=bits))

            def final(names: list[str]) -> ModelHandle:
                new = _with_module(handle, _inductor.inductor_int8(handle.module, handle.input_spec, names,
                                                                   bits=bits, bf16=mixed))
                _compile_now(new, ctx, record)
                return new
    else:
        src = ensure_onnx(handle, ctx, "dynamic-src")
        kinds = _onnx_dynamic_nodes(src)
        tables = [n for n, op in kinds.items() if op in _TABLE_OPS]
        quantizable = [n for n in kinds if config.embeddings is not False or n not in tables]
        candidates = _selected(quantizable, config.include, config.exclude)
        counter = {"n": 0}

        def build(names: list[str]) -> ModelHandle:
            counter["n"] += 1
            dst = _ort_dynamic(src, Path(ctx.workdir) / f"dynamic-{counter['n']}.onnx", names, kinds,
                               config.per_channel, bits)
            return onnx_handle(handle, dst, note="onnxruntime dynamic int8")

    if not candidates:
        raise InvalidArgumentError("include", list(config.include), "selects no quantizable layer",
                                   "Check the layer names (see the profile's layer table).")
    kept: list[str] = []
    if config.keep_fp32 == "auto":
        kept = _sensitivity_search(build, candidates, config.target, ctx, record)
    result = (final or build)([n for n in candidates if n not in kept])
    for name in kept:
        record.skip(name, "kept in FP32: most sensitive layer (keep_fp32: auto)")
    record.changed = [n for n in candidates if n not in kept]
    if config.backend == "onnxruntime":
        if config.embeddings is False:
            for name in tables:
                record.skip(name, "embedding table kept in float (embeddings: false)")
        list_uncovered_nodes(record, result.onnx_path, "not quantized by dynamic INT8; stays float",
                             hints={"Conv": "quantize_static covers convolutions"})
    else:
        list_uncovered_layers(record, handle.module, (torch.nn.Linear,),
                              "dynamic INT8 covers Linear layers only; stays float",
                              hints={"convolution": "quantize_static covers convolutions",
                                     "embedding lookup": "backend onnxruntime quantizes embedding tables"})
    record.structure = {"backend": config.backend, "quantized": record.changed, "per_channel": config.per_channel,
                        "weight_bits": config.weight_bits}
    # What this machine quantized with; torch and inductor decide again where the model is loaded.
    record.metrics["activation_bits"], record.metrics["weight_bits"] = bits
    if config.backend == "inductor":
        record.metrics["float_ops"] = "bf16" if mixed else "fp32"
    return result


def _compile_now(handle: ModelHandle, ctx: CompressContext, record: StepRecord) -> None:
    """Run a compiled model once, so that compile failures (no C++ compiler, an unsupported op)
    belong to the step that asked for them, not to the user's first call."""
    import time

    sample = ctx.calibration[:2] if ctx.calibration is not None else handle.example_inputs[:2]
    ctx.progress("compiling with TorchInductor")
    started = time.perf_counter()
    try:
        handle.predict(sample, batch_size=2, seq_len=min(ctx.seq_len, 16) if handle.input_spec.kind == "text"
                       else None)
    except Exception as exc:  # noqa: BLE001 - dynamo and inductor fail in many ways
        torch._dynamo.reset()
        raise InvalidArgumentError("backend", "inductor", f"compiling the INT8 model failed ({type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0][:200]})",
                                   "Use backend: torch or onnxruntime.") from None
    record.metrics["compile_s"] = time.perf_counter() - started


def _sensitivity_search(build: Any, candidates: list[str], target: float, ctx: CompressContext,
                        record: StepRecord) -> list[str]:
    if ctx.calibration is None:
        raise InvalidArgumentError("keep_fp32", "auto", "needs calibration data to measure sensitivity",
                                   "Pass --data (or data=...) with inputs for the model.")
    teacher = ctx.teacher
    items = ctx.calibration[:64]
    reference = reference_outputs(teacher, items, ctx.seq_len)
    sensitivity = {}
    for i, name in enumerate(candidates):
        ctx.progress(f"sensitivity {i + 1}/{len(candidates)}: {name}")
        score = fidelity(build([name]).predict(items, seq_len=ctx.seq_len), reference, teacher.task)
        sensitivity[name] = 1.0 - score
    order = sorted(candidates, key=lambda n: sensitivity[n], reverse=True)
    kept: list[str] = []
    score = fidelity(build(candidates).predict(items, seq_len=ctx.seq_len), reference, teacher.task)
    history = [(0, score)]
    # Keep the most sensitive layers in FP32 one at a time until the target holds. Step sizes grow so
    # a model with many layers needs few evaluations.
    while score < target and len(kept) < len(order):
        step = max(1, len(kept) // 2)
        kept = order[: len(kept) + step]
        score = fidelity(build([n for n in candidates if n not in kept]).predict(items, seq_len=ctx.seq_len),
                         reference, teacher.task)
        history.append((len(kept), score))
        ctx.progress(f"keeping {len(kept)} layer(s) in FP32: fidelity {score:.4f}")
    record.metrics["sensitivity"] = {n: round(sensitivity[n], 6) for n in order}
    record.metrics["auto_history"] = history
    record.metrics["calibration_fidelity"] = score
    if score < target:
        log.warning("quantize_dynamic keep_fp32=auto: even with every layer in FP32 fidelity is %.4f < %.4f",
                    score, target)
    return kept


class _Reader:
    """An ONNX Runtime calibration data reader over encoded batches."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._feeds = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def _with_shapes(src: Path, dst: Path) -> Path:
    """``src`` with every intermediate tensor's type and shape inferred (ONNX Runtime's quantization
    pre-processing, without its graph optimization).

    The calibrator only records ranges for tensors that carry a value_info; a graph saved by ONNX
    Runtime's optimizer (``export_onnx optimize: graph``) has none, and quantize_static then fails on
    the first Softmax ("Only an existing tensor can be modified"). Symbolic inference cannot resolve
    every dimension of an exported transformer (``Min(512, sequence)`` from the position-embedding
    slice), so it may guess ranks: the calibrator needs element types, not exact shapes.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with _quiet_ort_root():
        quant_pre_process(str(src), str(dst), skip_optimization=True, auto_merge=True, guess_output_rank=True)
    return dst


@register_handler(QuantizeStatic)
def _quantize_static(handle: ModelHandle, config: QuantizeStatic, ctx: CompressContext,
                     record: StepRecord) -> ModelHandle:
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    if ctx.calibration is None or len(ctx.calibration) == 0:
        raise InvalidArgumentError("calibration", None, "static quantization needs calibration data",
                                   "Pass --data (or data=...) with representative inputs.")
    bits = int8_bits("onnxruntime", config.weight_bits)
    src = _with_shapes(ensure_onnx(handle, ctx, "static-src"), Path(ctx.workdir) / "static-shapes.onnx")
    import onnxruntime as ort

    names = [i.name for i in ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()]
    items = ctx.calibration[: config.samples]
    feeds = []
    for start in range(0, len(items), 8):
        encoded = handle.encode(items[start:start + 8], ctx.seq_len if handle.input_spec.kind == "text" else None)
        feeds.append({n: encoded[n] for n in names if n in encoded})
    ops = config.ops if config.ops != "auto" else ("weights" if handle.input_spec.kind == "text" else "all")
    nodes = _onnx_weight_nodes(src, conv=True)
    excluded = [n for n in nodes if any(e in n for e in config.exclude)]
    for name in excluded:
        record.skip(name, "excluded by the recipe")
    # ops: weights names the nodes to quantize (Q/DQ around their inputs only); all leaves it to ONNX Runtime.
    only = [n for n in nodes if n not in excluded] if ops == "weights" else None
    method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
              "entropy": CalibrationMethod.Entropy}[config.calibration]
    dst = Path(ctx.workdir) / "static.onnx"
    ctx.progress(f"calibrating ({config.calibration}, {len(items)} items)")
    import warnings

    with warnings.catch_warnings(), _quiet_ort_root():
        # A constant activation (range 0) makes ONNX Runtime divide by a zero scale in numpy; it handles
        # the result itself, and the fidelity check reports any damage.
        warnings.simplefilter("ignore", RuntimeWarning)
        quantize_static(str(src), str(dst), _Reader(feeds), quant_format=QuantFormat.QDQ,
                        per_channel=config.per_channel, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=method, nodes_to_exclude=excluded,
                        nodes_to_quantize=only, reduce_range=bits.weights == 7)
    record.changed = [n for n in nodes if n not in excluded]
    list_uncovered_nodes(record, dst, "not quantized by static INT8; stays float")
    record.structure = {"backend": "onnxruntime", "format": "QDQ", "calibration": config.calibration, "ops": ops}
    record.metrics["activation_bits"], record.metrics["weight_bits"] = bits
    return onnx_handle(handle, dst, note=f"onnxruntime static int8 QDQ ({config.calibration})")


@register_handler(CastPrecision)
def _cast(handle: ModelHandle, config: CastPrecision, ctx: CompressContext, record: StepRecord) -> ModelHandle:
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[config.dtype]
    module = copy.deepcopy(handle.module).to(dtype)
    record.changed = ["(all floating-point parameters and buffers)"]
    record.structure = {"dtype": config.dtype}
    return _with_module(handle, module)
