"""One store suite over SQLite and PostgreSQL: round trips, transactions, migrations, errors."""

from __future__ import annotations

import math
import time
import uuid

import pytest
from sqlalchemy import inspect, text

from frugalml.errors import InvalidArgumentError, StoreError
from frugalml.store import Artifact, Measurement, open_store
from frugalml.store._schema import SCHEMA_REVISION


def test_round_trip(store_url: str) -> None:
    store = open_store(store_url)
    run = store.start_run("profile", name="zoo:x", config={"batch_sizes": [1, 8]}, env={"cpu": "test"})
    run.finish(result={"latency_ms": {"1": {"p50": 1.5}}, "nan": float("nan")},
               measurements=[Measurement("latency_p50", 1.5, "ms", batch=1, device="cpu", source="torch"),
                             Measurement("size", 1024, "bytes"),
                             Measurement("skipped", float("nan"), "ms")],
               artifacts=[Artifact("model.safetensors", "ab" * 32, 1024)])
    got = store.get_run(run.id)
    assert got.status == "succeeded" and got.kind == "profile" and got.name == "zoo:x"
    assert got.config == {"batch_sizes": [1, 8]} and got.env == {"cpu": "test"}
    assert got.result == {"latency_ms": {"1": {"p50": 1.5}}, "nan": None}
    assert [(m.name, m.value, m.unit, m.batch) for m in got.measurements if not m.name.startswith("run_")] == [
        ("latency_p50", 1.5, "ms", 1), ("size", 1024.0, "bytes", None)]
    assert got.artifacts == [Artifact("model.safetensors", "ab" * 32, 1024)]
    assert [e.what for e in got.events] == ["run.started", "run.succeeded"]
    assert got.finished is not None and got.created.tzinfo is not None and got.duration_s >= 0
    store.close()


def test_run_cost_is_recorded(store_url: str) -> None:
    """Every run records what it cost: CPU seconds, energy (with its source) and CO2e (with its grid)."""
    store = open_store(store_url)
    run = store.start_run("profile")
    start = time.process_time()
    while time.process_time() - start < 0.05:  # at least 50 ms of CPU to account for
        sum(i * i for i in range(10_000))
    run.finish()
    cost = {m.name: m for m in store.get_run(run.id).measurements}
    assert set(cost) == {"run_cpu_time", "run_energy", "run_co2e"}
    assert cost["run_cpu_time"].value >= 0.05 and cost["run_cpu_time"].unit == "s"
    assert cost["run_energy"].value > 0 and cost["run_energy"].unit == "J"
    assert cost["run_energy"].source.startswith(("rapl", "estimate"))
    # world average: 475 g/kWh, so g = J / 3.6e6 * 475
    assert cost["run_co2e"].source == "world-average"
    assert math.isclose(cost["run_co2e"].value, cost["run_energy"].value / 3.6e6 * 475, rel_tol=1e-9)


