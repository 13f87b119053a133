"""Efficient and private training: fine-tuning (full, LoRA, head), differential privacy, federated learning.

    >>> from frugalml.train import train
    >>> result = train(method="lora", epochs=2, max_train_items=2000)
    >>> result.test_accuracy, result.trainable_fraction
    >>> from frugalml.train import simulate
    >>> fed = simulate(clients=20, rounds=50, compress_updates="int8")
    >>> fed.final_accuracy, fed.centralized_accuracy, fed.upload_bytes
"""

from frugalml.train._config import (
    ACCOUNTANTS,
    METHODS,
    LoraSettings,
    PrivacySettings,
    TrainConfig,
    load_train_config,
)
from frugalml.train._federated import FederatedResult, simulate
from frugalml.train._finetune import TrainResult, train
from frugalml.train._privacy import PrivacyWarning

__all__ = [
    "ACCOUNTANTS",
    "FederatedResult",
    "METHODS",
    "LoraSettings",
    "PrivacySettings",
    "PrivacyWarning",
    "TrainConfig",
    "TrainResult",
    "load_train_config",
    "simulate",
    "train",
]
