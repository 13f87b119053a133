"""frugalml: make machine-learning models fit where they are deployed.

Measure a model honestly on its target hardware, compress it, verify quality overall and per
subgroup, and gate the result against budgets; every run is recorded in a database.

    >>> import frugalml
    >>> handle = frugalml.load_model("zoo:digits-mlp")
    >>> p = frugalml.profile(handle, batch_sizes=[1, 32])
    >>> p.latency_ms[1].p95, p.energy_source
"""

from frugalml._version import __version__
from frugalml.compress import Recipe, compress
from frugalml.config import FrugalConfig, load_config
from frugalml.datasets import Dataset, load_dataset
from frugalml.errors import (
                             DataError,
                             FrugalError,
                             InvalidArgumentError,
                             MeasurementError,
                             ModelLoadError,
                             StoreError,
                             UnsafeFormatError,
)
from frugalml.evaluate import Evaluation, evaluate
from frugalml.gate import Verdict, gate
from frugalml.measure import LatencyStats, Profile, Roofline, profile
from frugalml.models import InputSpec, ModelHandle, load_model
from frugalml.search import SearchResult, optimize
from frugalml.store import RunRecord, Store, open_store
from frugalml.train import PrivacySettings, TrainConfig, TrainResult, train

__all__ = [
                             "DataError",
                             "Dataset",
                             "Evaluation",
                             "FrugalConfig",
                             "FrugalError",
                             "InputSpec",
                             "InvalidArgumentError",
                             "LatencyStats",
                             "MeasurementError",
                             "ModelHandle",
                             "ModelLoadError",
                             "PrivacySettings",
                             "Profile",
                             "Recipe",
                             "Roofline",
                             "RunRecord",
                             "SearchResult",
                             "Store",
                             "StoreError",
                             "TrainConfig",
                             "TrainResult",
                             "UnsafeFormatError",
                             "Verdict",
                             "__version__",
                             "compress",
                             "evaluate",
                             "gate",
                             "load_config",
                             "load_dataset",
                             "load_model",
                             "open_store",
                             "optimize",
                             "profile",
                             "train",
]
