"""Data efficiency (``frugal data``): audit datasets (duplicates, leakage, label issues, schema, balance),
choose the rows worth labelling (active learning) and prune training data to its informative fraction."""

from frugalml.data._active import STRATEGIES, ALResult, Selection, select, simulate_al
from frugalml.data._audit import AuditReport, audit, write_clean
from frugalml.data._planted import Planted, planted_digits, planted_tabular, planted_text
from frugalml.data._prune import PRUNE_METHODS, PruneResult, prune_data
from frugalml.data._read import Source, iter_chunks, open_source
from frugalml.data._write import write_rows

__all__ = ["PRUNE_METHODS", "STRATEGIES", "ALResult", "AuditReport", "Planted", "PruneResult", "Selection", "Source",
           "audit", "iter_chunks", "open_source", "planted_digits", "planted_tabular", "planted_text", "prune_data", "select",
           "simulate_al", "write_clean", "write_rows"]
