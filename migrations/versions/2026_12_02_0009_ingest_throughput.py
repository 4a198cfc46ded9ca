"""Ingest throughput: candidates keep no foreign keys, and a sample's payload is stored as JSON text.

Measured on a 50,000-sample ingest (bench/ingest.py's data, Postgres 16, this 2-core machine): the two per-row
foreign-key checks of `candidates` (to `jobs` and to `samples`) were about half of Postgres' CPU per ingested sample,
and parsing each payload into JSONB a further tenth. Candidates are written only by the ingest, in the transaction
that wrote their samples and from the ids it read back, and deleted only with their job's rows
(service.jobs.repository.delete_job_rows), so the keys guarded nothing the code does not already ensure; the payload
is never queried inside, only read back whole by exports. SQLite stores JSON as text already; its tables are
rebuilt without the keys.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("candidates") as batch:
        batch.drop_constraint(op.f("fk_candidates_job_id_jobs"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_candidates_sample_id_samples"), type_="foreignkey")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "samples", "payload", type_=sa.JSON(), existing_type=postgresql.JSONB(), postgresql_using="payload::json"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "samples", "payload", type_=postgresql.JSONB(), existing_type=sa.JSON(), postgresql_using="payload::jsonb"
        )
    with op.batch_alter_table("candidates") as batch:
        batch.create_foreign_key(
            op.f("fk_candidates_job_id_jobs"), "jobs", ["job_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_foreign_key(
            op.f("fk_candidates_sample_id_samples"), "samples", ["sample_id"], ["id"], ondelete="CASCADE"
        )
