"""Decision policies: one module per rule, registered here by name (see base.py for the contract).

A new rule is one module with a `Policy` subclass, plus its line in `POLICIES` below: everything else (the jobs'
decisions, report, plot points and what-if) reaches policies through this module's functions and the terms a
policy states (`Policy.band`, `keeps_fixed_share`, `absolute_cuts`), never by name.
"""

from __future__ import annotations

from typing import Any

from service.policies.base import CandidateScore, Cut, DecisionTerms, Policy, PolicyError, SampleScores, Verdict
from service.policies.best_candidate import BestCandidatePolicy
from service.policies.frontier_band import FrontierBandPolicy
from service.policies.ifd_topk import IfdTopKPolicy
from service.policies.reflection import ReflectionPolicy
from service.policies.rsr import RsrPolicy
from service.policies.schemas import PolicyInfo

POLICIES: dict[str, Policy[Any]] = {
    policy.name: policy
    for policy in (ReflectionPolicy(), IfdTopKPolicy(), FrontierBandPolicy(), BestCandidatePolicy(), RsrPolicy())
}

# The re-decide that keeps one teacher's refinements: with a one-teacher `teachers` allow-list, GRAPE's selection
# (no cut by default) keeps that teacher's scored refinement of every sample that has one. The report suggests it.
ONE_TEACHER_POLICY = BestCandidatePolicy.name


def one_teacher_decision(teacher: str) -> tuple[str, dict[str, Any]]:
    """The policy and parameters of the re-decide that keeps only `teacher`'s refinements."""
    return ONE_TEACHER_POLICY, {"teachers": [teacher]}


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


def decision_terms(name: str, params: dict[str, Any]) -> DecisionTerms:
    """The terms a stored decision set was decided under; none when its policy is gone or its params no longer parse."""
    policy = POLICIES.get(name)
    if policy is None:
        return DecisionTerms()
    try:
        parsed = policy.parse_params(params)
    except PolicyError:
        return DecisionTerms()
    return DecisionTerms(policy.band(parsed), policy.keeps_fixed_share(parsed), tuple(policy.absolute_cuts(parsed)))


def describe_policies() -> list[PolicyInfo]:
    """Every registered policy's public description, in registry order."""
    return [
        PolicyInfo(
            name=policy.name,
            version=policy.version,
            summary=policy.summary,
            reason_codes=list(policy.reason_codes),
            defaults=policy.defaults(),
            params_schema=policy.params_schema(),
        )
        for policy in POLICIES.values()
    ]


__all__ = [
    "POLICIES",
    "CandidateScore",
    "Cut",
    "DecisionTerms",
    "Policy",
    "PolicyError",
    "SampleScores",
    "Verdict",
    "decision_terms",
    "describe_policies",
    "get_policy",
    "resolve_params",
]
