"""The store's tables (SQLAlchemy 2.x declarative). Changes to them need an Alembic migration.

- ``runs``: one row per command that measured or produced something (kind: profile, compress, ...);
  ``parent_id`` is the run it ran inside (an optimize run's gate, compress and profile runs).
- ``measurements``: one number per row, with its unit, batch size, device and source.
- ``artifacts``: files a run wrote, with their sha256 and size.
- ``events``: the audit trail: who did what to which run, when.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = ["SCHEMA_REVISION", "ArtifactRow", "Base", "EventRow", "MeasurementRow", "RunRow"]

SCHEMA_REVISION = "0002"


class Base(DeclarativeBase):
    pass


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(512), default="")
    status: Mapped[str] = mapped_column(String(16), index=True)  # running | succeeded | failed
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    env: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), nullable=True,
                                                  index=True)

    measurements: Mapped[list[MeasurementRow]] = relationship(back_populates="run", cascade="all, delete-orphan",
                                                               order_by="MeasurementRow.id")
    artifacts: Mapped[list[ArtifactRow]] = relationship(back_populates="run", cascade="all, delete-orphan",
                                                         order_by="ArtifactRow.id")
    events: Mapped[list[EventRow]] = relationship(back_populates="run", order_by="EventRow.id")


class MeasurementRow(Base):
    __tablename__ = "measurements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(32))
    batch: Mapped[int | None] = mapped_column(Integer, nullable=True)
    device: Mapped[str] = mapped_column(String(64), default="")
    source: Mapped[str] = mapped_column(String(64), default="")

    run: Mapped[RunRow] = relationship(back_populates="measurements")


class ArtifactRow(Base):
    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger)

    run: Mapped[RunRow] = relationship(back_populates="artifacts")


class EventRow(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), nullable=True, index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    who: Mapped[str] = mapped_column(String(256))
    what: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    run: Mapped[RunRow | None] = relationship(back_populates="events")
