"""Pruning: unstructured magnitude pruning, structured pruning with torch-pruning's dependency graph,
and dropping whole transformer layers.

Unstructured pruning zeroes individual weights. Dense kernels still multiply the zeros, so it makes
a model neither smaller as saved nor faster: the step reports the sparsity and says so. Structured
pruning removes whole neurons, channels or FFN width (and everything that depends on them, which is
what the dependency graph finds), or whole attention heads, so dense kernels do less work. Layer dropping keeps k of an
encoder's n layers. The latter two lose quality that distillation usually recovers.
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from frugalml.compress._base import (
    CompressContext,
    StepRecord,
    TechniqueConfig,
    check_fraction,
    check_in,
    check_int,
    check_names,
    handler_for,
    register_handler,
)
from frugalml.compress._coverage import list_uncovered_layers
from frugalml.compress.quantize import _with_module
from frugalml.errors import InvalidArgumentError
from frugalml.models import ModelHandle
from frugalml.models._handle import module_tensors

__all__ = ["DropLayers", "PruneMagnitude", "PruneStructured", "encoder_layers", "layer_shapes", "rebuild_shapes"]

log = logging.getLogger(__name__)

_PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)


@dataclass(frozen=True, kw_only=True)
class PruneMagnitude(TechniqueConfig):
    """Zero the ``amount`` fraction of weights with the smallest magnitude.

    Attributes:
        amount: final fraction of weights to zero, in (0, 1).
        scope: ``global`` (one threshold over all layers) or ``layer`` (the same fraction per layer).
        steps: prune gradually in this many rounds (1: at once).
        schedule: sparsity after round t of n: ``cubic`` amount * (1 - (1 - t/n)^3) (Zhu & Gupta 2017:
            large cuts early, while the network can still adapt, small ones late) or ``linear``.
        recover_epochs: distillation epochs from the original after each round (0: none); the zeros
            stay zero while the remaining weights adapt.
        exclude: layer names left dense.
    """

    technique: ClassVar[str] = "prune_magnitude"
    version: ClassVar[int] = 1
    amount: float = 0.5
    scope: str = "global"
    steps: int = 1
    schedule: str = "cubic"
    recover_epochs: int = 0
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_fraction(self.amount, "amount")
        check_in(self.scope, "scope", ("global", "layer"))
        check_int(self.steps, "steps")
        check_in(self.schedule, "schedule", ("cubic", "linear"))
        check_int(self.recover_epochs, "recover_epochs", minimum=0)
        object.__setattr__(self, "exclude", check_names(self.exclude, "exclude"))

    def sparsity_at(self, step: int) -> float:
        """Target sparsity after round ``step`` (1-based)."""
        progress = step / self.steps
        return self.amount * (1 - (1 - progress) ** 3 if self.schedule == "cubic" else progress)


@dataclass(frozen=True, kw_only=True)
class PruneStructured(TechniqueConfig):
    """Remove the ``amount`` fraction of structures with the smallest L2 norm (torch-pruning).

    Attributes:
        amount: fraction removed from each pruned layer, in (0, 1).
        target: ``ffn`` (the intermediate width of transformer feed-forward blocks), ``heads`` (whole
            attention heads of transformer encoders: query / key / value rows and the matching
            columns of the attention output) or ``channels`` (output neurons / channels of every
            Linear and Conv layer but the last).
        exclude: layer names never pruned.
    """

    technique: ClassVar[str] = "prune_structured"
    version: ClassVar[int] = 1
    amount: float = 0.3
    target: str = "channels"
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_fraction(self.amount, "amount")
        check_in(self.target, "target", ("ffn", "heads", "channels"))
        object.__setattr__(self, "exclude", check_names(self.exclude, "exclude"))


@dataclass(frozen=True, kw_only=True)
class DropLayers(TechniqueConfig):
    """Keep only some layers of a transformer encoder.

    Attributes:
        keep: the number of layers to keep (spread evenly, first and last included), or
            ``keep_indices`` for an explicit list.
    """

    technique: ClassVar[str] = "drop_layers"
    version: ClassVar[int] = 1
    keep: int | None = None
    keep_indices: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if (self.keep is None) == (not self.keep_indices):
            raise InvalidArgumentError("keep", self.keep, "give exactly one of keep and keep_indices",
                                       "Write keep: 3, or keep_indices: [0, 2, 5].")
        if self.keep is not None and (isinstance(self.keep, bool) or not isinstance(self.keep, int) or self.keep < 1):
            raise InvalidArgumentError("keep", self.keep, "must be an integer >= 1", "Write keep: 3.")
        indices = tuple(self.keep_indices)
        if indices and (any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in indices)
                        or len(set(indices)) != len(indices)):
            raise InvalidArgumentError("keep_indices", list(indices), "must be distinct integers >= 0",
                                       "Write keep_indices: [0, 2, 5].")
        object.__setattr__(self, "keep_indices", tuple(sorted(indices)))


# ----------------------------------------------------------------------------- structure records
def layer_shapes(module: nn.Module) -> dict[str, dict[str, Any]]:
    """Shapes of every Linear / Conv / norm layer: enough to rebuild a pruned architecture."""
    shapes: dict[str, dict[str, Any]] = {}
    for name, sub in module.named_modules():
        if isinstance(sub, nn.Linear):
            shapes[name] = {"type": "Linear", "in": sub.in_features, "out": sub.out_features, "bias": sub.bias is not None}
        elif isinstance(sub, (nn.Conv1d, nn.Conv2d)):
            shapes[name] = {"type": type(sub).__name__, "in": sub.in_channels, "out": sub.out_channels,
                            "kernel": list(sub.kernel_size), "stride": list(sub.stride), "padding": list(sub.padding),
                            "groups": sub.groups, "bias": sub.bias is not None}
        elif isinstance(sub, (nn.BatchNorm1d, nn.BatchNorm2d)):
            shapes[name] = {"type": type(sub).__name__, "n": sub.num_features}
        elif isinstance(sub, nn.LayerNorm):
            shapes[name] = {"type": "LayerNorm", "shape": list(sub.normalized_shape), "eps": sub.eps}
    return shapes


def _build(spec: dict[str, Any]) -> nn.Module:
    kind = spec["type"]
    if kind == "Linear":
        return nn.Linear(spec["in"], spec["out"], bias=spec["bias"])
    if kind in ("Conv1d", "Conv2d"):
        cls = nn.Conv1d if kind == "Conv1d" else nn.Conv2d
        return cls(spec["in"], spec["out"], tuple(spec["kernel"]), stride=tuple(spec["stride"]),
                   padding=tuple(spec["padding"]), groups=spec["groups"], bias=spec["bias"])
    if kind in ("BatchNorm1d", "BatchNorm2d"):
        return (nn.BatchNorm1d if kind == "BatchNorm1d" else nn.BatchNorm2d)(spec["n"])
    return nn.LayerNorm(tuple(spec["shape"]), eps=spec["eps"])


def rebuild_shapes(module: nn.Module, shapes: dict[str, dict[str, Any]]) -> nn.Module:
    """Replace every layer whose recorded shape differs (weights are loaded afterwards)."""
    current = layer_shapes(module)
    for name, spec in shapes.items():
        if current.get(name) != spec:
            parent_name, _, child = name.rpartition(".")
            parent = module.get_submodule(parent_name) if parent_name else module
            setattr(parent, child, _build(spec))
    return module


def encoder_layers(module: nn.Module) -> tuple[nn.Module, str, nn.ModuleList]:
    """The ``nn.ModuleList`` of transformer layers inside a (wrapped) Hugging Face encoder."""
    for name, sub in module.named_modules():
        if name.endswith("encoder") and isinstance(getattr(sub, "layer", None), nn.ModuleList):
            return sub, name, sub.layer
    raise InvalidArgumentError("model", type(module).__name__, "has no transformer encoder layer list",
                               "Use drop_layers / prune_structured target ffn on BERT-style encoders only.")


# ----------------------------------------------------------------------------- handlers
def _excluded(name: str, exclude: tuple[str, ...]) -> bool:
    return any(e == name or e in name for e in exclude)


@register_handler(PruneMagnitude)
def _prune_magnitude(handle: ModelHandle, config: PruneMagnitude, ctx: CompressContext,
                     record: StepRecord) -> ModelHandle:
    from torch.nn.utils import prune

    module = copy.deepcopy(handle.module)
    targets = []
    for name, sub in module.named_modules():
        if isinstance(sub, _PRUNABLE):
            if _excluded(name, config.exclude):
                record.skip(name, "excluded by the recipe")
            else:
                targets.append((name, sub))
        elif isinstance(sub, nn.Embedding):
            record.skip(name, "embeddings are lookups, not matrix products: pruning them saves no compute")
    list_uncovered_layers(record, module, (*_PRUNABLE, nn.Embedding),
                          "magnitude pruning covers Linear and Conv1d / Conv2d layers; left dense")
    if not targets:
        raise InvalidArgumentError("exclude", list(config.exclude), "leaves no Linear or Conv layer to prune",
                                   "Exclude fewer layers.")
    schedule = []
    for step in range(1, config.steps + 1):
        target = config.sparsity_at(step)
        # Weights zeroed in earlier rounds are the smallest, so pruning to the cumulative target
        # keeps them zero and adds the next-smallest.
        if config.scope == "global":
            prune.global_unstructured([(sub, "weight") for _, sub in targets], pruning_method=prune.L1Unstructured,
                                      amount=target)
        else:
            for _, sub in targets:
                prune.l1_unstructured(sub, "weight", amount=target)
        masks = {name: sub.weight_mask.detach().clone() for name, sub in targets}
        for _, sub in targets:
            prune.remove(sub, "weight")  # make the zeros permanent; no masks remain
        round_info: dict[str, Any] = {"step": step, "sparsity": target}
        if config.recover_epochs and ctx.train is not None:
            from frugalml.compress.distill import Distill

            ctx.progress(f"prune_magnitude round {step}/{config.steps}: recovering at sparsity {target:.2f}")
            recover = Distill(epochs=config.recover_epochs)
            sub_record = StepRecord(technique="distill", config=recover.to_dict())
            module = handler_for(recover)(_with_module(handle, module), recover, ctx, sub_record).module
            targets = [(name, module.get_submodule(name)) for name, _ in targets]
            with torch.no_grad():  # training nudged some pruned weights off zero: the mask decides
                for name, sub in targets:
                    sub.weight.mul_(masks[name].to(sub.weight.dtype))
            round_info["fidelity"] = sub_record.metrics.get("best_fidelity")
        schedule.append(round_info)
    zeros = total = 0
    for _, sub in targets:
        zeros += int((sub.weight == 0).sum())
        total += sub.weight.numel()
    record.changed = [name for name, _ in targets]
    record.metrics = {"sparsity": zeros / total, "speedup_expected": False, "schedule": schedule,
                      "note": "zeros are stored and multiplied by dense kernels: no size or speed gain without a "
                              "sparse format or kernel"}
    return _with_module(handle, module)


@register_handler(PruneStructured)
def _prune_structured(handle: ModelHandle, config: PruneStructured, ctx: CompressContext,
                      record: StepRecord) -> ModelHandle:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torch_pruning as tp

    module = copy.deepcopy(handle.module).eval()
    sample = ctx.calibration[:2] if ctx.calibration is not None else handle.example_inputs[:2]
    encoded = module_tensors(module, handle.encode(sample, ctx.seq_len if handle.input_spec.kind == "text" else None))
    example = encoded if handle.input_spec.kind == "text" else next(iter(encoded.values()))
    linears = [(name, sub) for name, sub in module.named_modules() if isinstance(sub, _PRUNABLE)]
    heads: dict[nn.Module, int] = {}
    attention = _attention_modules(module) if config.target == "heads" else []
    if config.target == "heads":
        attention = [(n, a) for n, a in attention if not _excluded(n, config.exclude)]
        if not attention:
            raise InvalidArgumentError("target", "heads", "the model has no attention modules with query / key / "
                                       "value projections", "Use target: ffn or channels for this model.")
        for _, attn in attention:
            for proj in (attn.query, attn.key, attn.value):
                heads[proj] = int(attn.num_attention_heads)
        chosen = [(n, s) for n, s in linears if s in heads]
    elif config.target == "ffn":
        chosen = [(n, s) for n, s in linears if n.endswith("intermediate.dense") and not _excluded(n, config.exclude)]
        if not chosen:
            raise InvalidArgumentError("target", "ffn", "the model has no transformer feed-forward layers "
                                       "(*.intermediate.dense)", "Use target: channels for other models.")
    else:
        # Every layer but the last: the output layer's width is the model's output and must stay.
        chosen = [(n, s) for n, s in linears[:-1] if not _excluded(n, config.exclude)]
        record.skip(linears[-1][0], "output layer: its width is the model's output")
    for name, _ in linears:
        if _excluded(name, config.exclude):
            record.skip(name, "excluded by the recipe")
    chosen_modules = {id(s) for _, s in chosen}
    ignored = [s for _, s in linears if id(s) not in chosen_modules]
    before = layer_shapes(module)
    names = {id(sub): name for name, sub in module.named_modules()}
    pristine = module
    # torch-pruning fails on some graphs (a GRU, a custom layer with its own parameters): the layer whose
    # width it was following is then kept at full width, listed as skipped, and the model traced again
    # from an untouched copy; at most once per layer.
    for _ in range(sum(1 for _ in pristine.modules()) + 1):
        module = copy.deepcopy(pristine)
        remap = {id(a): b for a, b in zip(pristine.modules(), module.modules(), strict=True)}
        try:
            with warnings.catch_warnings():
                # Its "unwrapped parameters" warning concerns modules it cannot resize: listed below instead.
                warnings.simplefilter("ignore", UserWarning)
                pruner = _structured_pruner(tp, module, example, config, [remap[id(s)] for s in ignored],
                                            {remap[id(p)]: n for p, n in heads.items()})
                pruner.step()
            break
        except Exception as exc:  # noqa: BLE001 - tracing failures of custom models take many forms
            log.debug("torch-pruning failed on %s", handle.name, exc_info=True)
            root = _failed_root(exc)
            back = {id(b): a for a, b in zip(pristine.modules(), module.modules(), strict=True)}
            original = back.get(id(root)) if root is not None else None
            unsupported = [f"{name} ({kind})" for name, kind in _unsupported_modules(pristine)]
            cannot = f"; it has no pruning rule for {', '.join(unsupported)}" if unsupported else ""
            if original is None or original in ignored:
                raise InvalidArgumentError(
                    "model", handle.name, f"torch-pruning could not trace it ({type(exc).__name__}: {exc}){cannot}",
                    "Add the layers feeding those modules to exclude, or use prune_magnitude.") from None
            ignored.append(original)
            record.skip(names[id(original)], f"torch-pruning cannot follow where its width goes{cannot}: "
                                             "kept at full width")
    else:  # pragma: no cover - every failed attempt adds a layer to ignored, so the layers run out first
        raise InvalidArgumentError("model", handle.name, "torch-pruning could not trace it",
                                   "Use prune_magnitude for this model.")
    for name, kind in _unsupported_modules(pristine):
        # A module holding bare parameters may still be resized (torch-pruning cuts their last
        # dimension); only the ones left as they were are listed.
        if _own_shapes(pristine, name) == _own_shapes(module, name):
            record.skip(name, f"torch-pruning has no pruning rule for a {kind}: unchanged")
    heads = {remap[id(p)]: n for p, n in heads.items()}
    attention = [(n, module.get_submodule(n)) for n, _ in attention]
    after = layer_shapes(module)
    record.changed = [n for n in after if before.get(n) != after[n]]
    record.structure = {"shapes": {n: after[n] for n in record.changed}}
    if heads:
        counts = {}
        for name, attn in attention:
            set_attention_heads(attn, pruner.num_heads[attn.query])
            counts[name] = int(attn.num_attention_heads)
        record.structure["attention_heads"] = counts
        record.metrics["heads_after"] = counts
    record.metrics["params_before"] = sum(p.numel() for p in handle.module.parameters())
    record.metrics["params_after"] = sum(p.numel() for p in module.parameters())
    return _with_module(handle, module)


def _structured_pruner(tp: Any, module: nn.Module, example: Any, config: PruneStructured,
                       ignored: list[nn.Module], heads: dict[nn.Module, int]) -> Any:
    """torch-pruning's magnitude pruner for one PruneStructured step (tracing happens here)."""
    common = {"example_inputs": example, "importance": tp.importance.MagnitudeImportance(p=2),
              "pruning_ratio": config.amount, "ignored_layers": ignored, "global_pruning": False}
    if heads:
        # Whole heads only (prune_head_dims=False keeps each head's width); torch-pruning only visits
        # a group whose channel ratio is positive, so the ratio is set too: it applies to nothing else,
        # since the query / key / value projections are the only pruning roots.
        return tp.pruner.MagnitudePruner(module, **common, num_heads=heads, prune_num_heads=True,
                                         prune_head_dims=False, head_pruning_ratio=config.amount)
    return tp.pruner.MagnitudePruner(module, **common)


