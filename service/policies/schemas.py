"""HTTP shapes of the policy registry."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class PolicyInfo(BaseModel):
    """A registered policy: its name, version, what it does, its reason codes and its parameters."""

    name: str
    version: str
    summary: str
    reason_codes: list[str]
    defaults: dict[str, Any] = Field(description="the parameters used when none are given")
    params_schema: dict[str, Any] = Field(description="JSON schema of the parameters")
