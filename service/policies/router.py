"""HTTP routes for the policy registry (v1)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from service.deps import job_access
from service.policies import describe_policies
from service.policies.schemas import PolicyInfo

router = APIRouter(prefix="/v1/policies", tags=["policies"], dependencies=[Depends(job_access)])


@router.get("", response_model=list[PolicyInfo])
def list_policies() -> list[PolicyInfo]:
    """Every registered policy with its version, reason codes, parameter defaults and schema."""
    return describe_policies()
