"""Training config: overrides, unknown keys, and the privacy validators (Hypothesis)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frugalml.errors import InvalidArgumentError
from frugalml.train import PrivacySettings, TrainConfig, load_train_config


def test_defaults_and_overrides(tmp_path: Path) -> None:
    assert TrainConfig().model == "zoo:minilm" and TrainConfig().method == "lora"
    path = tmp_path / "train.yaml"
    path.write_text("model: zoo:digits-mlp\ndata: zoo:digits\nmethod: full\nepochs: 5\nprivacy: {epsilon: 3}\n")
    config = load_train_config(path, epochs=2, lr=None)
    assert (config.model, config.method, config.epochs) == ("zoo:digits-mlp", "full", 2)  # None leaves the file's
    assert config.privacy == PrivacySettings(epsilon=3)
    assert config.lr_("tensor") == 3e-3 and TrainConfig(method="lora").lr_("text") == 1e-3


def test_unknown_key_names_the_nearest(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("privacy: {epsilom: 3}\n")
    with pytest.raises(InvalidArgumentError, match="privacy.epsilom.*Did you mean 'epsilon'"):
        load_train_config(path)
    path.write_text("method: qlora\n")
    with pytest.raises(InvalidArgumentError, match="method"):
        load_train_config(path)
    with pytest.raises(InvalidArgumentError, match="no such file"):
        load_train_config(tmp_path / "missing.yaml")


@given(st.floats(max_value=0.0) | st.just(math.nan) | st.just(math.inf))
def test_epsilon_must_be_positive_and_finite(epsilon: float) -> None:
    with pytest.raises(InvalidArgumentError, match="epsilon=.*must be a finite number > 0.*--epsilon 3"):
        PrivacySettings(epsilon=epsilon).checked()


@given(st.floats(allow_nan=False).filter(lambda d: not 0 < d < 1))
def test_delta_must_be_a_probability(delta: float) -> None:
    with pytest.raises(InvalidArgumentError, match="delta=.*strictly between 0 and 1"):
        PrivacySettings(epsilon=1, delta=delta).checked()


@given(st.floats(min_value=1e-6, max_value=100), st.floats(min_value=1e-12, max_value=0.999))
def test_valid_privacy_settings_pass(epsilon: float, delta: float) -> None:
    assert PrivacySettings(epsilon=epsilon, delta=delta).checked().epsilon == epsilon
