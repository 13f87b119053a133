"""DP training through Opacus: the accountant's epsilon, the record in store and card, and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from frugalml.errors import InvalidArgumentError
from frugalml.store import open_store
from frugalml.train import PrivacySettings, PrivacyWarning, train
from frugalml.train._privacy import check_delta, default_delta, make_private_ready

DIGITS = {"model": "zoo:digits-mlp", "data": "zoo:digits", "init": "scratch", "method": "full", "batch_size": 64}


def test_dp_training_spends_at_most_the_target_and_records_it(sqlite_url: str, tmp_path: Path) -> None:
    result = train(**DIGITS, epochs=4, patience=10, privacy=PrivacySettings(epsilon=3, accountant="rdp"),
                   store=sqlite_url, out=str(tmp_path / "dp"))
    p = result.privacy
    assert p is not None and p["accountant"] == "rdp" and p["delta"] == default_delta(result.train_items)
    assert 0 < p["epsilon_spent"] <= 3 * 1.01 and p["noise_multiplier"] > 0.5 and p["steps"] > 0
    assert result.test_accuracy > 0.3  # noisy, but it learns
    run = open_store(sqlite_url).get_run(result.run_id)
    epsilon = next(m for m in run.measurements if m.name == "epsilon")
    assert epsilon.value == pytest.approx(p["epsilon_spent"]) and "rdp" in epsilon.source
    card = (tmp_path / "dp" / "MODEL_CARD.md").read_text()
    assert "DP-SGD" in card and f"epsilon = {p['epsilon_spent']:.3g}" in card and "RDP accountant" in card


def test_early_stopping_spends_less_than_planned() -> None:
    result = train(**DIGITS, epochs=50, patience=1, privacy=PrivacySettings(epsilon=8), record=False)
    assert result.epochs_run < 50 and result.privacy["epsilon_spent"] < 8


def test_delta_at_or_above_one_over_n_warns() -> None:
    assert check_delta(1e-5, 1000) is None
    with pytest.warns(PrivacyWarning, match=r"delta=0.01 is >= 1/N = 1/100"):
        assert "1/N" in check_delta(0.01, 100)
    with pytest.warns(PrivacyWarning):
        result = train(**DIGITS, epochs=1, privacy=PrivacySettings(epsilon=8, delta=0.01), record=False)
    assert result.privacy["warnings"]


def test_batchnorm_is_replaced_and_listed() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 10))
    replaced: list[str] = []
    fixed = make_private_ready(model, "tensor", "full", [], replaced)
    assert replaced == ["1: BatchNorm2d -> GroupNorm"] and isinstance(fixed[1], nn.GroupNorm)
    result = train(module=model, example_inputs=torch.zeros(2, 1, 8, 8), data="zoo:digits", method="full", epochs=1,
                   privacy=PrivacySettings(epsilon=8), record=False)
    assert result.replaced_layers == ["1: BatchNorm2d -> GroupNorm"]


class _Scaled(nn.Module):
    """A custom trainable layer that also holds a buffer: Opacus cannot give it per-sample gradients."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(64))
        self.register_buffer("count", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


def test_layers_opacus_cannot_handle_are_named() -> None:
    model = nn.Sequential(_Scaled(), nn.Linear(64, 10))
    with pytest.raises(InvalidArgumentError, match=r"privacy=.*trainable layers with buffers.*0:_Scaled"):
        train(module=model, example_inputs=torch.zeros(2, 64), data="zoo:digits", method="full",
              privacy=PrivacySettings(epsilon=3), record=False)


def test_text_lora_with_dp_freezes_and_lists_the_embeddings(tmp_path: Path) -> None:
    import pandas as pd

    from frugalml.datasets import load_dataset

    frame = load_dataset("zoo:stdlib-docs").frame
    parts = [frame[frame.source == family].sort_values("text").head(40) for family in ("network", "text")]
    pd.concat(parts)[["text", "source", "split"]].to_csv(tmp_path / "tiny.csv", index=False)
    result = train(data=str(tmp_path / "tiny.csv"), label_column="source", method="lora", epochs=1, max_seq_len=32,
                   privacy=PrivacySettings(epsilon=8), record=False)
    assert any(f.startswith("embeddings:") for f in result.frozen)
    assert 0 < result.privacy["epsilon_spent"] <= 8 * 1.01 and result.trainable_fraction < 0.02
