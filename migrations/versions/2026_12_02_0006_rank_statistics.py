"""Rank statistics per candidate (Rank-Surprisal Ratio, arXiv 2601.14249) and the job's rank clip.

`rank_mean`, `rsr` and `rank_clip` come from the same forward pass as L(A|Q); jobs scored before this revision
keep NULL there (their scoring version is older). `jobs.rank_clip` is the clip every candidate of the job was
ranked with (100, the paper's r, unless the job asked for another).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 03:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("candidates", sa.Column("rank_mean", sa.Float(), nullable=True))
    op.add_column("candidates", sa.Column("rsr", sa.Float(), nullable=True))
    op.add_column("candidates", sa.Column("rank_clip", sa.Integer(), nullable=True))
    op.add_column("jobs", sa.Column("rank_clip", sa.Integer(), nullable=False, server_default="100"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("rank_clip")
    with op.batch_alter_table("candidates") as batch:
        batch.drop_column("rank_clip")
        batch.drop_column("rsr")
        batch.drop_column("rank_mean")
