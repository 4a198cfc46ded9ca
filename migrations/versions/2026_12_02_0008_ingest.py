"""Background ingest: a job can be `ingesting` while a task reads its dataset file and stores it in batches.

The job row gains its source (the file, its format, whether the job owns it: a spooled upload is deleted once
ingest ends) and the ingest's progress (records stored, starts since the last stored batch, last sign of life, the
line that failed it). Existing jobs were created whole: no source, nothing to ingest. Decisions get an index by
sample, which deleting a failed ingest's samples needs.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("source_path", sa.Text(), nullable=True))
    op.add_column("jobs", sa.Column("source_format", sa.String(length=20), nullable=True))
    op.add_column("jobs", sa.Column("source_owned", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("jobs", sa.Column("ingested_records", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("jobs", sa.Column("ingest_attempts", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("jobs", sa.Column("ingest_updated_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("rejected_line", sa.Integer(), nullable=True))
    # Jobs created whole hold every record they were given.
    op.execute("UPDATE jobs SET ingested_records = total_samples")
    # A failed ingest deletes its samples; each deleted sample looks up its decisions (ON DELETE CASCADE) by sample.
    op.create_index(op.f("ix_decisions_sample_id"), "decisions", ["sample_id"])


def downgrade() -> None:
    # An ingesting job cannot be represented before this revision: it is failed rather than left half-stored.
    op.execute(
        "UPDATE jobs SET status = 'failed', error = 'ingest interrupted by a schema downgrade' "
        "WHERE status = 'ingesting'"
    )
    op.drop_index(op.f("ix_decisions_sample_id"), table_name="decisions")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("rejected_line")
        batch.drop_column("ingest_updated_at")
        batch.drop_column("ingest_attempts")
        batch.drop_column("ingested_records")
        batch.drop_column("source_owned")
        batch.drop_column("source_format")
        batch.drop_column("source_path")
