"""The run store: every measuring command is a run in a SQL database (SQLite or PostgreSQL)."""

from frugalml.store._store import (
    DEFAULT_STORE_URL,
    RUN_STATUSES,
    ActiveRun,
    Artifact,
    Event,
    Measurement,
    RunRecord,
    Store,
    default_store_url,
    fail_on_error,
    open_store,
)

__all__ = [
    "DEFAULT_STORE_URL",
    "RUN_STATUSES",
    "ActiveRun",
    "Artifact",
    "Event",
    "Measurement",
    "RunRecord",
    "Store",
    "default_store_url",
    "fail_on_error",
    "open_store",
]
