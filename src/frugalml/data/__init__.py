"""Data efficiency: audit datasets (duplicates, leakage, label issues, schema, balance) (``frugal data``).

Active learning (:mod:`frugalml.data._active`: strategies and a simulation) has its building blocks and
tests but no CLI or benchmark yet; data pruning is not built.
"""

from frugalml.data._audit import AuditReport, audit, write_clean
from frugalml.data._planted import Planted, planted_digits, planted_text
from frugalml.data._read import Source, iter_chunks, open_source

__all__ = ["AuditReport", "Planted", "Source", "audit", "iter_chunks", "open_source", "planted_digits", "planted_text",
           "write_clean"]
