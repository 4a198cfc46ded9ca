"""Initial schema: students, jobs, chunks, samples, candidates, decision sets, decisions.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 04:31:53
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Same column types as service.models: BIGINT ids on Postgres (INTEGER so SQLite auto-increments), JSONB.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "students",
        sa.Column("id", ID, nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("model_type", sa.String(length=100), nullable=False),
        sa.Column("max_length", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_students")),
        sa.UniqueConstraint("path", "fingerprint", name=op.f("uq_students_path_fingerprint")),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("student_id", ID, nullable=False),
        sa.Column("policy", sa.String(length=100), nullable=False),
        sa.Column("policy_params", JSON, nullable=False),
        sa.Column("template", sa.String(length=20), nullable=False),
        sa.Column("dataset_name", sa.String(length=300), nullable=False),
        sa.Column("dataset_format", sa.String(length=20), nullable=False),
        sa.Column("chunk_size", sa.Integer(), nullable=False),
        sa.Column("n_chunks", sa.Integer(), nullable=False),
        sa.Column("total_samples", sa.Integer(), nullable=False),
        sa.Column("total_candidates", sa.Integer(), nullable=False),
        sa.Column("scored_samples", sa.Integer(), nullable=False),
        sa.Column("retained_count", sa.Integer(), nullable=False),
        sa.Column("rejected_count", sa.Integer(), nullable=False),
        sa.Column("unscored_count", sa.Integer(), nullable=False),
        sa.Column("scoring_seconds", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("scored_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["student_id"], ["students.id"], name=op.f("fk_jobs_student_id_students")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index(op.f("ix_jobs_created_at"), "jobs", ["created_at"])
    op.create_table(
        "chunks",
        sa.Column("id", ID, nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("first_ordinal", sa.Integer(), nullable=False),
        sa.Column("n_samples", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("scoring_seconds", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_chunks_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chunks")),
        sa.UniqueConstraint("job_id", "index", name=op.f("uq_chunks_job_id_index")),
    )
    op.create_table(
        "samples",
        sa.Column("id", ID, nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("layout", sa.String(length=20), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_samples_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_samples")),
        sa.UniqueConstraint("job_id", "external_id", name=op.f("uq_samples_job_id_external_id")),
        sa.UniqueConstraint("job_id", "ordinal", name=op.f("uq_samples_job_id_ordinal")),
    )
    op.create_table(
        "candidates",
        sa.Column("id", ID, nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("sample_id", ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("teacher", sa.String(length=200), nullable=True),
        sa.Column("instruction", sa.Text(), nullable=False),
        sa.Column("input", sa.Text(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("template", sa.String(length=20), nullable=True),
        sa.Column("scoring_version", sa.String(length=20), nullable=True),
        sa.Column("nll_instruction", sa.Float(), nullable=True),
        sa.Column("nll_response_given_instruction", sa.Float(), nullable=True),
        sa.Column("nll_response", sa.Float(), nullable=True),
        sa.Column("nll_instruction_given_response", sa.Float(), nullable=True),
        sa.Column("ppl_response_given_instruction", sa.Float(), nullable=True),
        sa.Column("ifd", sa.Float(), nullable=True),
        sa.Column("ifd_loss_ratio", sa.Float(), nullable=True),
        sa.Column("rifd", sa.Float(), nullable=True),
        sa.Column("n_instruction_tokens", sa.Integer(), nullable=True),
        sa.Column("n_response_tokens", sa.Integer(), nullable=True),
        sa.Column("n_response_tokens_backward", sa.Integer(), nullable=True),
        sa.Column("n_instruction_tokens_backward", sa.Integer(), nullable=True),
        sa.Column("instruction_truncated", sa.Boolean(), nullable=True),
        sa.Column("scored_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_candidates_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["samples.id"], name=op.f("fk_candidates_sample_id_samples"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_candidates")),
        sa.UniqueConstraint("job_id", "sample_id", "name", name=op.f("uq_candidates_job_id_sample_id_name")),
    )
    op.create_index(op.f("ix_candidates_sample_id"), "candidates", ["sample_id"])
    op.create_table(
        "decision_sets",
        sa.Column("id", ID, nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("policy", sa.String(length=100), nullable=False),
        sa.Column("policy_version", sa.String(length=20), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("retained_count", sa.Integer(), nullable=False),
        sa.Column("rejected_count", sa.Integer(), nullable=False),
        sa.Column("unscored_count", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_decision_sets_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_sets")),
    )
    op.create_index(op.f("ix_decision_sets_job_id"), "decision_sets", ["job_id"])
    op.create_table(
        "decisions",
        sa.Column("id", ID, nullable=False),
        sa.Column("decision_set_id", ID, nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("sample_id", ID, nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=100), nullable=False),
        sa.Column("chosen_candidate", sa.String(length=200), nullable=True),
        sa.Column("detail", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_set_id"],
            ["decision_sets.id"],
            name=op.f("fk_decisions_decision_set_id_decision_sets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_decisions_job_id_jobs"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["samples.id"], name=op.f("fk_decisions_sample_id_samples"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
        sa.UniqueConstraint("decision_set_id", "sample_id", name=op.f("uq_decisions_decision_set_id_sample_id")),
    )
    op.create_index(op.f("ix_decisions_job_id"), "decisions", ["job_id", "decision_set_id", "decision"])


def downgrade() -> None:
    op.drop_table("decisions")
    op.drop_table("decision_sets")
    op.drop_table("candidates")
    op.drop_table("samples")
    op.drop_table("chunks")
    op.drop_index(op.f("ix_jobs_created_at"), table_name="jobs")
    op.drop_table("jobs")
    op.drop_table("students")
