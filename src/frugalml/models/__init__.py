"""Models: the format-independent `ModelHandle`, loaders for every supported format, and the zoo."""

from frugalml.models._handle import (
    FORMATS,
    RUNTIMES,
    TASKS,
    InputSpec,
    ModelHandle,
    Runner,
    weights_digest,
)
from frugalml.models._load import load_model
from frugalml.models._safety import sha256_file
from frugalml.models._text import SentenceEncoder, SequenceClassifier
from frugalml.models._zoo import ZOO_MODELS, DigitsCNN, DigitsMLP

__all__ = [
    "FORMATS",
    "RUNTIMES",
    "TASKS",
    "ZOO_MODELS",
    "DigitsCNN",
    "DigitsMLP",
    "InputSpec",
    "ModelHandle",
    "Runner",
    "SentenceEncoder",
    "SequenceClassifier",
    "load_model",
    "sha256_file",
    "weights_digest",
]