def _failed_root(exc: BaseException) -> nn.Module | None:
    """The layer torch-pruning was building a pruning group for when ``exc`` was raised, if any.

    Read from the traceback (the ``module`` argument of ``DependencyGraph.get_pruning_group``): the
    exception itself does not say which layer's dependencies could not be followed.
    """
    root = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "get_pruning_group":
            candidate = tb.tb_frame.f_locals.get("module")
            root = candidate if isinstance(candidate, nn.Module) else root
        tb = tb.tb_next
    return root


def _own_shapes(module: nn.Module, name: str) -> list[tuple[int, ...]]:
    return [tuple(p.shape) for p in module.get_submodule(name).parameters(recurse=False)]


def _unsupported_modules(module: nn.Module) -> list[tuple[str, str]]:
    """(name, type) of the modules holding parameters of their own whose width torch-pruning cannot
    change (a GRU, a custom layer)."""
    from torch_pruning import ops

    return [(name, type(sub).__name__) for name, sub in module.named_modules()
            if name and any(True for _ in sub.parameters(recurse=False))
            and ops.module2type(sub) == ops.OPTYPE.ELEMENTWISE]


def _attention_modules(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """Hugging Face style self-attention modules: ``query`` / ``key`` / ``value`` Linears and a head count."""
    return [(name, sub) for name, sub in module.named_modules()
            if all(isinstance(getattr(sub, p, None), nn.Linear) for p in ("query", "key", "value"))
            and hasattr(sub, "num_attention_heads")]


def set_attention_heads(attn: nn.Module, count: int) -> None:
    """Keep an attention module's head bookkeeping in step with its (pruned) projections."""
    attn.num_attention_heads = int(count)
    attn.all_head_size = attn.query.out_features
    attn.attention_head_size = attn.query.out_features // max(int(count), 1)


def apply_attention_heads(module: nn.Module, counts: dict[str, int]) -> None:
    """Replay recorded head counts on a rebuilt architecture (artifact loading)."""
    for name, count in counts.items():
        set_attention_heads(module.get_submodule(name), count)


def apply_drop_layers(module: nn.Module, keep: list[int]) -> nn.Module:
    """Keep the encoder layers at ``keep`` (in place), and the Hugging Face config's depth with them."""
    encoder, _, layers = encoder_layers(module)
    encoder.layer = nn.ModuleList([layers[i] for i in keep])
    for sub in module.modules():
        cfg = getattr(sub, "config", None)
        if cfg is not None and hasattr(cfg, "num_hidden_layers"):
            cfg.num_hidden_layers = len(keep)
    return module


@register_handler(DropLayers)
def _drop_layers(handle: ModelHandle, config: DropLayers, ctx: CompressContext, record: StepRecord) -> ModelHandle:
    module = copy.deepcopy(handle.module)
    _, prefix, layers = encoder_layers(module)
    n = len(layers)
    if config.keep_indices:
        keep = list(config.keep_indices)
        if keep[-1] >= n:
            raise InvalidArgumentError("keep_indices", keep, f"the encoder has layers 0..{n - 1}",
                                       f"Use indices below {n}.")
    else:
        if config.keep > n:
            raise InvalidArgumentError("keep", config.keep, f"the encoder has only {n} layers", f"Use keep <= {n}.")
        # Evenly spread, first and last layer included: lower layers build token features, upper
        # layers shape the output space the pooling reads.
        keep = sorted({round(i * (n - 1) / max(config.keep - 1, 1)) for i in range(config.keep)})
    apply_drop_layers(module, keep)
    record.changed = [f"{prefix}.layer.{i}" for i in range(n) if i not in keep]
    record.structure = {"keep_indices": keep, "layers_before": n}
    return _with_module(handle, module)
