"""Tenants and API keys; jobs carry their tenant, Idempotency-Key and request hash.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 13:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("name", name=op.f("uq_tenants_name")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_api_keys_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_index(op.f("ix_api_keys_tenant_id"), "api_keys", ["tenant_id"])
    # Existing jobs belong to the local tenant (NULL): they were created without keys.
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("tenant_id", ID, nullable=True))
        batch.add_column(sa.Column("idempotency_key", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("request_hash", sa.String(length=64), nullable=True))
        batch.create_foreign_key(op.f("fk_jobs_tenant_id_tenants"), "tenants", ["tenant_id"], ["id"])
        batch.create_unique_constraint(op.f("uq_jobs_tenant_id_idempotency_key"), ["tenant_id", "idempotency_key"])
        batch.create_index(op.f("ix_jobs_tenant_id"), ["tenant_id", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index(op.f("ix_jobs_tenant_id"))
        batch.drop_constraint(op.f("uq_jobs_tenant_id_idempotency_key"), type_="unique")
        batch.drop_constraint(op.f("fk_jobs_tenant_id_tenants"), type_="foreignkey")
        batch.drop_column("request_hash")
        batch.drop_column("idempotency_key")
        batch.drop_column("tenant_id")
    op.drop_index(op.f("ix_api_keys_tenant_id"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("tenants")
