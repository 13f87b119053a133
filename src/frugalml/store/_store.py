"""The run store: `open_store(url)` and the `Store` / `ActiveRun` API over it.

Addressed by a SQLAlchemy URL, like Optuna's storage: ``sqlite:///.frugal/runs.db`` by default
(``$FRUGAL_STORE`` overrides it), ``postgresql+psycopg://user:pass@host/db`` for a team. Opening a
store brings its schema to the newest Alembic revision.

Writes are transactional: a run is created in one transaction, and finished (its measurements,
artifacts, result, status and audit event together) or failed in another, so a crash in the
middle of a command leaves a run marked ``running`` or ``failed`` and never half its numbers.
"""

from __future__ import annotations

import getpass
import logging
import math
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.orm import Session, selectinload, sessionmaker

from frugalml._json import json_safe
from frugalml.errors import InvalidArgumentError, StoreError
from frugalml.store._schema import ArtifactRow, EventRow, MeasurementRow, RunRow

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

log = logging.getLogger(__name__)

DEFAULT_STORE_URL = "sqlite:///.frugal/runs.db"
RUN_STATUSES = ("running", "succeeded", "failed")


def default_store_url() -> str:
    return os.environ.get("FRUGAL_STORE") or DEFAULT_STORE_URL


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes; every timestamp is written in UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


@dataclass(frozen=True)
class Measurement:
    name: str
    value: float
    unit: str
    batch: int | None = None
    device: str = ""
    source: str = ""


@dataclass(frozen=True)
class Artifact:
    path: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Event:
    at: datetime
    who: str
    what: str
    detail: dict[str, Any]
    run_id: int | None


@dataclass(frozen=True)
class RunRecord:
    id: int
    kind: str
    name: str
    status: str
    created: datetime
    finished: datetime | None
    config: dict[str, Any]
    env: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    measurements: list[Measurement] = field(default_factory=list)
    parent_id: int | None = None
    artifacts: list[Artifact] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    @property
    def duration_s(self) -> float | None:
        return (self.finished - self.created).total_seconds() if self.finished else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "name": self.name, "status": self.status, "parent_id": self.parent_id,
            "created": self.created.isoformat(), "finished": self.finished.isoformat() if self.finished else None,
            "duration_s": self.duration_s, "config": self.config, "env": self.env, "error": self.error,
            "measurements": [m.__dict__ for m in self.measurements],
            "artifacts": [a.__dict__ for a in self.artifacts],
            "events": [{**e.__dict__, "at": e.at.isoformat()} for e in self.events],
            "result": self.result,
        }


def _record(row: RunRow, *, full: bool) -> RunRecord:
    return RunRecord(
        id=row.id, kind=row.kind, name=row.name, status=row.status, created=_utc(row.created),  # type: ignore[arg-type]
        finished=_utc(row.finished), config=row.config or {}, env=row.env or {},
        result=row.result if full else None, error=row.error, parent_id=row.parent_id,
        measurements=[Measurement(m.name, m.value, m.unit, m.batch, m.device, m.source) for m in row.measurements]
        if full else [],
        artifacts=[Artifact(a.path, a.sha256, a.bytes) for a in row.artifacts] if full else [],
        events=[Event(_utc(e.at), e.who, e.what, e.detail or {}, e.run_id) for e in row.events]  # type: ignore[arg-type]
        if full else [],
    )


# Runs open in this context, innermost last, as (store URL, run id): a run started while another of
# the same store is open records it as its parent (optimize -> its gate, compress and profile runs).
_OPEN_RUNS: ContextVar[tuple[tuple[str, int], ...]] = ContextVar("frugal_open_runs", default=())


