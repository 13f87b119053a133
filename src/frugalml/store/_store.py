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
from dataclasses import dataclass, field
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
    artifacts: list[Artifact] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    @property
    def duration_s(self) -> float | None:
        return (self.finished - self.created).total_seconds() if self.finished else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "name": self.name, "status": self.status,
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
        result=row.result if full else None, error=row.error,
        measurements=[Measurement(m.name, m.value, m.unit, m.batch, m.device, m.source) for m in row.measurements]
        if full else [],
        artifacts=[Artifact(a.path, a.sha256, a.bytes) for a in row.artifacts] if full else [],
        events=[Event(_utc(e.at), e.who, e.what, e.detail or {}, e.run_id) for e in row.events]  # type: ignore[arg-type]
        if full else [],
    )


class ActiveRun:
    """A run in progress. Finish it with :meth:`finish` or :meth:`fail`, exactly once."""

    def __init__(self, store: Store, run_id: int) -> None:
        self.store = store
        self.id = run_id
        self._done = False

    def _close(self) -> None:
        if self._done:
            raise InvalidArgumentError("run", self.id, "is already finished", "Start a new run.")
        self._done = True

    def finish(self, *, result: dict[str, Any] | None = None, measurements: Sequence[Measurement] = (),
               artifacts: Sequence[Artifact] = ()) -> int:
        """Write the results and mark the run succeeded, all in one transaction."""
        self._close()
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
        """Mark the run failed with the error's message; nothing else of it is written."""
        self._close()
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        try:
            with self.store._transaction() as session:
                row = session.get(RunRow, self.id)
                if row is not None:
                    row.status, row.finished, row.error = "failed", _now(), message[:10000]
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
        """Create a run with status ``running`` (committed at once, so a crash leaves a trace)."""
        if not kind or len(kind) > 32:
            raise InvalidArgumentError("kind", kind, "must be a non-empty name of at most 32 characters",
                                       "Use e.g. 'profile'.")
        with self._transaction() as session:
            row = RunRow(kind=kind, name=name[:512], status="running", created=_now(),
                         config=json_safe(config or {}), env=json_safe(env or {}))
            session.add(row)
            session.flush()
            session.add(EventRow(run_id=row.id, at=_now(), who=_who(), what="run.started", detail={"kind": kind}))
            run_id = row.id
        return ActiveRun(self, run_id)

    def list_runs(self, *, kind: str | None = None, status: str | None = None, limit: int = 50) -> list[RunRecord]:
        """Runs, newest first, optionally filtered by kind and status."""
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
        with self._sessions() as session:
            return [_record(row, full=False) for row in session.scalars(query)]

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
