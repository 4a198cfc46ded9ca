"""API keys and tenants: who is calling, and which jobs they may see.

A key looks like `fck_<prefix>_<secret>`. Only its SHA-256 is stored (keys are 192-bit random strings, so
a fast hash is enough: there is nothing to brute-force), looked up by the non-secret prefix and compared in
constant time. Keys belong to a tenant; every job carries its tenant, and another tenant's job answers 404
exactly like a job that does not exist. With authentication off (the embedded default, loopback only)
every caller is the `local` tenant. Queries here flush, never commit.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InputError, NotFoundError
from service.models import ApiKey, Job, Tenant, utcnow

KEY_SCHEME = "fck"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class AuthError(PermissionError):
    """A request without a valid API key (401)."""


@dataclass(frozen=True, slots=True)
class Caller:
    """The tenant a request acts for; `tenant_id` None is the local tenant of an unauthenticated deployment."""

    tenant_id: int | None
    tenant: str


LOCAL = Caller(tenant_id=None, tenant="local")


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What `frontier keys list` shows of a key (never the key itself)."""

    prefix: str
    tenant: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _prefix_of(key: str) -> str:
    scheme, _, rest = key.partition("_")
    prefix, _, secret = rest.partition("_")
    if scheme != KEY_SCHEME or not prefix or not secret:
        raise AuthError("malformed API key: expected fck_<prefix>_<secret>")
    return prefix


def authenticate(session: Session, key: str | None) -> Caller:
    """The caller a key belongs to; AuthError when it is missing, unknown or revoked."""
    if not key:
        raise AuthError("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    prefix = _prefix_of(key)
    row = session.execute(
        select(ApiKey.key_hash, ApiKey.revoked_at, Tenant.id, Tenant.name)
        .join(Tenant, Tenant.id == ApiKey.tenant_id)
        .where(ApiKey.prefix == prefix)
    ).one_or_none()
    # Compare even when the prefix is unknown, so timing does not say which prefixes exist.
    stored = row.key_hash if row is not None else "0" * 64
    if not hmac.compare_digest(stored, hash_key(key)) or row is None:
        raise AuthError("invalid API key")
    if row.revoked_at is not None:
        raise AuthError("this API key has been revoked")
    return Caller(tenant_id=row.id, tenant=row.name)


def check_job_access(session: Session, job_id: object, caller: Caller) -> None:
    """NotFoundError unless the job exists and is the caller's tenant's: someone else's job does not exist."""
    found = session.execute(select(Job.tenant_id).where(Job.id == job_id)).one_or_none()
    if found is None or found.tenant_id != caller.tenant_id:
        raise NotFoundError(f"job {job_id} not found")


def create_key(session: Session, tenant: str, name: str = "") -> str:
    """A new key for `tenant` (created on first use); the only time the key itself is ever seen."""
    if not tenant.strip():
        raise InputError("tenant: expected a non-empty name", field="tenant")
    owner = session.scalars(select(Tenant).where(Tenant.name == tenant)).one_or_none()
    if owner is None:
        owner = Tenant(name=tenant, created_at=utcnow())
        session.add(owner)
        session.flush()
    prefix = secrets.token_hex(4)
    key = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(24)}"
    session.add(ApiKey(tenant_id=owner.id, prefix=prefix, key_hash=hash_key(key), name=name, created_at=utcnow()))
    session.flush()
    return key


def revoke_key(session: Session, prefix: str) -> bool:
    """Revoke the key with this prefix; False when there is no such live key."""
    key = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))).one_or_none()
    if key is None:
        return False
    key.revoked_at = utcnow()
    session.flush()
    return True


def list_keys(session: Session) -> list[KeyInfo]:
    """Every key, oldest first."""
    rows = session.execute(
        select(
            ApiKey.prefix,
            Tenant.name.label("tenant"),
            ApiKey.name.label("key_name"),
            ApiKey.created_at,
            ApiKey.revoked_at,
        )
        .join(Tenant, Tenant.id == ApiKey.tenant_id)
        .order_by(ApiKey.created_at, ApiKey.id)
    ).all()
    return [KeyInfo(r.prefix, r.tenant, r.key_name, r.created_at, r.revoked_at) for r in rows]