class ActiveRun:
    """A run in progress. Finish it with :meth:`finish` or :meth:`fail`, exactly once."""

    def __init__(self, store: Store, run_id: int) -> None:
        from frugalml.store._cost import RunCostMeter

        self.store = store
        self.id = run_id
        self._done = False
        self._cost = RunCostMeter()  # the command's own CPU time, energy and CO2e, read again at the end
        _OPEN_RUNS.set((*_OPEN_RUNS.get(), (store.url, run_id)))

    def _close(self) -> None:
        if self._done:
            raise InvalidArgumentError("run", self.id, "is already finished", "Start a new run.")
        self._done = True
        _OPEN_RUNS.set(tuple(r for r in _OPEN_RUNS.get() if r != (self.store.url, self.id)))

    def finish(self, *, result: dict[str, Any] | None = None, measurements: Sequence[Measurement] = (),
               artifacts: Sequence[Artifact] = ()) -> int:
        """Write the results and mark the run succeeded, all in one transaction."""
        self._close()
        measurements = [*measurements, *self._cost.measurements()]
        with self.store._transaction() as session:
            row = session.get(RunRow, self.id)
            if row is None:
                raise StoreError("run", self.id, "vanished from the store while running",
                                 "Check that nobody deleted it, and run the command again.")
            for m in measurements:
                if not math.isfinite(m.value):
                    continue  # an unmeasurable figure is absent, never stored as NaN
                row.measurements.append(MeasurementRow(name=m.name, value=float(m.value), unit=m.unit, batch=m.batch,
                                                       device=m.device, source=m.source))
            for a in artifacts:
                row.artifacts.append(ArtifactRow(path=a.path, sha256=a.sha256, bytes=a.bytes))
            row.result = json_safe(result) if result is not None else None
            row.status, row.finished = "succeeded", _now()
            session.add(EventRow(run_id=self.id, at=_now(), who=_who(), what="run.succeeded",
                                 detail={"measurements": len(measurements), "artifacts": len(artifacts)}))
        return self.id

    def fail(self, error: BaseException | str) -> None:
        """Mark the run failed with the error's message. Of its results nothing is written; what the run
        cost (CPU time, energy, CO2e) is, since experimentation that failed was still paid for."""
        self._close()
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        try:
            with self.store._transaction() as session:
                row = session.get(RunRow, self.id)
                if row is not None:
                    row.status, row.finished, row.error = "failed", _now(), message[:10000]
                    for m in self._cost.measurements():
                        if math.isfinite(m.value):
                            row.measurements.append(MeasurementRow(name=m.name, value=float(m.value), unit=m.unit,
                                                                   device=m.device, source=m.source))
                session.add(EventRow(run_id=self.id, at=_now(), who=_who(), what="run.failed",
                                     detail={"error": message[:1000]}))
        except StoreError:
            log.exception("could not record the failure of run %s", self.id)


@contextmanager
def fail_on_error(run: ActiveRun | None) -> Iterator[None]:
    """Mark ``run`` (if any) failed when the block raises, then re-raise: one place for every command."""
    try:
        yield
    except BaseException as exc:
        if run is not None and not run._done:
            run.fail("interrupted" if isinstance(exc, KeyboardInterrupt) else exc)
        raise


