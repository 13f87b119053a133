"""The recipe space: what each context's trials build, and screening trials that the space can replay."""

from __future__ import annotations

import pytest
import torch
from optuna.trial import FixedTrial

from frugalml.compress import CastPrecision, Compile, Distill, DropLayers, QuantizeWeights, Sparsify24
from frugalml.gate.contexts import get_context
from frugalml.search.space import screening_params, suggest

GPU = get_context("cloud-gpu")
ALL = {"quantize", "prune", "distill", "runtime"}


def _steps(handle, params: dict, families: set[str] = ALL) -> list:
    return list(suggest(FixedTrial(params), handle, GPU, families, distill_items=64).recipe)


def test_cloud_gpu_recipes_compose_in_order(minilm) -> None:
    steps = _steps(minilm, {"structure": "drop_layers", "keep_layers": 5, "precision": "int8_dynamic",
                            "compile": "reduce-overhead"})
    assert steps == [DropLayers(keep=5), Distill(epochs=1, max_items=64, lr=5e-5), QuantizeWeights(dtype="int8_dynamic"),
                     Compile(mode="reduce-overhead", dynamic=False)]
    steps = _steps(minilm, {"structure": "none", "precision": "bf16", "sparsity": "2:4", "compile": "none"})
    assert steps == [CastPrecision(dtype="bf16"), Sparsify24(recover_epochs=1, recover_items=64)]
    # Without distillation allowed, 2:4 is applied without recovery.
    steps = _steps(minilm, {"structure": "none", "precision": "fp32", "sparsity": "2:4", "compile": "default"},
                   {"quantize", "prune", "runtime"})
    assert steps == [Sparsify24(), Compile(mode="default", dynamic=False)]


def test_torchao_precisions_never_ask_for_2_4(minilm) -> None:
    # FixedTrial raises when a parameter it was not given is asked for: "sparsity" must not be.
    for precision, dtype in (("int4_weight", "int4"), ("fp8", "fp8"), ("int8_weight", "int8")):
        steps = _steps(minilm, {"structure": "none", "precision": precision, "compile": "none"})
        assert steps == [QuantizeWeights(dtype=dtype)]


@pytest.mark.parametrize("families", [ALL, {"quantize"}, {"runtime"}, {"prune", "distill"}, {"prune", "runtime"}])
def test_every_gpu_screening_trial_is_a_valid_point_of_the_space(minilm, families: set[str]) -> None:
    screens = screening_params(minilm, GPU, families)
    assert screens[0] and all(v in ("none", "fp32") for v in screens[0].values())  # the unchanged model first
    recipes = [suggest(FixedTrial(p), minilm, GPU, families, distill_items=64) for p in screens]
    assert len(recipes[0].recipe) == 0
    assert all(len(c.components) == 1 for c in recipes[1:])  # every other screen is one technique alone
    assert len({c.components for c in recipes}) == len(recipes)


def test_cpu_contexts_keep_their_space(minilm) -> None:
    edge = get_context("edge-cpu")
    for params in screening_params(minilm, edge, {"quantize", "runtime"}):
        candidate = suggest(FixedTrial(params), minilm, edge, {"quantize", "runtime"}, distill_items=64)
        assert not any(isinstance(s, (QuantizeWeights, Sparsify24, Compile)) for s in candidate.recipe)


@pytest.mark.parametrize("native", [True, False])
def test_cpu_bf16_is_offered_only_where_the_cpu_has_native_bf16(minilm, monkeypatch, native: bool) -> None:
    import frugalml.search.space as space

    monkeypatch.setattr(space, "native_bf16_cpu", lambda: native)
    edge = get_context("edge-cpu")
    screens = screening_params(minilm, edge, ALL)
    bf16 = [p for p in screens if p.get("quantize") == "bf16"]
    assert len(bf16) == int(native)
    for params in bf16:
        candidate = suggest(FixedTrial(params), minilm, edge, ALL, distill_items=64)
        assert list(candidate.recipe) == [CastPrecision(dtype="bf16")]
        assert candidate.components == ("quantize=bf16@0",)
    # TinyML is INT8 only, whatever the development machine has.
    assert not any(p.get("quantize") == "bf16" for p in screening_params(minilm, get_context("tinyml"), ALL))


