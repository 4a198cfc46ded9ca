"""The policy contract: pure rules from a job's scores to one decision per sample, and their terms.

A policy sees only scores (no database, no HTTP), so re-deciding a job under other parameters never
rescores and every rule is testable on a hand-built table. Each policy has a `name`, a `version` (bump it
when the same scores and parameters could give a different decision) and a pydantic `Params` model whose
validated, defaults-filled dump is stored with every decision set.

A policy decides in two steps, so that a job of a million samples is decided in bounded memory:
`statistics` computes the job-wide figures its rule needs (the frontier score's medians and MADs, the IFD
ranks of a top-k), from a `ScoreSource` in a streaming pass or from compact numeric columns; then
`decide_sample` decides one sample from its own candidates and those figures. A `ScoreSource` is the job's
score table as policies read it: its sample count, its samples in job order in batches, and its frontier
reference. The database's (service.jobs.decisions.StoredScores) streams it; `InMemoryScores` wraps a
hand-built table, which is what `decide_job` and the pure policy tests use.

A policy also states the terms it decided under, so that the report, the plot points and the what-if explain
any decision set without naming a policy: the frontier band it selected by (`band`), whether its parameters
fix the share of samples kept (`keeps_fixed_share`) and the absolute IFD / r-IFD cuts it applied
(`absolute_cuts`). The defaults say "none of these"; a policy overrides what it does.

Every policy takes a teacher allow-list (`PolicyParams.teachers`), applied here once for all of them: the runner
(`decide_stream`, `sweep_stream`, `decide_job`) rejects the samples with no allowed candidate
(`teacher_not_allowed`) and hands `decide_sample` the others narrowed to their allowed candidates; job-wide
statistics read the whole table unless a policy's rule says otherwise (ifd_topk ranks the narrowed samples).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, Literal, Protocol, TypeVar

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
    from service.policies.frontier import FrontierBandParams, FrontierReference


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


# Not frozen: a million-sample job builds millions of these, and a frozen dataclass costs 8x more to build. Treat
# them as values all the same: nothing changes a candidate's scores once read.
@dataclass(slots=True)
class CandidateScore:
    """The scores a policy may read for one candidate (None when the engine could not score it)."""

    name: str
    teacher: str | None
    status: str
    error: str | None = None
    ifd: float | None = None
    rifd: float | None = None
    ifd_loss_ratio: float | None = None
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
class ScoreBatch:
    """Consecutive samples of a job in its order: `start` is the first one's index in the job, `row_ids` the ids
    their verdicts are stored under (the samples' database rows; positions for an in-memory table)."""

    start: int
    samples: Sequence[SampleScores]
    row_ids: Sequence[int]


class ScoreSource(Protocol):
    """A job's score table as policies read it, without holding it whole: counted, streamed, and its reference."""

    def sample_count(self) -> int:
        """How many samples the job has (every sample, allowed or not)."""
        ...

    def batches(self, *, hedging: bool) -> Iterator[ScoreBatch]:
        """Every sample in job order, in batches; with `hedging` False candidates may carry no hedging figures
        (`hedging_rate` None, `overconfident_style` False), which spares reading the response texts."""
        ...

    def frontier_reference(self) -> FrontierReference | None:
        """The frontier score's reference over every scored candidate of the job (None when there is none)."""
        ...


class InMemoryScores:
    """A hand-built score table as a `ScoreSource` (one batch, row ids its positions): tests and small tables."""

    def __init__(self, table: Sequence[SampleScores]):
        self.table = table

    def sample_count(self) -> int:
        """The table's length."""
        return len(self.table)

    def batches(self, *, hedging: bool) -> Iterator[ScoreBatch]:
        """The whole table as one batch (it is in memory already)."""
        if self.table:
            yield ScoreBatch(0, self.table, range(len(self.table)))

    def frontier_reference(self) -> FrontierReference | None:
        """The reference of the table's scored candidates."""
        from service.policies.frontier import FrontierReference

        return FrontierReference.of(self.table)


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

    def statistics(self, source: ScoreSource, params: P) -> object:
        """The job-wide figures `decide_sample` needs under `params` (None: the rule is per sample alone).

        Read from `source` in a streaming pass or as compact numeric columns, never as the whole table in memory:
        what it returns must stay small next to the job (a few numbers, or one number per sample at most).
        """
        return None

    def decide_sample(self, sample: SampleScores, params: P, statistics: object, index: int) -> Verdict:
        """The verdict on one sample, narrowed to the candidates the allow-list admits (see `allowed_only`).

        `statistics` is what `statistics` returned for the same source and params; `index` is the sample's
        position in the job (0-based, every sample counted). Deterministic for the same scores and params.
        """
        raise NotImplementedError

    def reads_hedging(self, params: P) -> bool:
        """True when these parameters read the candidates' hedging (`reject_overconfident`), so the texts are read."""
        return getattr(params, "reject_overconfident", False) is True

    def decide_stream(self, source: ScoreSource, params: P) -> Iterator[tuple[ScoreBatch, list[Verdict]]]:
        """Each batch of `source` with one verdict per sample, in job order: the allow-list applied, then
        `decide_sample` under the job-wide `statistics`."""
        for batch, (verdicts,) in self.sweep_stream(source, [params]):
            yield batch, verdicts

    def sweep_stream(
        self, source: ScoreSource, params: Sequence[P]
    ) -> Iterator[tuple[ScoreBatch, list[list[Verdict]]]]:
        """As `decide_stream`, under several parameter sets in one pass over the samples: per batch, one list of
        verdicts per parameter set."""
        figures = [self.statistics(source, one) for one in params]
        hedging = any(self.reads_hedging(one) for one in params)
        for batch in source.batches(hedging=hedging):
            yield batch, [self._decide_batch(batch, one, stats) for one, stats in zip(params, figures, strict=True)]

    def _decide_batch(self, batch: ScoreBatch, params: P, statistics: object) -> list[Verdict]:
        if params.teachers is None:
            return [
                self.decide_sample(sample, params, statistics, batch.start + offset)
                for offset, sample in enumerate(batch.samples)
            ]
        allowed = frozenset(params.teachers)
        verdicts: list[Verdict] = []
        for offset, sample in enumerate(batch.samples):
            narrowed = allowed_only(sample, allowed)
            if narrowed is None:
                detail = {"teachers": list(params.teachers)}
                verdicts.append(Verdict(sample.sample_key, "rejected", TEACHER_NOT_ALLOWED, None, detail))
            else:
                verdicts.append(self.decide_sample(narrowed, params, statistics, batch.start + offset))
        return verdicts

    def decide_job(self, table: Sequence[SampleScores], params: P) -> list[Verdict]:
        """One verdict per sample of an in-memory table, as `decide_stream` decides a stored job."""
        return [verdict for _, verdicts in self.decide_stream(InMemoryScores(table), params) for verdict in verdicts]

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


def narrowed_samples(source: ScoreSource, params: PolicyParams, *, hedging: bool) -> Iterator[tuple[int, SampleScores]]:
    """Every sample of `source` that has an allowed candidate, narrowed to them, with its index in the job."""
    allowed = None if params.teachers is None else frozenset(params.teachers)
    for batch in source.batches(hedging=hedging):
        for offset, sample in enumerate(batch.samples):
            narrowed = sample if allowed is None else allowed_only(sample, allowed)
            if narrowed is not None:
                yield batch.start + offset, narrowed


def excluded_as_overconfident(candidate: CandidateScore, reject_overconfident: bool) -> bool:
    """True when the policy was asked to reject refinements that strip hedging and this is one."""
    return reject_overconfident and candidate.teacher is not None and candidate.overconfident_style


def unscored_verdict(sample: SampleScores) -> Verdict:
    """The verdict for a sample none of whose candidates could be scored, carrying the engine's errors."""
    errors = {candidate.name: candidate.error or candidate.status for candidate in sample.candidates}
    return Verdict(sample.sample_key, "unscored", UNSCORED, None, {"errors": errors})
