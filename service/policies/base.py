"""The policy contract: pure functions from a job's score table to one decision per sample, and their terms.

A policy sees only scores (no database, no HTTP), so re-deciding a job under other parameters never
rescores and every rule is testable on a hand-built table. Each policy has a `name`, a `version` (bump it
when the same scores and parameters could give a different decision) and a pydantic `Params` model whose
validated, defaults-filled dump is stored with every decision set.

A policy also states the terms it decided under, so that the report, the plot points and the what-if explain
any decision set without naming a policy: the frontier band it selected by (`band`), whether its parameters
fix the share of samples kept (`keeps_fixed_share`) and the absolute IFD / r-IFD cuts it applied
(`absolute_cuts`). The defaults say "none of these"; a policy overrides what it does.

Every policy takes a teacher allow-list (`PolicyParams.teachers`), applied here once for all of them: callers run
a policy through `decide_job`, which rejects the samples with no allowed candidate (`teacher_not_allowed`) and
hands `decide` the others narrowed to their allowed candidates, with the whole table beside them for statistics
over the job.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationError,
    model_serializer,
)

from core.dataset import ORIGINAL
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
# A sample none of whose candidates is on the allow-list (`teachers`); every policy can give it.
TEACHER_NOT_ALLOWED = "teacher_not_allowed"
# The status of the stand-in for an original the allow-list leaves out: no scores, so it is never chosen.
NOT_ALLOWED = "not_allowed"


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
    # Rank statistics of the response under L(A|Q) (arXiv 2601.14249): mean clipped token rank, and the
    # Rank-Surprisal Ratio (sum of clipped ranks / sum of token NLL, lower = better).
    rank_mean: float | None = None
    rsr: float | None = None
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
    """Base of every policy's parameters: unknown keys are errors, values are frozen once validated.

    `teachers`, the allow-list every policy takes: only candidates of these teachers (the sample's own candidate
    is `original`) may be chosen. Unset, it is left out of the dump, so a decision set made without it stores the
    same parameters as before the allow-list existed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    teachers: list[Annotated[str, StringConstraints(min_length=1)]] | None = Field(
        default=None,
        min_length=1,
        description="only candidates of these teachers may be chosen ('original': the sample's own); unset: any",
    )

    @model_serializer(mode="wrap")
    def _without_unset_teachers(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if self.teachers is None and isinstance(data, dict):
            data.pop("teachers", None)
        return data


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
            # The allow-list is every policy's, so its errors name it; other fields keep the historical `params`.
            field = "params.teachers" if all(error["loc"][:1] == ("teachers",) for error in exc.errors()) else "params"
            raise PolicyError(f"policy {self.name!r}: invalid params: {problems}", field=field) from exc

    def defaults(self) -> dict[str, Any]:
        """The parameters a decision is made under when none are given (`teachers` unset: every candidate)."""
        return {**self.params_model().model_dump(mode="json"), "teachers": None}

    def params_schema(self) -> dict[str, Any]:
        """The JSON schema of the parameters."""
        return self.params_model.model_json_schema()

    def decide(self, samples: Sequence[SampleScores], params: P, table: Sequence[SampleScores]) -> list[Verdict]:
        """One verdict per sample of `samples`, in input order; deterministic for the same table and params.

        `samples` are the ones the policy may choose from, each narrowed to the candidates the allow-list admits
        (see `allowed_only`); `table` is the job's whole score table, the same as `samples` without an allow-list.
        Statistics over the job (the frontier score's reference, the share of all samples) read `table`, so the
        allow-list narrows what may be chosen and nothing else. Callers go through `decide_job`.
        """
        raise NotImplementedError

    def decide_job(self, table: Sequence[SampleScores], params: P) -> list[Verdict]:
        """One verdict per sample of the job's table: the allow-list applied, then the policy's `decide`."""
        if params.teachers is None:
            return self.decide(table, params, table)
        allowed = frozenset(params.teachers)
        narrowed = [allowed_only(sample, allowed) for sample in table]
        decided = iter(self.decide([sample for sample in narrowed if sample is not None], params, table))
        detail = {"teachers": list(params.teachers)}
        return [
            next(decided)
            if sample is not None
            else Verdict(whole.sample_key, "rejected", TEACHER_NOT_ALLOWED, None, dict(detail))
            for whole, sample in zip(table, narrowed, strict=True)
        ]

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
        """Validate `raw_params` and decide the table as `decide_job` does."""
        return self.decide_job(samples, self.parse_params(raw_params))


def teacher_of(candidate: CandidateScore) -> str:
    """The name the allow-list knows a candidate by: its teacher, or `original` for the sample's own."""
    return candidate.teacher if candidate.teacher is not None else ORIGINAL


def allowed_only(sample: SampleScores, allowed: frozenset[str]) -> SampleScores | None:
    """`sample` narrowed to the candidates of the `allowed` teachers; None when it has none.

    The original keeps its place first even when it is not allowed, as a stand-in without scores (status
    `not_allowed`): no policy can choose it, and a rule that measures refinements against the original treats it
    as unscored (in `reflection`, any eligible refinement then replaces it), so `SampleScores.original` is always
    the sample's own candidate.
    """
    refinements = [c for c in sample.candidates[1:] if teacher_of(c) in allowed]
    original = sample.original
    if teacher_of(original) in allowed:
        return SampleScores(sample.sample_key, (original, *refinements))
    if not refinements:
        return None
    stand_in = CandidateScore(
        name=original.name,
        teacher=original.teacher,
        status=NOT_ALLOWED,
        error=f"{ORIGINAL} is not among the allowed teachers",
        hedging_rate=original.hedging_rate,
    )
    return SampleScores(sample.sample_key, (stand_in, *refinements))


def excluded_as_overconfident(candidate: CandidateScore, reject_overconfident: bool) -> bool:
    """True when the policy was asked to reject refinements that strip hedging and this is one."""
    return reject_overconfident and candidate.teacher is not None and candidate.overconfident_style


def unscored_verdict(sample: SampleScores) -> Verdict:
    """The verdict for a sample none of whose candidates could be scored, carrying the engine's errors."""
    errors = {candidate.name: candidate.error or candidate.status for candidate in sample.candidates}
    return Verdict(sample.sample_key, "unscored", UNSCORED, None, {"errors": errors})
