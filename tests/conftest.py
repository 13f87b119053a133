"""Shared fixtures: an isolated cache and store per session, store URLs for both backends, markers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_configure(config: pytest.Config) -> None:
    # Trained zoo models and the stdlib corpus are cached across test runs, but never in the
    # user's own cache: FRUGAL_CACHE_DIR points at a folder beside the repository's .venv.
    cache = Path(__file__).resolve().parent.parent / ".frugal" / "test-cache"
    os.environ.setdefault("FRUGAL_CACHE_DIR", str(cache))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs an NVIDIA GPU (CUDA not available)")
        for item in items:
            if "cuda" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema-less database per test on the server named by FRUGAL_TEST_POSTGRES_URL."""
    base = os.environ.get("FRUGAL_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("FRUGAL_TEST_POSTGRES_URL is not set (CI starts a PostgreSQL server and sets it)")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"frugal_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Every store test runs on both backends (PostgreSQL skips without a server)."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


@pytest.fixture(scope="session")
def minilm():
    from frugalml import load_model

    return load_model("zoo:minilm")


@pytest.fixture(scope="session")
def digits_mlp():
    from frugalml import load_model

    return load_model("zoo:digits-mlp")
