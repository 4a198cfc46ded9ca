"""Scoring totals on the job row: scored candidates and the tokens of their scored spans.

`/metrics` read these by scanning every scored candidate at each scrape; kept on the job (added once per chunk,
in the chunk's own transaction) a scrape reads one row per job. Existing jobs are backfilled from their
candidates.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 13:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("scored_candidates", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("jobs", sa.Column("scored_tokens", sa.BigInteger(), nullable=False, server_default="0"))
    op.execute(
        """
        UPDATE jobs SET
            scored_candidates = (
                SELECT count(*) FROM candidates WHERE candidates.job_id = jobs.id AND candidates.status = 'scored'
            ),
            scored_tokens = (
                SELECT coalesce(sum(
                    coalesce(n_instruction_tokens, 0) + coalesce(n_response_tokens, 0)
                    + coalesce(n_response_tokens_backward, 0) + coalesce(n_instruction_tokens_backward, 0)
                ), 0)
                FROM candidates WHERE candidates.job_id = jobs.id AND candidates.status = 'scored'
            )
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("scored_tokens")
        batch.drop_column("scored_candidates")