def test_native_bf16_cpu_reads_the_features() -> None:
    from frugalml.measure.devices import native_bf16_cpu

    assert native_bf16_cpu(["avx2", "avx512_bf16"]) and native_bf16_cpu(["asimd", "bf16"])
    assert not native_bf16_cpu(["avx2", "avx512_vnni"])


@pytest.mark.parametrize("x86, vnni", [(True, True), (True, False), (False, True)])
def test_compiled_int8_is_offered_on_x86_cpus_with_vnni(minilm, monkeypatch, x86: bool, vnni: bool) -> None:
    import frugalml.search.space as space
    from frugalml.compress import QuantizeDynamic

    monkeypatch.setattr(space, "x86_cpu", lambda: x86)
    monkeypatch.setattr(space, "wide_sums", lambda backend: vnni)
    offered = x86 and vnni
    assert space.compiled_int8_offered() is offered
    edge = get_context("edge-cpu")
    screens = [p for p in screening_params(minilm, edge, ALL) if p.get("torch_int8")]
    assert len(screens) == int(offered)
    for params in screens:
        candidate = suggest(FixedTrial(params), minilm, edge, ALL, distill_items=64)
        assert list(candidate.recipe) == [QuantizeDynamic(backend="inductor")]
        assert candidate.components == ("quantize=dynamic/inductor/keep=none@0",)
    # Elsewhere a PyTorch model's dynamic INT8 is the eager one, and torch_int8 is never asked for
    # (FixedTrial raises on a parameter it was not given).
    eager = {"structure": "none", "lowrank": "none", "quantize": "dynamic", "keep_fp32": "auto", "runtime": "torch"}
    if not offered:
        candidate = suggest(FixedTrial(eager), minilm, edge, ALL, distill_items=64)
        assert list(candidate.recipe) == [QuantizeDynamic(backend="torch", keep_fp32="auto")]


class _OwnNet(torch.nn.Module):
    """A user's module: frugalml cannot rebuild it from safetensors, so it is searched as ONNX."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = torch.nn.Linear(64, 32)
        self.out = torch.nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.inp(x)))


@pytest.mark.parametrize("native", [True, False])
def test_a_module_saved_as_onnx_is_searched_as_onnx(monkeypatch, native: bool) -> None:
    import frugalml.search.space as space
    from frugalml import load_model
    from frugalml.compress import ExportOnnx, QuantizeDynamic, QuantizeStatic

    monkeypatch.setattr(space, "native_bf16_cpu", lambda: native)
    monkeypatch.setattr(space, "compiled_int8_offered", lambda: True)
    handle = load_model(_OwnNet(), example_inputs=torch.randn(4, 64))
    assert space.onnx_only(handle) and not space.onnx_only(load_model("zoo:digits-mlp"))
    edge = get_context("edge-cpu")
    families = ALL | {"lowrank"}
    screens = screening_params(handle, edge, families)
    assert len(screens) >= 5 and not any("runtime" in p or p.get("quantize") == "bf16" for p in screens)
    for params in screens:
        candidate = suggest(FixedTrial(params), handle, edge, families, distill_items=64)
        steps = list(candidate.recipe)
        # Every recipe, the "unchanged" one too, ends as ONNX: what is measured is what is saved.
        assert isinstance(steps[-1], (ExportOnnx, QuantizeStatic)) or (
            isinstance(steps[-1], QuantizeDynamic) and steps[-1].backend == "onnxruntime")
        assert not any(isinstance(s, CastPrecision) for s in steps)
        assert not any(c.startswith("runtime=") for c in candidate.components)
