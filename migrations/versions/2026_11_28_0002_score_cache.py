"""Score cache: engine scores keyed by (candidate text hash, student fingerprint, template, scoring version).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 12:55:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "score_cache",
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("student_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("template", sa.String(length=20), nullable=False),
        sa.Column("scoring_version", sa.String(length=20), nullable=False),
        sa.Column("scores", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "text_hash", "student_fingerprint", "template", "scoring_version", name=op.f("pk_score_cache")
        ),
    )
    # Existing jobs scored everything themselves: 0 is their true count.
    op.add_column("jobs", sa.Column("cached_candidates", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("cached_candidates")
    op.drop_table("score_cache")