class Store:
    """A run store at a SQLAlchemy URL. Use :func:`open_store` to create one."""

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"Store({make_url(self.url).render_as_string(hide_password=True)!r})"

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            with session.begin():
                yield session
        except SQLAlchemyError as exc:
            raise StoreError("store", self.safe_url, f"a write failed and was rolled back ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0]})", "Check the database is reachable and writable.") from None
        finally:
            session.close()

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def start_run(self, kind: str, *, name: str = "", config: dict[str, Any] | None = None,
                  env: dict[str, Any] | None = None) -> ActiveRun:
        """Create a run with status ``running`` (committed at once, so a crash leaves a trace). A run
        started while another run of this store is open (in this thread or task) is its child."""
        if not kind or len(kind) > 32:
            raise InvalidArgumentError("kind", kind, "must be a non-empty name of at most 32 characters",
                                       "Use e.g. 'profile'.")
        with self._transaction() as session:
            parent = next((rid for url, rid in reversed(_OPEN_RUNS.get()) if url == self.url), None)
            row = RunRow(kind=kind, name=name[:512], status="running", created=_now(), parent_id=parent,
                         config=json_safe(config or {}), env=json_safe(env or {}))
            session.add(row)
            session.flush()
            session.add(EventRow(run_id=row.id, at=_now(), who=_who(), what="run.started", detail={"kind": kind}))
            run_id = row.id
        return ActiveRun(self, run_id)

    def list_runs(self, *, kind: str | None = None, status: str | None = None, name_contains: str | None = None,
                  parent_id: int | None = None, limit: int = 50, with_result: bool = False) -> list[RunRecord]:
        """Runs, newest first, optionally filtered by kind, status, a substring of the name and the
        parent run; with ``with_result`` each record carries its result (measurements, artifacts and
        events never)."""
        if status is not None and status not in RUN_STATUSES:
            raise InvalidArgumentError("status", status, f"is not one of {', '.join(RUN_STATUSES)}",
                                       f"Use one of {', '.join(RUN_STATUSES)}.")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidArgumentError("limit", limit, "must be a positive integer", "Use e.g. --limit 20.")
        query = select(RunRow).order_by(RunRow.id.desc()).limit(limit)
        if kind is not None:
            query = query.where(RunRow.kind == kind)
        if status is not None:
            query = query.where(RunRow.status == status)
        if parent_id is not None:
            query = query.where(RunRow.parent_id == parent_id)
        if name_contains:
            escaped = name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(RunRow.name.ilike(f"%{escaped}%", escape="\\"))
        with self._sessions() as session:
            rows = list(session.scalars(query))
            return [replace(_record(row, full=False), result=row.result) if with_result else _record(row, full=False)
                    for row in rows]

    def kinds(self) -> list[str]:
        """The run kinds present in the store, sorted."""
        with self._sessions() as session:
            return sorted(session.scalars(select(RunRow.kind).distinct()))

    def run_costs(self, run_ids: Sequence[int] | None = None) -> dict[int, dict[str, float]]:
        """Each run's own cost rows (``run_cpu_time`` s, ``run_energy`` J, ``run_co2e`` g), by run id."""
        query = select(MeasurementRow.run_id, MeasurementRow.name, MeasurementRow.value).where(
            MeasurementRow.name.in_(("run_cpu_time", "run_energy", "run_co2e")))
        if run_ids is not None:
            query = query.where(MeasurementRow.run_id.in_(list(run_ids)))
        out: dict[int, dict[str, float]] = {}
        with self._sessions() as session:
            for run_id, name, value in session.execute(query):
                out.setdefault(run_id, {})[name] = value
        return out

    def get_run(self, run_id: int) -> RunRecord:
        """One run with its measurements, artifacts, events and result."""
        if isinstance(run_id, bool) or not isinstance(run_id, int) or run_id < 1:
            raise InvalidArgumentError("run_id", run_id, "must be a positive integer", "Use an ID from 'frugal runs list'.")
        query = (select(RunRow).where(RunRow.id == run_id)
                 .options(selectinload(RunRow.measurements), selectinload(RunRow.artifacts), selectinload(RunRow.events)))
        with self._sessions() as session:
            row = session.scalars(query).first()
            if row is None:
                raise StoreError("run_id", run_id, f"no such run in {self.safe_url}",
                                 "List the runs with 'frugal runs list'.")
            return _record(row, full=True)

    def experiment_cost(self) -> dict[str, Any]:
        """What all the runs in the store cost: per kind and per day (UTC), the number of runs, their
        wall-clock seconds, CPU seconds, energy (J) and CO2e (g), and the energy sources involved.

        Time and energy are summed over top-level runs only: a run inside another (an optimize run's
        gate) is already in its parent's figures, and counting it again would double them."""
        costs = self.run_costs()
        query = select(RunRow.id, RunRow.kind, RunRow.status, RunRow.created, RunRow.finished, RunRow.parent_id)
        by_kind: dict[str, dict[str, float]] = {}
        by_day: dict[str, dict[str, float]] = {}
        with self._sessions() as session:
            rows = list(session.execute(query))
            sources = sorted(set(session.scalars(select(MeasurementRow.source).where(
                MeasurementRow.name.in_(("run_energy", "run_co2e"))).distinct())))
        zero = {"runs": 0.0, "failed": 0.0, "wall_s": 0.0, "cpu_s": 0.0, "energy_j": 0.0, "co2e_g": 0.0}
        for run_id, kind, status, created, finished, parent in rows:
            c = costs.get(run_id, {}) if parent is None else {}
            created, finished = _utc(created), _utc(finished)
            wall = (finished - created).total_seconds() if finished and created else 0.0
            if parent is not None:
                wall = 0.0
            for bucket in (by_kind.setdefault(kind, dict(zero)),
                           by_day.setdefault(created.strftime("%Y-%m-%d") if created else "?", dict(zero))):
                bucket["runs"] += 1
                bucket["failed"] += status == "failed"
                bucket["wall_s"] += wall
                bucket["cpu_s"] += c.get("run_cpu_time", 0.0)
                bucket["energy_j"] += c.get("run_energy", 0.0)
                bucket["co2e_g"] += c.get("run_co2e", 0.0)
        total = {k: sum(b[k] for b in by_kind.values()) for k in zero}
        return {"total": total, "by_kind": dict(sorted(by_kind.items())), "by_day": dict(sorted(by_day.items())),
                "sources": sources, "nested_runs": sum(1 for r in rows if r[5] is not None),
                "runs_without_cost": sum(1 for r in rows if r[0] not in costs)}

    def record_event(self, what: str, *, run_id: int | None = None, detail: dict[str, Any] | None = None) -> None:
        with self._transaction() as session:
            session.add(EventRow(run_id=run_id, at=_now(), who=_who(), what=what[:64], detail=json_safe(detail or {})))

    def events(self, *, run_id: int | None = None, limit: int = 100) -> list[Event]:
        query = select(EventRow).order_by(EventRow.id.desc()).limit(limit)
        if run_id is not None:
            query = query.where(EventRow.run_id == run_id)
        with self._sessions() as session:
            return [Event(_utc(e.at), e.who, e.what, e.detail or {}, e.run_id)  # type: ignore[arg-type]
                    for e in session.scalars(query)]

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (frugal ui) read while a command writes; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _adopt_legacy_version_table(connection: Any) -> None:
    """Stores made before 0.1 kept our revision in ``alembic_version``, the table Optuna needs for its
    own schema: move our row to ``frugal_alembic_version`` so both can share one database."""
    from sqlalchemy import inspect, text

    tables = set(inspect(connection).get_table_names())
    if "alembic_version" not in tables or "frugal_alembic_version" in tables or "runs" not in tables:
        return
    rows = [r[0] for r in connection.execute(text("SELECT version_num FROM alembic_version"))]
    if rows and all(r.isdigit() and len(r) == 4 for r in rows):  # our revision ids are 0001, 0002, ...
        connection.execute(text("CREATE TABLE frugal_alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
        for r in rows:
            connection.execute(text("INSERT INTO frugal_alembic_version (version_num) VALUES (:v)"), {"v": r})
        connection.execute(text("DROP TABLE alembic_version"))


def _migrate(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        _adopt_legacy_version_table(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_store(url: str | None = None) -> Store:
    """Open (creating and migrating if needed) the store at ``url``; default ``$FRUGAL_STORE`` or
    ``sqlite:///.frugal/runs.db``."""
    url = url or default_store_url()
    if not isinstance(url, str):
        raise StoreError("store", url, "must be a database URL", f"Use e.g. {DEFAULT_STORE_URL}.")
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError("store", url, "is not a database URL",
                         f"Use e.g. {DEFAULT_STORE_URL} or postgresql+psycopg://user:pass@host/db.") from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StoreError("store", url, f"backend {backend!r} is not supported",
                         "Use sqlite:///PATH or postgresql+psycopg://user:pass@host/db.")
    safe = parsed.render_as_string(hide_password=True)
    kwargs: dict[str, Any] = {}
    if backend == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            try:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError("store", safe, f"cannot create its folder ({exc.strerror})",
                                 "Choose a writable path.") from None
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        engine = create_engine(url, **kwargs)
    except NoSuchModuleError:
        raise StoreError("store", safe, f"no SQLAlchemy driver for {parsed.drivername!r}",
                         "Use postgresql+psycopg://... and pip install 'frugalml[postgres]'.") from None
    except ModuleNotFoundError as exc:
        raise StoreError("store", safe, f"the database driver is not installed ({exc.name})",
                         "Run: pip install 'frugalml[postgres]'.") from None
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        _migrate(engine)
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]
        raise StoreError("store", safe, f"cannot connect ({reason})",
                         "Check the URL, that the server is running and reachable, and the credentials.") from None
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StoreError("store", safe, f"cannot prepare the schema ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0]})", "Check that the database user may create tables.") from None
    return Store(url, engine)
