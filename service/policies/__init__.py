"""Decision policies: one module per rule, registered here by name (see base.py for the contract).

A new rule is one module with a `Policy` subclass, plus its line in `POLICIES` below.
"""

from __future__ import annotations

from typing import Any

from service.policies.base import CandidateScore, Policy, PolicyError, SampleScores, Verdict
from service.policies.best_candidate import BestCandidatePolicy
from service.policies.frontier_band import FrontierBandPolicy
from service.policies.ifd_topk import IfdTopKPolicy
from service.policies.reflection import ReflectionPolicy

POLICIES: dict[str, Policy[Any]] = {
    policy.name: policy for policy in (ReflectionPolicy(), IfdTopKPolicy(), FrontierBandPolicy(), BestCandidatePolicy())
}


def get_policy(name: str) -> Policy[Any]:
    """The policy registered under `name`."""
    try:
        return POLICIES[name]
    except KeyError:
        known = ", ".join(sorted(POLICIES))
        raise PolicyError(f"unknown policy {name!r} (known: {known})", field="policy") from None


def resolve_params(name: str, raw: dict[str, Any] | None) -> tuple[Policy[Any], dict[str, Any]]:
    """The policy and its validated parameters with defaults filled in, as stored with a job."""
    policy = get_policy(name)
    return policy, policy.parse_params(raw).model_dump(mode="json")


__all__ = [
    "POLICIES",
    "CandidateScore",
    "Policy",
    "PolicyError",
    "SampleScores",
    "Verdict",
    "get_policy",
    "resolve_params",
]