def test_run_cost_uses_the_region(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from frugalml.measure.energy import carbon_intensity_g_per_kwh

    monkeypatch.setenv("FRUGAL_REGION", "fra")
    store = open_store(store_url)
    run = store.start_run("profile")
    run.finish()
    cost = {m.name: m for m in store.get_run(run.id).measurements}
    assert cost["run_co2e"].source == "codecarbon:FRA"
    assert math.isclose(cost["run_co2e"].value,
                        cost["run_energy"].value / 3.6e6 * carbon_intensity_g_per_kwh("FRA")[0], rel_tol=1e-9)


def test_failed_run_records_only_the_failure_and_its_cost(store_url: str) -> None:
    store = open_store(store_url)
    run = store.start_run("profile", name="broken")
    run.fail(RuntimeError("boom"))
    got = store.get_run(run.id)
    assert got.status == "failed" and got.error == "RuntimeError: boom"
    assert {m.name for m in got.measurements} == {"run_cpu_time", "run_energy", "run_co2e"}
    assert got.result is None
    assert [e.what for e in got.events] == ["run.started", "run.failed"]
    with pytest.raises(InvalidArgumentError, match="already finished"):
        run.finish()


def test_finish_is_atomic(store_url: str) -> None:
    """A write that fails half-way leaves no measurement behind and the run still 'running'."""
    store = open_store(store_url)
    run = store.start_run("profile")
    too_long = "x" * 200  # measurements.name is VARCHAR(128): PostgreSQL rejects it, SQLite does not check
    with store.engine.begin() as conn:  # make SQLite fail too: a trigger that rejects the second row
        if store.engine.dialect.name == "sqlite":
            conn.execute(text("CREATE TRIGGER reject BEFORE INSERT ON measurements WHEN NEW.name = 'bad' "
                              "BEGIN SELECT RAISE(ABORT, 'rejected'); END"))
    bad = "bad" if store.engine.dialect.name == "sqlite" else too_long
    with pytest.raises(StoreError, match="rolled back"):
        run.finish(measurements=[Measurement("good", 1.0, "ms"), Measurement(bad, 2.0, "ms")])
    got = store.get_run(run.id)
    assert got.status == "running" and got.measurements == []


def test_list_filters_and_order(store_url: str) -> None:
    store = open_store(store_url)
    ids = []
    for kind in ("profile", "compress", "profile"):
        run = store.start_run(kind)
        run.finish()
        ids.append(run.id)
    failed = store.start_run("profile")
    failed.fail("x")
    assert [r.id for r in store.list_runs()] == [failed.id, *reversed(ids)]
    assert [r.id for r in store.list_runs(kind="profile", status="succeeded")] == [ids[2], ids[0]]
    assert len(store.list_runs(limit=2)) == 2
    with pytest.raises(InvalidArgumentError, match="status"):
        store.list_runs(status="done")
    with pytest.raises(InvalidArgumentError, match="limit"):
        store.list_runs(limit=0)


def test_missing_run(store_url: str) -> None:
    store = open_store(store_url)
    with pytest.raises(StoreError, match="no such run"):
        store.get_run(12345)
    with pytest.raises(InvalidArgumentError, match="run_id"):
        store.get_run(0)


def test_schema_is_migrated_and_reopen_is_idempotent(store_url: str) -> None:
    first = open_store(store_url)
    first.start_run("profile").finish()
    first.close()
    second = open_store(store_url)
    tables = set(inspect(second.engine).get_table_names())
    assert {"runs", "measurements", "artifacts", "events", "frugal_alembic_version"} <= tables
    with second.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM frugal_alembic_version")).scalar() == SCHEMA_REVISION
    assert len(second.list_runs()) == 1


def test_a_0001_store_is_upgraded_keeping_its_runs(store_url: str) -> None:
    """A store written before parent runs existed gains the column and keeps every run."""
    from alembic import command
    from alembic.config import Config
    from pathlib import Path
    from sqlalchemy import create_engine

    import frugalml.store._store as store_module

    engine = create_engine(store_url)
    config = Config()
    config.set_main_option("script_location", str(Path(store_module.__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(text("INSERT INTO runs (kind, name, status, created, config, env) VALUES "
                                "('profile', 'old', 'succeeded', CURRENT_TIMESTAMP, '{}', '{}')"))
    engine.dispose()
    store = open_store(store_url)
    (old,) = store.list_runs()
    assert old.name == "old" and old.parent_id is None
    assert "parent_id" in {c["name"] for c in inspect(store.engine).get_columns("runs")}


def test_nested_runs_record_their_parent_and_cost_counts_once(store_url: str) -> None:
    store = open_store(store_url)
    outer = store.start_run("optimize", name="search")
    inner = store.start_run("profile", name="inside")
    inner.finish()
    outer.finish()
    after = store.start_run("profile", name="after")  # the outer run is closed: no parent
    after.finish()
    assert store.get_run(inner.id).parent_id == outer.id
    assert store.get_run(outer.id).parent_id is None and store.get_run(after.id).parent_id is None
    assert [r.id for r in store.list_runs(parent_id=outer.id)] == [inner.id]
    costs = store.run_costs()
    cost = store.experiment_cost()
    assert cost["total"]["runs"] == 3 and cost["nested_runs"] == 1
    expected = costs[outer.id]["run_energy"] + costs[after.id]["run_energy"]  # the inner run is in its parent's
    assert math.isclose(cost["total"]["energy_j"], expected, rel_tol=1e-9)
    assert cost["by_kind"]["profile"]["runs"] == 2


def test_name_filter_escapes_wildcards(store_url: str) -> None:
    store = open_store(store_url)
    for name in ("zoo:minilm", "zoo:digits_cnn", "zoo:digitsXcnn", "100%"):
        store.start_run("profile", name=name).finish()
    assert [r.name for r in store.list_runs(name_contains="MiniLM")] == ["zoo:minilm"]  # case-insensitive
    assert [r.name for r in store.list_runs(name_contains="digits_")] == ["zoo:digits_cnn"]  # "_" is literal
    assert [r.name for r in store.list_runs(name_contains="0%")] == ["100%"]
    with_result = store.list_runs(name_contains="minilm", with_result=True)
    assert with_result[0].result is None and with_result[0].measurements == []


def test_optuna_shares_the_store_database(store_url: str) -> None:
    import optuna

    store = open_store(store_url)
    store.start_run("profile").finish()
    name = f"shared-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(storage=store_url, study_name=name)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(optuna.load_study(study_name=name, storage=store_url).trials) == 2
    assert len(open_store(store_url).list_runs()) == 1
    optuna.delete_study(study_name=name, storage=store_url)


def test_legacy_version_table_is_adopted(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    store.start_run("profile").finish()
    with store.engine.begin() as conn:  # the layout of stores made before the rename
        conn.execute(text("ALTER TABLE frugal_alembic_version RENAME TO alembic_version"))
    store.close()
    reopened = open_store(sqlite_url)
    tables = set(inspect(reopened.engine).get_table_names())
    assert "alembic_version" not in tables and "frugal_alembic_version" in tables
    assert len(reopened.list_runs()) == 1


def test_events_audit_trail(store_url: str) -> None:
    store = open_store(store_url)
    store.record_event("store.note", detail={"why": "test", "x": math.inf})
    events = store.events()
    assert events[0].what == "store.note" and events[0].detail == {"why": "test", "x": None}
    assert "@" in events[0].who


def test_sqlite_uses_wal(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


@pytest.mark.parametrize("url, match", [
    ("not a url", "not a database URL"),
    ("mysql://u:p@localhost/db", "not supported"),
    ("postgresql+nosuchdriver://u:p@localhost/db", "no SQLAlchemy driver"),
    ("postgresql+psycopg://u:secret@127.0.0.1:1/db", "cannot connect"),
])
def test_bad_urls(url: str, match: str) -> None:
    with pytest.raises(StoreError, match=match) as info:
        open_store(url)
    assert "secret" not in str(info.value)  # passwords never appear in messages


def test_unwritable_sqlite_path(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot create its folder"):
        open_store(f"sqlite:///{blocker}/sub/runs.db")
