"""`ModelHandle`, the one type everything downstream works on, and the runners that execute it.

A handle wraps a loaded model of any format behind one surface:

- ``input_spec`` says whether the model reads text (through ``tokenizer``) or tensors (per-item shape);
- ``encode(items, seq_len)`` turns raw items (strings, or arrays of the per-item shape) into the
  model's inputs, as numpy arrays keyed by input name;
- ``predict(items)`` returns a numpy array (logits, embeddings or values), shape ``(n, ...)``;
- ``runner(runtime, device, threads)`` gives a :class:`Runner` whose call is the bare forward pass
  on prepared inputs: what the profiler times.

For torch-backed formats ``module`` is an ``nn.Module`` that returns one tensor. Text models take
the encoded inputs as keyword tensors (``input_ids``, ``attention_mask``); tensor models take their
one input positionally, so any user module (an ``nn.Sequential`` too) works. :func:`call_module`
applies that convention everywhere a module is run.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch

from frugalml._validate import check_choice, check_device, check_positive_int
from frugalml.errors import DataError, InvalidArgumentError, MeasurementError

__all__ = ["FORMATS", "RUNTIMES", "TASKS", "Format", "InputSpec", "ModelHandle", "Runner", "Task", "call_module",
           "module_tensors", "weights_digest"]

log = logging.getLogger(__name__)

Format = Literal["torch", "hf", "sentence-transformers", "onnx"]
Task = Literal["classification", "embedding", "regression"]
FORMATS: tuple[str, ...] = ("torch", "hf", "sentence-transformers", "onnx")
TASKS: tuple[str, ...] = ("classification", "embedding", "regression")
RUNTIMES: tuple[str, ...] = ("torch", "onnxruntime")


@dataclass(frozen=True)
class InputSpec:
    """What one item of model input is.

    Attributes:
        kind: ``"text"`` (strings through a tokenizer) or ``"tensor"``.
        item_shape: per-item tensor shape for tensor models, e.g. ``(64,)`` or ``(1, 8, 8)``.
        dtype: numpy dtype name of tensor inputs.
        max_length: the longest token sequence a text model accepts.
        names: the model's input names, in order.
    """

    kind: Literal["text", "tensor"]
    item_shape: tuple[int, ...] | None = None
    dtype: str = "float32"
    max_length: int | None = None
    names: tuple[str, ...] = ("x",)


def call_module(module: torch.nn.Module, inputs: dict[str, torch.Tensor], kind: str) -> torch.Tensor:
    """Run ``module`` on encoded inputs: keywords for text models, one positional tensor otherwise."""
    if kind == "text":
        return module(**inputs)
    return module(*inputs.values())


def module_tensors(module: torch.nn.Module | None, encoded: dict[str, np.ndarray],
                   device: str | torch.device | None = None) -> dict[str, torch.Tensor]:
    """``encoded`` (``ModelHandle.encode``'s arrays) as tensors ``module`` accepts: on ``device``
    (default: where the module's parameters are), and floating-point inputs (pixels, features) in the
    module's own precision, so a model cast to fp16 / bf16 takes them as it is (integer token ids are
    left as they are)."""
    params = list(module.parameters()) if module is not None else []
    dtype = next((p.dtype for p in params if p.is_floating_point()), torch.float32)
    if device is None and params:
        device = params[0].device
    out = {}
    for key, value in encoded.items():
        tensor = torch.tensor(value, device=device)
        out[key] = tensor.to(dtype) if tensor.is_floating_point() else tensor
    return out


class Runner(Protocol):
    """Executes a model on prepared inputs; what the profiler times."""

    runtime: str
    device: str

    def prepare(self, items: Sequence[Any], seq_len: int | None) -> Any:
        """Encode ``items`` and place them where the forward pass reads them (device memory)."""

    def __call__(self, inputs: Any) -> Any:
        """The forward pass. On CUDA it may return before the device finishes: see synchronize."""

    def synchronize(self) -> None:
        """Wait until the device has finished queued work."""

    def to_numpy(self, outputs: Any) -> np.ndarray:
        """Outputs of ``__call__`` as a numpy array."""


@dataclass(eq=False)
class ModelHandle:
    """A loaded model, format-independent. See the module docstring."""

    name: str
    format: Format
    task: Task | None
    input_spec: InputSpec
    module: torch.nn.Module | None = None
    onnx_path: Path | None = None
    tokenizer: Any = None
    example_inputs: np.ndarray | list[str] | None = None
    weight_files: tuple[Path, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"ModelHandle(name={self.name!r}, format={self.format!r}, task={self.task!r}, input={self.input_spec.kind})"

    @property
    def default_data(self) -> str | None:
        """The dataset this model runs on when none is given: its own, or zoo:stdlib-docs for text."""
        default = self.metadata.get("default_data")
        if default is None and self.input_spec.kind == "text":
            default = "zoo:stdlib-docs"
        return default

    @property
    def class_names(self) -> list[str] | None:
        """A classifier's class names in output order (output ``i`` is ``class_names[i]``), when the model
        names them: a Hugging Face config's ``id2label``, or what ``frugal train`` recorded."""
        names = self.metadata.get("class_names")
        return [str(n) for n in names] if names else None

    def label_indices(self, labels: Any, *, column: str | None = None) -> np.ndarray:
        """Dataset labels as this classifier's output indices, shape ``(n,)`` int64.

        Integer labels already are indices. Other labels (``"spam"``, ``"os"``) are looked up in
        :attr:`class_names`; a label the model does not know, or text labels for a model that names no
        classes, is a :class:`DataError` naming ``label_column``.
        """
        values = np.asarray(labels)
        if np.issubdtype(values.dtype, np.integer):
            return values.astype(np.int64)
        if np.issubdtype(values.dtype, np.floating) and np.isfinite(values).all() and (values == np.round(values)).all():
            return values.astype(np.int64)  # 0.0, 1.0: a CSV column with a blank cell read as float
        first = next((v for v in values.tolist() if not (isinstance(v, int) or (isinstance(v, float) and v.is_integer()))),
                     None)
        names = self.class_names
        if names is None:
            raise DataError("label_column", column, f"holds labels such as {first!r} and {self.name} does not name "
                            "its classes (no id2label in its config)",
                            "Use class indices 0..n-1 in that column, or a model whose config maps its outputs to "
                            "these names (frugal train writes one).")
        index = {name: i for i, name in enumerate(names)}
        unknown = sorted({str(v) for v in values.tolist() if str(v) not in index})
        if unknown:
            shown = ", ".join(map(repr, unknown[:5])) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            raise DataError("label_column", column, f"holds labels {self.name} does not know: {shown}",
                            f"Its classes are {', '.join(names[:20])}{' ...' if len(names) > 20 else ''}; "
                            "drop or relabel those rows.")
        return np.array([index[str(v)] for v in values.tolist()], dtype=np.int64)

    def items_of(self, dataset: Any) -> Any:
        """A dataset's rows as this model's raw inputs: its texts, or its feature array."""
        return dataset.texts() if self.input_spec.kind == "text" else dataset.features()

    # ------------------------------------------------------------------ encoding
    def encode(self, items: Sequence[Any] | np.ndarray, seq_len: int | None = None) -> dict[str, np.ndarray]:
        """Model inputs for a batch of raw items, as numpy arrays keyed by input name.

        Text is padded (or truncated) to exactly ``seq_len`` tokens, so a batch has a fixed shape
        ``(batch, seq_len)``; with ``seq_len=None`` it pads to the longest item in the batch.
        """
        spec = self.input_spec
        if spec.kind == "text":
            if self.tokenizer is None:
                raise InvalidArgumentError("model", self.name, "is a text model without a tokenizer",
                                           "Load it from a directory that holds tokenizer.json.")
            # str(None) or str(row) would be tokenized without a word: wrong input must not become text.
            wrong = next((i for i, t in enumerate(items) if not isinstance(t, str)), None)
            if wrong is not None:
                raise InvalidArgumentError("inputs", f"item {wrong}: {type(items[wrong]).__name__}",
                                           f"{self.name} is a text model and takes strings",
                                           "Pass a list of str (for a dataset, its text column).")
            texts = list(items)
            if seq_len is not None:
                check_positive_int(seq_len, "seq_len", maximum=spec.max_length)
                enc = self.tokenizer(texts, padding="max_length", truncation=True, max_length=seq_len,
                                     return_tensors="np")
            else:
                enc = self.tokenizer(texts, padding="longest", truncation=True, max_length=spec.max_length,
                                     return_tensors="np")
            out = {"input_ids": enc["input_ids"].astype(np.int64),
                   "attention_mask": enc["attention_mask"].astype(np.int64)}
            if "token_type_ids" in spec.names:
                out["token_type_ids"] = np.zeros_like(out["input_ids"])
            return out
        try:
            array = np.asarray(items, dtype=np.dtype(spec.dtype))
        except (TypeError, ValueError) as exc:  # strings, ragged rows, None
            raise InvalidArgumentError("inputs", type(items).__name__, f"cannot be read as {spec.dtype} numbers "
                                       f"({exc})", f"Pass numeric rows of shape {spec.item_shape}.") from None
        if spec.item_shape is not None and tuple(array.shape[1:]) != tuple(spec.item_shape):
            if array.ndim >= 1 and int(np.prod(array.shape[1:])) == int(np.prod(spec.item_shape)):
                array = array.reshape((len(array), *spec.item_shape))
            else:
                raise InvalidArgumentError("inputs", f"shape {array.shape}",
                                           f"items must have shape {spec.item_shape}",
                                           "Pass data whose rows match the model's input.")
        return {spec.names[0]: array}

    # ------------------------------------------------------------------ running
    def runner(self, runtime: str = "torch", device: str = "cpu", threads: int | None = None) -> Runner:
        """A runner for this model on ``runtime`` (torch | onnxruntime) and ``device`` (cpu | cuda)."""
        check_choice(runtime, "runtime", RUNTIMES)
        if device != "cpu" and getattr(self.module, "cpu_only", False):
            raise InvalidArgumentError("device", device, f"{self.name} is compiled for x86 CPUs "
                                       "(quantize_dynamic backend inductor)", "Use --device cpu.")
        check_device(device, fix="Use --device cpu, or run on a machine with an NVIDIA GPU and CUDA drivers.")
        if threads is not None:
            check_positive_int(threads, "threads", maximum=1024)
        if runtime == "torch":
            if self.module is None:
                raise InvalidArgumentError("runtime", runtime, f"{self.format} models cannot run on PyTorch",
                                           "Use --runtime onnxruntime for ONNX models.")
            return TorchRunner(self, device=device, threads=threads)
        return OnnxRunner(self, device=device, threads=threads)

    def predict(self, items: Sequence[Any] | np.ndarray, *, batch_size: int = 32, seq_len: int | None = None,
                runtime: str = "torch", device: str = "cpu", bucket: bool = False,
                pad_multiple: int = 1, pad_rows: bool = False) -> np.ndarray:
        """Model outputs for ``items`` as one numpy array, computed in batches of ``batch_size``.

        ``bucket=True`` (text models, with ``seq_len=None``) sorts texts by token length and pads each
        batch only to its longest text, then restores the input order: the same outputs for far less
        padding when lengths vary. ``pad_multiple`` rounds each batch's length up to a multiple
        (e.g. 32): a few distinct shapes instead of one per length, so a compiled model (and its
        CUDA graphs) is reused rather than recompiled for every new length. ``pad_rows`` does the same
        for the batch dimension: each batch's row count rounds up to a power of two (at most
        ``batch_size``) by repeating its last item, whose extra outputs are dropped.
        """
        check_positive_int(batch_size, "batch_size")
        check_positive_int(pad_multiple, "pad_multiple", maximum=4096)
        if len(items) == 0:
            raise InvalidArgumentError("items", items, "is empty", "Pass at least one item.")
        if self.module is None and runtime == "torch":
            runtime = "onnxruntime"
        # One runner per (runtime, device), reused: creating an ONNX Runtime session costs ~100 ms.
        runners = self.metadata.setdefault("_runners", {})
        run = runners.get((runtime, device))
        if run is None or getattr(run, "module", None) is not self.module or (
                runtime == "torch" and _module_device(self.module) not in (None, device)):
            # (the module moved since: distillation or another runner placed it on another device)
            run = runners[(runtime, device)] = self.runner(runtime, device)
        order = np.arange(len(items))
        lengths = None
        if bucket and self.input_spec.kind == "text" and seq_len is None:
            lengths = self.token_lengths(items)
            order = np.argsort(lengths, kind="stable")
        outputs = []
        for start in range(0, len(items), batch_size):
            idx = order[start:start + batch_size]
            batch = [items[i] for i in idx] if isinstance(items, list) else items[idx]
            length = seq_len
            if lengths is not None:  # this batch's longest text, rounded up to the multiple
                length = self.padded_length(int(lengths[idx].max()), pad_multiple)
            rows = len(idx)
            extra = min(batch_size, 1 << (rows - 1).bit_length()) - rows if pad_rows else 0
            if extra > 0:
                batch = (batch + [batch[-1]] * extra if isinstance(batch, list)
                         else np.concatenate([batch, np.repeat(batch[-1:], extra, axis=0)]))
            outputs.append(run.to_numpy(run(run.prepare(batch, length)))[:rows])
        result = np.concatenate(outputs, axis=0)
        restored = np.empty_like(result)
        restored[order] = result
        return restored

    def token_lengths(self, texts: Sequence[Any]) -> np.ndarray:
        """Each text's token count as the model reads it (special tokens included, truncated to its
        longest input)."""
        return np.array([len(ids) for ids in self.tokenizer([str(t) for t in texts], truncation=True,
                                                            max_length=self.input_spec.max_length)["input_ids"]])

    def padded_length(self, longest: int, multiple: int = 1) -> int:
        """The length a batch whose longest text has ``longest`` tokens pads to: rounded up to
        ``multiple``, at most the model's longest input."""
        return min(-(-longest // multiple) * multiple, self.input_spec.max_length or longest)

    def export_onnx(self, path: Path, *, seq_len: int = 16, opset: int = 17) -> Path:
        """Export the torch module to ONNX with dynamic batch (and sequence) axes."""
        if self.module is None:
            if self.onnx_path is None:
                raise InvalidArgumentError("model", self.name, "has neither a torch module nor an ONNX file",
                                           "Load the model with load_model().")
            return self.onnx_path
        sample = self.example_inputs if self.example_inputs is not None else ["an example sentence"] * 2
        encoded = self.encode(sample[:2], seq_len=seq_len if self.input_spec.kind == "text" else None)
        names = list(encoded)
        as_tensors = module_tensors(self.module, encoded)
        tensors = tuple(as_tensors[n] for n in names)
        dynamic = {n: ({0: "batch", 1: "sequence"} if self.input_spec.kind == "text" else {0: "batch"}) for n in names}
        dynamic["output"] = {0: "batch"}
        module = _PositionalAdapter(self.module, names).eval()
        with contextlib.ExitStack() as stack:
            import warnings

            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore")
            stack.enter_context(torch.inference_mode(False))
            stack.enter_context(torch.no_grad())
            stack.enter_context(_eager_attention(self.module))
            # The TorchScript-based exporter is fast and handles the encoder models in the zoo;
            # it is deprecated upstream, so the dynamo exporter is the fallback.
            try:
                torch.onnx.export(module, tensors, str(path), input_names=names, output_names=["output"],
                                  dynamic_axes=dynamic, opset_version=opset, dynamo=False)
            except Exception as exc:  # noqa: BLE001 - any exporter failure falls back to the other one
                log.info("TorchScript ONNX export failed (%s); trying the dynamo exporter", exc)
                torch.onnx.export(module, tensors, str(path), input_names=names, output_names=["output"],
                                  dynamic_axes=dynamic, opset_version=opset, dynamo=True)
        return path


@contextlib.contextmanager
def _eager_attention(module: torch.nn.Module) -> Iterator[None]:
    """Hugging Face models inside ``module`` use their plain ("eager") attention while exported.

    Their default, PyTorch's scaled_dot_product_attention, exports with guards for fully masked rows
    (IsNaN / Where on every attention matrix) that ONNX Runtime then executes; the eager graph is
    MatMul, scale, mask, Softmax, MatMul, which its optimizer fuses (and its transformer optimizer
    recognises as attention). Same outputs; 12 fewer nodes for MiniLM. The previous implementation is
    restored after.
    """
    transformers = sys.modules.get("transformers")  # only models built by transformers have the switch
    changed: list[tuple[Any, str]] = []
    if transformers is not None:
        for sub in module.modules():
            config = getattr(sub, "config", None)
            current = getattr(config, "_attn_implementation", None)
            if (isinstance(sub, transformers.PreTrainedModel) and current == "sdpa"
                    and hasattr(sub, "set_attn_implementation")):
                sub.set_attn_implementation("eager")
                changed.append((sub, current))
    try:
        yield
    finally:
        for sub, previous in reversed(changed):
            sub.set_attn_implementation(previous)


def _module_device(module: torch.nn.Module | None) -> str | None:
    """The device type of a module's first parameter (None without parameters)."""
    param = next(module.parameters(), None) if module is not None else None
    return param.device.type if param is not None else None


class _PositionalAdapter(torch.nn.Module):
    """Calls a keyword-input module with positional tensors, for the ONNX exporter."""

    def __init__(self, module: torch.nn.Module, names: list[str]) -> None:
        super().__init__()
        self.inner = module
        self.names = names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        if "input_ids" in self.names:  # text models take keywords, tensor models one positional input
            return self.inner(**dict(zip(self.names, tensors)))
        return self.inner(*tensors)


class TorchRunner:
    """Runs a handle's ``nn.Module`` eagerly under ``torch.inference_mode``."""

    runtime = "torch"

    def __init__(self, handle: ModelHandle, *, device: str, threads: int | None) -> None:
        if handle.module is None:
            raise InvalidArgumentError("runtime", "torch", f"{handle.format} models cannot run on PyTorch",
                                       "Use --runtime onnxruntime for ONNX models.")
        self.handle = handle
        self.device = device
        self.threads = threads if threads is not None else torch.get_num_threads()
        if threads is not None:
            # Thread count is process-wide in PyTorch; the runner sets it for its lifetime.
            torch.set_num_threads(threads)
        self.module = handle.module.to(device).eval()
        from frugalml.compress.runtime import uses_cudagraphs

        self.cudagraphs = device == "cuda" and uses_cudagraphs(self.module)

    def prepare(self, items: Sequence[Any], seq_len: int | None) -> dict[str, torch.Tensor]:
        return module_tensors(self.module, self.handle.encode(items, seq_len), self.device)

    def __call__(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.cudagraphs:
            # A new inference step: the previous call's outputs (already read) may be overwritten.
            torch.compiler.cudagraph_mark_step_begin()
        with torch.inference_mode():
            return call_module(self.module, inputs, self.handle.input_spec.kind)

    def synchronize(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()

    def to_numpy(self, outputs: torch.Tensor) -> np.ndarray:
        return outputs.detach().float().cpu().numpy()


_ORT_FLOATS = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


class OnnxRunner:
    """Runs a handle through an ONNX Runtime session (exporting torch modules to ONNX first)."""

    runtime = "onnxruntime"

    def __init__(self, handle: ModelHandle, *, device: str, threads: int | None) -> None:
        import onnxruntime as ort

        self.handle = handle
        self.device = device
        path = handle.onnx_path
        if path is None:
            # Exported once per handle; the temporary folder lives as long as the handle.
            tmp = handle.metadata.setdefault("_onnx_tmpdir", tempfile.TemporaryDirectory(prefix="frugalml-onnx-"))
            path = Path(tmp.name) / "model.onnx"
            if not path.exists():
                handle.export_onnx(path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.threads = threads if threads is not None else torch.get_num_threads()
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise MeasurementError("runtime", "onnxruntime", "this onnxruntime build has no CUDA provider",
                                       "Install onnxruntime-gpu, or use --runtime torch on CUDA.")
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        self.input_names = [i.name for i in self.session.get_inputs()]
        # Float inputs (pixels, features) in the precision the graph declares: an fp16 graph takes fp16.
        self._float_types = {i.name: _ORT_FLOATS[i.type] for i in self.session.get_inputs() if i.type in _ORT_FLOATS}

    def prepare(self, items: Sequence[Any], seq_len: int | None) -> dict[str, np.ndarray]:
        encoded = self.handle.encode(items, seq_len)
        return {name: (encoded[name].astype(self._float_types[name], copy=False)
                       if name in self._float_types and np.issubdtype(encoded[name].dtype, np.floating)
                       else encoded[name])
                for name in self.input_names if name in encoded}

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, inputs)[0]

    def synchronize(self) -> None:
        """ONNX Runtime's ``run`` returns host arrays, so work is done when it returns."""

    def to_numpy(self, outputs: np.ndarray) -> np.ndarray:
        return np.asarray(outputs, dtype=np.float32)


def weights_digest(handle: ModelHandle) -> str | None:
    """A sha256 that names a model's weights: over its weight files (their sha256 in order), or, for a
    model that exists only in memory (an ``nn.Module`` passed in), over every tensor of its state dict
    (name, dtype, shape and bytes). ``None`` when there is neither."""
    import hashlib

    from frugalml.models._safety import sha256_file

    digest = hashlib.sha256()
    files = [Path(f) for f in handle.weight_files if Path(f).is_file()]
    if files:
        for f in files:
            digest.update(sha256_file(f).encode())
        return digest.hexdigest()
    if handle.module is None:
        return None
    for name, tensor in handle.module.state_dict().items():
        if not isinstance(tensor, torch.Tensor):  # extra state of a custom module: not weights
            continue
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        # Bytes through a uint8 view: numpy has no bfloat16, and a quantized tensor has no plain view.
        if t.is_quantized:
            t = t.int_repr()
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()
