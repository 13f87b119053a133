"""Efficient and private training: fine-tuning (full, LoRA, head), differential privacy, federated learning.

    >>> from frugalml.train import train
    >>> result = train(method="lora", epochs=2, max_train_items=2000)
    >>> result.test_accuracy, result.trainable_fraction
"""

from frugalml.train._config import (
    ACCOUNTANTS,
    METHODS,
    LoraSettings,
    PrivacySettings,
    TrainConfig,
    load_train_config,
)
from frugalml.train._finetune import TrainResult, train
from frugalml.train._privacy import PrivacyWarning

__all__ = [
    "ACCOUNTANTS",
    "METHODS",
    "LoraSettings",
    "PrivacySettings",
    "PrivacyWarning",
    "TrainConfig",
    "TrainResult",
    "load_train_config",
    "train",
]
