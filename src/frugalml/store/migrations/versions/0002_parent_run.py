"""Runs record the run they ran inside (``parent_id``): an optimize run's compress, gate and profile
runs point at it, so the cost of experimentation counts each CPU second once.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch.create_index("ix_runs_parent_id", ["parent_id"])
        batch.create_foreign_key("fk_runs_parent_id", "runs", ["parent_id"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint("fk_runs_parent_id", type_="foreignkey")
        batch.drop_index("ix_runs_parent_id")
        batch.drop_column("parent_id")
