"""`load_model(spec)`: one entry point for every model format frugalml reads."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from frugalml._validate import check_choice, zoo_fix
from frugalml.errors import InvalidArgumentError, ModelLoadError, UnsafeFormatError
from frugalml.models._handle import TASKS, InputSpec, ModelHandle, Task
from frugalml.models._safety import PICKLE_SUFFIXES, check_onnx, check_safetensors
from frugalml.models._zoo import ZOO_MODELS, load_zoo_model

__all__ = ["OBJECT_PREFIX", "load_model"]

# How optimize(model=...) names a model passed as a Python object (``object:NAME@DIGEST``) in a
# configuration: a label, not something load_model can open.
OBJECT_PREFIX = "object:"

_ONNX_FLOAT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64"}


def _from_module(module: torch.nn.Module, example_inputs: Any, task: Task | None, name: str | None) -> ModelHandle:
    if example_inputs is None:
        raise InvalidArgumentError("example_inputs", None, "a torch.nn.Module needs example inputs",
                                   "Pass example_inputs=<a batch tensor of the model's input shape>.")
    if isinstance(example_inputs, torch.Tensor):
        array = example_inputs.detach().cpu().numpy()
    else:
        array = np.asarray(example_inputs)
    if array.ndim < 2 or array.dtype.kind not in "fiu":
        raise InvalidArgumentError("example_inputs", f"array of shape {array.shape}, dtype {array.dtype}",
                                   "must be a numeric batch with a leading batch dimension",
                                   "Pass a tensor shaped (batch, ...) such as torch.randn(8, 64).")
    dtype = "float32" if array.dtype.kind == "f" else str(array.dtype)
    handle = ModelHandle(
        name=name or type(module).__name__, format="torch", task=task, module=module.eval(),
        input_spec=InputSpec(kind="tensor", item_shape=tuple(array.shape[1:]), dtype=dtype, names=("x",)),
        example_inputs=array.astype(dtype), metadata={"architecture": type(module).__name__},
    )
    # Run once so that a module that cannot take the inputs fails here, not in the middle of a profile.
    try:
        handle.predict(array[:2], batch_size=2)
    except Exception as exc:
        raise ModelLoadError("example_inputs", f"shape {array.shape}",
                             f"the module's forward failed on them ({type(exc).__name__}: {exc})",
                             "Pass inputs the module accepts as forward(x).") from None
    return handle


def _from_onnx(path: Path, task: Task | None, name: str | None) -> ModelHandle:
    import onnxruntime as ort

    check_onnx(path)
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise ModelLoadError("model", str(path), f"ONNX Runtime cannot load it ({str(exc).splitlines()[0]})",
                             "Re-export it with an opset ONNX Runtime supports (e.g. 17).") from None
    inputs = session.get_inputs()
    names = tuple(i.name for i in inputs)
    tokenizer = None
    if "input_ids" in names:
        tokenizer_file = next((p for p in (path.parent / "tokenizer.json", path.parent / "tokenizer" / "tokenizer.json")
                               if p.is_file()), None)
        if tokenizer_file is None:
            raise ModelLoadError("model", str(path), "is a text model (it reads input_ids) but has no tokenizer.json "
                                 "beside it", "Save the tokenizer (tokenizer.save_pretrained) next to the .onnx file.")
        import transformers

        tokenizer = transformers.AutoTokenizer.from_pretrained(str(tokenizer_file.parent), local_files_only=True)
        spec = InputSpec(kind="text", names=names, max_length=int(min(tokenizer.model_max_length or 512, 512)))
        examples: Any = None
    else:
        first = inputs[0]
        if len(inputs) != 1 or first.type not in _ONNX_FLOAT_TYPES:
            raise ModelLoadError("model", str(path), f"has inputs {[(i.name, i.type) for i in inputs]}; frugalml reads "
                                 "single float-tensor or text (input_ids) models",
                                 "Export the model with one float input, or with input_ids/attention_mask.")
        shape = first.shape[1:]
        if any(not isinstance(d, int) for d in shape):
            raise ModelLoadError("model", str(path), f"input {first.name} has dynamic non-batch dims {first.shape}",
                                 "Export it with fixed per-item dims (only the batch axis dynamic).")
        spec = InputSpec(kind="tensor", item_shape=tuple(shape), dtype=_ONNX_FLOAT_TYPES[first.type], names=names)
        # No data comes with an ONNX file; seeded normal noise gives shape-correct examples.
        examples = np.random.default_rng(0).standard_normal((64, *shape)).astype(spec.dtype)
    return ModelHandle(name=name or str(path), format="onnx", task=task, onnx_path=path, tokenizer=tokenizer,
                       input_spec=spec, example_inputs=examples, weight_files=(path,),
                       metadata={"opset": _opset(path)})


def _opset(path: Path) -> int | None:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def _from_pickle(path: Path, example_inputs: Any, task: Task | None, name: str | None, trust: bool) -> ModelHandle:
    if not trust:
        raise UnsafeFormatError("model", str(path), "pickle-based checkpoints can run arbitrary code when loaded",
                                "Save the model as safetensors (a Hugging Face directory) or ONNX, or pass "
                                "--trust-pickle / trust_pickle=True if you trust the file's origin.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=False)  # the user vouched for it
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError("model", str(path), f"torch.load failed ({type(exc).__name__}: {exc})",
                                 "Check that the file is a complete PyTorch checkpoint.") from None
    if not isinstance(obj, torch.nn.Module):
        raise ModelLoadError("model", str(path), f"holds a {type(obj).__name__}, not an nn.Module (a state dict needs "
                             "its architecture)", "Build the module in Python, load the weights into it, and pass "
                             "the module to load_model().")
    handle = _from_module(obj, example_inputs, task, name or str(path))
    handle.weight_files = (path,)
    return handle


def load_model(
    spec: str | Path | torch.nn.Module,
    *,
    task: str | None = None,
    example_inputs: Any = None,
    trust_pickle: bool = False,
    name: str | None = None,
    encrypt_key: bytes | None = None,
) -> ModelHandle:
    """Load a model into a :class:`ModelHandle`.

    Args:
        spec: ``zoo:NAME``; a Hugging Face / sentence-transformers directory (safetensors); an
            ``.onnx`` file; a ``torch.nn.Module`` object (with ``example_inputs``); or, only with
            ``trust_pickle=True``, a pickled ``nn.Module`` checkpoint (.pt/.pth/.bin/.pkl).
        task: classification | embedding | regression; inferred where the format says.
        example_inputs: a batch of inputs for an ``nn.Module`` (shape ``(batch, ...)``).
        trust_pickle: allow loading pickle-based files, which can execute code. Off by default.
        name: a display name; defaults to the spec.
        encrypt_key: the 32-byte key of an encrypted frugalml artifact.
    """
    if task is not None:
        task = check_choice(task, "task", TASKS)
    if isinstance(spec, torch.nn.Module):
        return _from_module(spec, example_inputs, task, name)  # type: ignore[arg-type]
    if not isinstance(spec, (str, Path)) or not str(spec).strip():
        raise InvalidArgumentError("model", spec, "must be zoo:NAME, a path, or a torch.nn.Module",
                                   "Pass e.g. zoo:minilm, ./my-model-dir, model.onnx.")
    text = str(spec)
    if text.startswith(OBJECT_PREFIX):
        raise ModelLoadError("model", text, "names a model that was passed to optimize() as an object, so there "
                             "is no file to load", "Pass the model itself (in Python: gate(..., reference=handle)), "
                             "or save it (an .onnx file or a model directory) and name that path as model:.")
    if text.startswith("zoo:"):
        zoo_name = text[4:]
        if zoo_name not in ZOO_MODELS:
            raise ModelLoadError("model", text, "no such built-in model", zoo_fix(zoo_name, ZOO_MODELS))
        handle = load_zoo_model(zoo_name)
        if task is not None and task != handle.task:
            raise InvalidArgumentError("task", task, f"{text} is a {handle.task} model", f"Use task={handle.task!r}.")
        return handle
    path = Path(text).expanduser()
    if not path.exists():
        raise ModelLoadError("model", text, "no such file or directory",
                             f"Check the path, or use a built-in model: {', '.join('zoo:' + n for n in ZOO_MODELS)}.")
    if path.is_dir() and (path / "manifest.json").is_file():
        from frugalml.compress.artifact import (
            load_artifact,  # a compressed-model artifact
        )

        return load_artifact(path, key=encrypt_key)
    if path.is_dir():
        from frugalml.models._text import load_text_dir

        return load_text_dir(path, task=task, trust_pickle=trust_pickle, name=name)  # type: ignore[arg-type]
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return _from_onnx(path, task, name)  # type: ignore[arg-type]
    if suffix in PICKLE_SUFFIXES:
        return _from_pickle(path, example_inputs, task, name, trust_pickle)  # type: ignore[arg-type]
    if suffix == ".safetensors":
        check_safetensors(path)
        raise ModelLoadError("model", text, "a bare safetensors file holds weights but not the architecture",
                             "Pass the directory holding it with its config.json, or build the module in Python "
                             "and pass it to load_model().")
    raise ModelLoadError("model", text, f"unknown model format {suffix or '(no suffix)'!r}",
                         "Pass a model directory, an .onnx file, or zoo:NAME.")
