"""The policy contract: pure functions from a job's score table to one decision per sample, and their terms.

A policy sees only scores (no database, no HTTP), so re-deciding a job under other parameters never
rescores and every rule is testable on a hand-built table. Each policy has a `name`, a `version` (bump it
when the same scores and parameters could give a different decision) and a pydantic `Params` model whose
validated, defaults-filled dump is stored with every decision set.

A policy also states the terms it decided under, so that the report, the plot points and the what-if explain
any decision set without naming a policy: the frontier band it selected by (`band`), whether its parameters
fix the share of samples kept (`keeps_fixed_share`) and the absolute IFD / r-IFD cuts it applied
(`absolute_cuts`). The defaults say "none of these"; a policy overrides what it does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from core.decisions import DecisionName
from core.errors import InputError

if TYPE_CHECKING:
    from service.policies.frontier import FrontierBandParams


# Reason codes shared by policies; each policy documents which it can give.
UNSCORED = "unscored"
MISALIGNED_IFD_GE_1 = "misaligned_ifd_ge_1"
NOT_FEASIBLE = "not_feasible"
# A refinement that strips the original's hedging (core.confidence), rejected when a policy is asked to.
OVERCONFIDENT_STYLE = "overconfident_style"


@dataclass(frozen=True, slots=True)
class CandidateScore:
    """The scores a policy may read for one candidate (None when the engine could not score it)."""

    name: str
    teacher: str | None
    status: str
    error: str | None = None
    ifd: float | None = None
    rifd: float | None = None
    ifd_loss_ratio: float | None = None
    ppl_response_given_instruction: float | None = None
    nll_response_given_instruction: float | None = None
    # True when the refinement rewrote the instruction (Reflection-Tuning's instruction stage applies).
    rewrote_instruction: bool = False
    # Hedging words per 100 words of the response, and whether this refinement strips the original's hedging.
    hedging_rate: float | None = None
    overconfident_style: bool = False

    @property
    def scored(self) -> bool:
        """True when the candidate has finite IFD and r-IFD."""
        return (
            self.status == "scored"
            and self.ifd is not None
            and self.rifd is not None
            and math.isfinite(self.ifd)
            and math.isfinite(self.rifd)
        )

    @property
    def has_ifd(self) -> bool:
        """True when the candidate has a finite IFD: enough for rules that read no r-IFD (the `cherry` and
        `superfiltering` templates measure none, as their repositories do)."""
        return self.status == "scored" and self.ifd is not None and math.isfinite(self.ifd)


@dataclass(frozen=True, slots=True)
class SampleScores:
    """One sample's candidates, the original first (named `original`)."""

    sample_key: str
    candidates: tuple[CandidateScore, ...]

    @property
    def original(self) -> CandidateScore:
        """The sample's own candidate."""
        return self.candidates[0]


@dataclass(frozen=True, slots=True)
class Verdict:
    """A policy's decision on one sample, with the chosen candidate and the evidence behind the reason."""

    sample_key: str
    decision: DecisionName
    reason: str
    chosen_candidate: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Cut:
    """An absolute cut a policy applies to one score: a candidate whose `score` is at or above `limit` fails it."""

    score: Literal["ifd", "rifd"]
    # The parameter that sets the limit, so advice on the cut can name what to change.
    param: str
    limit: float


@dataclass(frozen=True, slots=True)
class DecisionTerms:
    """What a decision set was decided under, as its policy states it (see `Policy`); the defaults state nothing."""

    band: FrontierBandParams | None = None
    keeps_fixed_share: bool = False
    absolute_cuts: tuple[Cut, ...] = ()


class PolicyParams(BaseModel):
    """Base of every policy's parameters: unknown keys are errors, values are frozen once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=PolicyParams)


class PolicyError(InputError):
    """An unknown policy or parameters the policy does not accept; `field` names the request field at fault."""


class Policy(Generic[P]):
    """A named, versioned decision rule over a job's score table."""

    name: ClassVar[str]
    version: ClassVar[str]
    summary: ClassVar[str]
    params_model: type[P]
    reason_codes: ClassVar[tuple[str, ...]]

    def parse_params(self, raw: dict[str, Any] | None) -> P:
        """Validate raw parameters, naming the offending field on error."""
        try:
            return self.params_model.model_validate(raw or {})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'params'}: {error['msg']}" for error in exc.errors()
            )
            raise PolicyError(f"policy {self.name!r}: invalid params: {problems}", field="params") from exc

    def defaults(self) -> dict[str, Any]:
        """The parameters a decision is made under when none are given."""
        return self.params_model().model_dump(mode="json")

    def params_schema(self) -> dict[str, Any]:
        """The JSON schema of the parameters."""
        return self.params_model.model_json_schema()

    def decide(self, samples: Sequence[SampleScores], params: P) -> list[Verdict]:
        """One verdict per sample, in input order; must be deterministic for the same table and params."""
        raise NotImplementedError

    def band(self, params: P) -> FrontierBandParams | None:
        """The frontier band these parameters select by (None: the policy does not decide by the frontier)."""
        return None

    def keeps_fixed_share(self, params: P) -> bool:
        """True when these parameters fix the share of samples kept, so a small yield is what was asked for."""
        return False

    def absolute_cuts(self, params: P) -> list[Cut]:
        """The absolute IFD / r-IFD cuts these parameters apply, IFD first (none by default)."""
        return []

    def decide_raw(self, samples: Sequence[SampleScores], raw_params: dict[str, Any] | None) -> list[Verdict]:
        """Validate `raw_params` and decide."""
        return self.decide(samples, self.parse_params(raw_params))


def excluded_as_overconfident(candidate: CandidateScore, reject_overconfident: bool) -> bool:
    """True when the policy was asked to reject refinements that strip hedging and this is one."""
    return reject_overconfident and candidate.teacher is not None and candidate.overconfident_style


def unscored_verdict(sample: SampleScores) -> Verdict:
    """The verdict for a sample none of whose candidates could be scored, carrying the engine's errors."""
    errors = {candidate.name: candidate.error or candidate.status for candidate in sample.candidates}
    return Verdict(sample.sample_key, "unscored", UNSCORED, None, {"errors": errors})
