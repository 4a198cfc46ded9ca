"""Probe runs: a short fine-tune of a job's student per condition (teacher, original, union, decision set) and seed.

`probe_runs` holds what was asked (budget, answer pattern, conditions) and the eval items inline (bounded by
FRONTIER_PROBE_MAX_EVAL_ITEMS); `probe_tasks` holds one row per (condition, seed), the unit a worker trains,
with its learning curve (committed point by point), final metrics, cost and first completions.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Same column types as service.models: BIGINT ids on Postgres (INTEGER so SQLite auto-increments), JSONB.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "probe_runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("budget", JSON, nullable=False),
        sa.Column("answer_pattern", sa.Text(), nullable=True),
        sa.Column("conditions", JSON, nullable=False),
        sa.Column("eval_source", sa.String(length=20), nullable=False),
        sa.Column("eval_items", JSON, nullable=False),
        sa.Column("held_out_sample_ids", JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_probe_runs_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_probe_runs")),
    )
    op.create_index(op.f("ix_probe_runs_job_id"), "probe_runs", ["job_id"])
    op.create_table(
        "probe_tasks",
        sa.Column("id", ID, nullable=False),
        sa.Column("probe_run_id", ID, nullable=False),
        sa.Column("condition", sa.String(length=300), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("n_examples", sa.Integer(), nullable=False),
        sa.Column("progress_step", sa.Integer(), nullable=False),
        sa.Column("curve", JSON, nullable=False),
        sa.Column("final", JSON, nullable=True),
        sa.Column("cost", JSON, nullable=True),
        sa.Column("completions", JSON, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("queued_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["probe_run_id"],
            ["probe_runs.id"],
            name=op.f("fk_probe_tasks_probe_run_id_probe_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_probe_tasks")),
        sa.UniqueConstraint(
            "probe_run_id", "condition", "seed", name=op.f("uq_probe_tasks_probe_run_id_condition_seed")
        ),
    )


def downgrade() -> None:
    op.drop_table("probe_tasks")
    op.drop_index(op.f("ix_probe_runs_job_id"), table_name="probe_runs")
    op.drop_table("probe_runs")
