"""The teacher comparison report of a decided job, read-only: its stored scores, placed on the student's frontier.

Nothing here writes or rescores: the report streams the job's scores in batches (service.jobs.decisions.StoredScores)
beside the decision set's decisions on the same samples, and keeps per teacher only counts, sums and three numeric
columns (IFD, r-IFD and frontier score: 24 bytes a candidate, for their quantiles), so its memory stays bounded at a
million samples. Definitions (docs/policies.md): a candidate is *accepted* when a decision set chose it for a retained
sample; a refinement *beats* its original under Selective Reflection-Tuning's pairwise rule
(`service.policies.rules`: lower r-IFD, and higher IFD when it rewrote the instruction; both scored); the frontier
*zones* are `service.policies.frontier`'s, under the band the decision set's policy selected by (`Policy.band`)
and under the default band otherwise. Teachers rank by their share of candidates inside the band, then by how
near their median frontier score is to the band's middle; each teacher's dataset-level Rank-Surprisal Ratio
(arXiv 2601.14249: mean rank over mean L(A|Q)) is shown, not ranked by. The warnings read the policy's own terms
(whether it keeps a fixed share, which absolute cuts it applied), so no policy is named here.
"""

from __future__ import annotations

import json
import math
import uuid
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy.orm import Session

from core.probes import ProbeBudget, follow_up_params
from service.jobs import decision_repository
from service.jobs.decisions import StoredScores, decision_set_view
from service.jobs.guards import decided_job
from service.jobs.presenters import student_out
from service.jobs.schemas import (
    FrontierOut,
    Hedging,
    ProbeEvidence,
    ProbeFit,
    Quantiles,
    RankingBasis,
    ReportOut,
    ReportWarning,
    SuggestedDecide,
    TeacherAcceptance,
    TeacherReport,
)
from service.policies import (
    CandidateScore,
    Cut,
    DecisionTerms,
    SampleScores,
    decision_terms,
    one_teacher_decision,
)
from service.policies.frontier import ZONES, FrontierBandParams, Zone, sample_zones
from service.policies.rules import beats_original
from service.probes.evidence import TeacherProbes, teacher_probe_runs

ORIGINAL = "original"
BAND_SIDES = ("below", "inside", "beyond")
# A teacher whose refinements strip hedging this often gets a caution in the recommendation.
OVERCONFIDENT_CAUTION_SHARE = 0.25
# Warnings: a decision set that keeps under this share of the samples leaves too little to fine-tune on, and an
# absolute cut that this share of scored candidates fails is miscalibrated for the student (docs/experiment.md:
# with r-IFD < 1, 94-99% of samples were rejected and the student memorised the 7-24 left).
LOW_YIELD_SHARE = 0.05
CUT_FAILED_SHARE = 0.9
LOW_YIELD = "low_yield"
CUT_FAILS_MOST = "cut_fails_most"
CUT_LABELS = {"ifd": "IFD", "rifd": "r-IFD"}


def _teacher(name: str | None) -> str:
    return name if name is not None else ORIGINAL


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def quantiles(values: Sequence[float] | np.ndarray) -> Quantiles | None:
    """Percentiles by linear interpolation between order statistics (None for no values)."""
    if not len(values):
        return None
    return _sorted_quantiles(np.sort(np.asarray(values, dtype=np.float64)))


def _column_quantiles(column: array[float]) -> Quantiles | None:
    """`quantiles` of a teacher's tally column, consuming it: sorted and summed in place through a view on its own
    buffer, so a million-sample job's column is never copied."""
    if not len(column):
        return None
    ordered = np.frombuffer(column, dtype=np.float64)
    ordered.sort()
    return _sorted_quantiles(ordered)


def _sorted_quantiles(ordered: np.ndarray) -> Quantiles:
    """The quantiles of sorted values, which it overwrites with their running sums."""

    def at(fraction: float) -> float:
        position = fraction * (len(ordered) - 1)
        low = math.floor(position)
        high = min(low + 1, len(ordered) - 1)
        return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))

    spread = {"p10": at(0.1), "p25": at(0.25), "p50": at(0.5), "p75": at(0.75), "p90": at(0.9)}
    # Summed left to right in sorted order (a running sum, not numpy's pairwise one), as sum() over the sorted list
    # did, in place: the sorted values are not needed any more.
    total = float(np.cumsum(ordered, out=ordered)[-1])
    return Quantiles(**spread, mean=total / len(ordered))


class AcceptanceTally:
    """Per teacher (and `original`): candidates, and how many were chosen for a retained sample, counted sample by
    sample."""

    def __init__(self) -> None:
        self.candidates: Counter[str] = Counter()
        self.accepted: Counter[str] = Counter()

    def add(self, sample: SampleScores, decision: str | None, chosen: str | None) -> None:
        """Count one sample's candidates under its decision."""
        for candidate in sample.candidates:
            key = _teacher(candidate.teacher)
            self.candidates[key] += 1
            if decision == "retained" and candidate.name == chosen:
                self.accepted[key] += 1

    def result(self) -> dict[str, TeacherAcceptance]:
        """The acceptance per teacher, `original` first."""
        return {
            key: TeacherAcceptance(
                candidates=count, accepted=self.accepted[key], acceptance=_share(self.accepted[key], count)
            )
            for key, count in sorted(self.candidates.items(), key=lambda item: (item[0] != ORIGINAL, item[0]))
        }


@dataclass
class _Tally:
    """What the report accumulates for one teacher: counts, sums, and the three columns it takes quantiles of."""

    candidates: int = 0
    scored: int = 0
    accepted: int = 0
    ifd: array[float] = field(default_factory=lambda: array("d"))
    rifd: array[float] = field(default_factory=lambda: array("d"))
    frontier: array[float] = field(default_factory=lambda: array("d"))
    # Over the candidates with rank statistics: their mean clipped ranks and mean surprisals L(A|Q), summed.
    ranked: int = 0
    rank_sum: float = 0.0
    surprisal_sum: float = 0.0
    pairs: int = 0
    beats: int = 0
    zones: Counter[str] = field(default_factory=Counter)
    band: Counter[str] = field(default_factory=Counter)
    hedged: int = 0
    hedging_sum: float = 0.0
    hedging_changes: int = 0
    hedging_change_sum: float = 0.0
    overconfident: int = 0


def frontier_params(terms: DecisionTerms) -> tuple[FrontierBandParams, bool]:
    """The band a decision set's zones use, and whether it is its policy's own (else the default band)."""
    if terms.band is not None:
        return terms.band, True
    return FrontierBandParams(), False


def _mean(total: float, count: int) -> float | None:
    return total / count if count else None


def _rank_point(candidate: CandidateScore) -> tuple[float, float] | None:
    """A scored candidate's mean clipped rank and mean surprisal L(A|Q), when it has rank statistics."""
    rank_mean, surprisal = candidate.rank_mean, candidate.nll_response_given_instruction
    if candidate.status != "scored" or rank_mean is None or surprisal is None:
        return None
    return (rank_mean, surprisal) if math.isfinite(rank_mean) and math.isfinite(surprisal) else None


def _rsr(tally: _Tally) -> float | None:
    """The dataset-level RSR of arXiv 2601.14249: mean rank over mean surprisal, over the same candidates."""
    rank, surprisal = _mean(tally.rank_sum, tally.ranked), _mean(tally.surprisal_sum, tally.ranked)
    return rank / surprisal if rank is not None and surprisal is not None and surprisal > 0 else None


def _teacher_report(name: str, tally: _Tally, rank: int | None) -> TeacherReport:
    """The teacher's figures; consumes its tally's columns (once per tally)."""
    is_original = name == ORIGINAL
    return TeacherReport(
        teacher=name,
        is_original=is_original,
        rank=rank,
        candidates=tally.candidates,
        scored=tally.scored,
        accepted=tally.accepted,
        accepted_share=_share(tally.accepted, tally.candidates),
        ifd=_column_quantiles(tally.ifd),
        rifd=_column_quantiles(tally.rifd),
        frontier_score=_column_quantiles(tally.frontier),
        rank_mean=_mean(tally.rank_sum, tally.ranked),
        rsr=_rsr(tally),
        beat_original=None if is_original else tally.beats,
        beat_original_share=None if is_original else _share(tally.beats, tally.pairs),
        zones={zone: tally.zones[zone] / tally.candidates if tally.candidates else 0.0 for zone in ZONES},
        band={side: tally.band[side] / len(tally.frontier) if tally.frontier else 0.0 for side in BAND_SIDES},
        hedging=Hedging(
            mean_rate=_mean(tally.hedging_sum, tally.hedged),
            mean_change_vs_original=None if is_original else _mean(tally.hedging_change_sum, tally.hedging_changes),
            overconfident_style=tally.overconfident,
            overconfident_share=None if is_original else _share(tally.overconfident, tally.candidates),
        ),
    )


def _frontier_text(ranked: list[TeacherReport], band: FrontierBandParams) -> str:
    best = ranked[0]
    median = best.frontier_score.p50 if best.frontier_score is not None else None
    where = f", median frontier score {median:+.2f}" if median is not None else ""
    text = (
        f"{best.teacher} sits closest to this student's frontier: {best.zones['inside']:.0%} of its refinements "
        f"are aligned, feasible and inside the band [{band.low:+.2f}, {band.high:+.2f}]{where}."
    )
    if len(ranked) > 1:
        worst = ranked[-1]
        text += (
            f" {worst.teacher} ranks last: {worst.zones['inside']:.0%} usable inside; by frontier score alone "
            f"{worst.band['below']:.0%} below, {worst.band['inside']:.0%} inside, {worst.band['beyond']:.0%} beyond."
        )
    return text


def _rsr_text(ranked: list[TeacherReport]) -> str:
    best = ranked[0]
    # The rsr basis is only chosen when every teacher has both.
    assert best.rsr is not None
    assert best.rank_mean is not None
    text = (
        f"{best.teacher} has the lowest dataset RSR, {best.rsr:.2f} (mean clipped rank {best.rank_mean:.1f} over "
        f"mean surprisal {best.rank_mean / best.rsr:.2f}): its refinements are informative to this student yet "
        "close to what it already ranks high, the Rank-Surprisal Ratio's sign of data that teaches "
        "(arXiv 2601.14249)."
    )
    if len(ranked) > 1:
        worst = ranked[-1]
        text += f" {worst.teacher} ranks last (RSR {worst.rsr:.2f})."
    return text


def probe_fits(probes: TeacherProbes) -> dict[str, ProbeFit]:
    """Each probed teacher's exact match and loss over the seeds that finished."""
    return {
        teacher: ProbeFit(
            exact_match=result.exact_match.mean,
            exact_match_sd=result.exact_match.sd,
            loss=result.loss.mean,
            loss_sd=result.loss.sd,
            seeds=sum(seed.status == "done" for seed in result.seeds),
        )
        for teacher, result in probes.teachers.items()
    }


def sampling_noise(first: float, second: float, n: int) -> float:
    """Two standard errors of the difference of two exact-match rates measured on `n` problems each.

    A probe's margin below this is what re-drawing the eval problems could undo (a normal approximation; with
    no observed success or failure, one in `n` stands in, so a 0-versus-0 tie is never significant).
    """
    if n <= 0:
        return math.inf

    def variance(rate: float) -> float:
        rate = min(max(rate, 1 / n), 1 - 1 / n)
        return rate * (1 - rate) / n

    return 2 * math.sqrt(variance(first) + variance(second))


def probe_ranking(
    score_order: Sequence[TeacherReport], fits: dict[str, ProbeFit], probes: TeacherProbes
) -> tuple[list[TeacherReport], ProbeEvidence] | None:
    """Teachers by probe exact match (ties keep the score-only order), and how clear that verdict is.

    None when some teacher has no probe result. Exact match is the only probe figure ranked by: the held-out loss
    is teacher-forced on a reference response, so it rewards the reference's format, not what the student can do.
    """
    if not score_order or any(fits.get(t.teacher) is None or fits[t.teacher].exact_match is None for t in score_order):
        return None

    def exact(teacher: TeacherReport) -> float:
        value = fits[teacher.teacher].exact_match
        assert value is not None
        return value

    ordered = sorted(score_order, key=lambda t: -exact(t))  # stable: ties stay in the score-only order
    run = probes.run
    margin = spread = noise = None
    contenders = [ordered[0].teacher]
    if len(ordered) > 1:
        first, second = fits[ordered[0].teacher], fits[ordered[1].teacher]
        measured = run.eval.n_items * max(1, first.seeds)
        margin = exact(ordered[0]) - exact(ordered[1])
        if first.exact_match_sd is not None and second.exact_match_sd is not None:
            spread = max(first.exact_match_sd, second.exact_match_sd)
        noise = sampling_noise(exact(ordered[0]), exact(ordered[1]), measured)
        # Every teacher the eval problems cannot tell from the first: among these the first place is uncertain.
        contenders += [
            t.teacher
            for t in ordered[1:]
            if exact(ordered[0]) - exact(t) <= sampling_noise(exact(ordered[0]), exact(t), measured)
        ]
    conclusive = margin is None or (noise is not None and margin > noise)
    # A first teacher that solved every eval problem cannot pull further ahead: twice the steps would be wasted.
    at_ceiling = exact(ordered[0]) >= 1.0
    evidence = ProbeEvidence(
        probe_id=run.id,
        steps=run.budget.steps,
        batch_size=run.budget.batch_size,
        seeds=run.budget.seeds,
        eval_source=run.eval.source,
        eval_items=run.eval.n_items,
        conclusive=conclusive,
        contenders=contenders,
        margin=margin,
        noise=noise,
        spread=spread,
        margin_exceeds_spread=None if margin is None or spread is None else margin > spread,
        tokens=run.cost.tokens,
        follow_up=None if conclusive or at_ceiling else follow_up_params(run.budget.model_dump(), contenders),
        at_ceiling=at_ceiling,
    )
    return ordered, evidence


def combined_probe_ranking(
    score_order: Sequence[TeacherReport], runs: Iterable[TeacherProbes]
) -> tuple[list[TeacherReport], dict[str, ProbeFit], ProbeEvidence] | None:
    """The teachers ranked by the latest probe run that trained them all, or by its latest follow-up.

    A follow-up is a newer run that trained every contender of that run (and perhaps other teachers, never all):
    its teachers rank first by its own exact match and the rest keep the full run's order; the evidence is the
    follow-up's. A newer run that left out a contender (a user probing one teacher, say) is not a verdict on the
    recommendation and is passed over. None when no succeeded run trained every teacher.
    """
    newer: list[TeacherProbes] = []
    for run in runs:  # newest first
        fits = probe_fits(run)
        full = probe_ranking(score_order, fits, run)
        if full is None:
            newer.append(run)
            continue
        order, evidence = full
        for follow_up in newer:
            follow_fits = probe_fits(follow_up)
            trained = [
                t
                for t in order
                if follow_fits.get(t.teacher) is not None and follow_fits[t.teacher].exact_match is not None
            ]
            if not set(evidence.contenders) <= {t.teacher for t in trained}:
                continue
            ranked = probe_ranking(trained, follow_fits, follow_up)
            if ranked is None:
                continue
            follow_order, follow_evidence = ranked
            rest = [t for t in order if t not in trained]
            return (
                [*follow_order, *rest],
                {**fits, **follow_fits},
                follow_evidence.model_copy(update={"earlier_probe_id": run.run.id}),
            )
        return order, fits, evidence
    return None


def _probe_text(ranked: list[TeacherReport], evidence: ProbeEvidence) -> str:
    best = ranked[0]
    assert best.probe is not None
    assert best.probe.exact_match is not None
    seeds = f"{evidence.seeds} seeds" if evidence.seeds > 1 else "1 seed"
    text = (
        f"{best.teacher} trained this student best in probe run {evidence.probe_id}: {best.probe.exact_match:.0%} "
        f"exact match on {evidence.eval_items} held-out problems after {evidence.steps} optimiser steps of "
        f"{evidence.batch_size} examples ({seeds})"
    )
    if len(ranked) > 1:
        runner = ranked[1]
        assert runner.probe is not None
        assert runner.probe.exact_match is not None
        text += f", against {runner.probe.exact_match:.0%} for {runner.teacher}."
        text += f" The margin exceeds the noise of the eval problems (±{evidence.noise or 0:.0%})."
        if evidence.margin_exceeds_spread is None:
            text += " With one seed the seed spread is unknown: a run with --seeds 3 says whether the margin holds."
        elif evidence.margin_exceeds_spread:
            text += f" The margin exceeds the seed spread (sd {evidence.spread:.0%})."
        else:
            text += f" The margin is within the seed spread (sd {evidence.spread:.0%}): treat the order as uncertain."
    else:
        text += "."
    return text


def _in_words(names: Sequence[str]) -> str:
    """Names as a sentence lists them: `a`, `a and b`, `a, b and c`."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _contenders_text(ranked: list[TeacherReport], evidence: ProbeEvidence) -> str:
    """The recommendation of a probe that set some teachers apart but could not tell its first from the next."""
    contenders = [t for t in ranked if t.teacher in evidence.contenders]
    behind = [t.teacher for t in ranked if t.teacher not in evidence.contenders]

    def measured(teacher: TeacherReport) -> str:
        assert teacher.probe is not None
        assert teacher.probe.exact_match is not None
        return f"{teacher.teacher} {teacher.probe.exact_match:.0%}"

    separated = (
        f"the probe set {_in_words(behind)} behind (by more than the noise of its {evidence.eval_items} eval "
        "problems) and "
        if behind
        else ""
    )
    return (
        f"{ranked[0].teacher} leads probe run {evidence.probe_id}, but not by a clear margin: after {evidence.steps} "
        f"optimiser steps of {evidence.batch_size} examples {separated}could not separate "
        f"{_in_words([measured(t) for t in contenders])} exact match "
        f"(±{evidence.noise or 0:.0%} on {evidence.eval_items} eval problems; exact ties in score-only order). "
        + (
            f"{ranked[0].teacher} solved every eval problem, so a longer probe cannot set it further apart: treat "
            "the contenders as level for this student, or separate them with more or harder eval problems "
            "(an uploaded eval set) or more seeds."
            if evidence.at_ceiling
            else "Treat the first place as uncertain among those: a longer probe budget, more eval problems or more "
            "seeds may separate them." + _follow_up_text(evidence)
        )
    )


def follow_up_flags(evidence: ProbeEvidence) -> str | None:
    """`frontier jobs probe` flags of the suggested follow-up (None without one)."""
    if evidence.follow_up is None:
        return None
    defaults = ProbeBudget().as_dict()
    flags = [f"--teachers {' '.join(evidence.follow_up['teachers'])}"]
    flags += [
        f"--{name.replace('_', '-')} {value}"
        for name, value in evidence.follow_up.items()
        if name != "teachers" and value != defaults.get(name)
    ]
    # The follow-up must measure on the same problems: an uploaded set is uploaded again.
    if evidence.eval_source == "uploaded":
        flags.append("--eval-set EVAL_SET")
    return " ".join(flags)


def _follow_up_text(evidence: ProbeEvidence) -> str:
    flags = follow_up_flags(evidence)
    if flags is None:
        return ""
    assert evidence.follow_up is not None
    return (
        f" To separate them, probe those teachers alone for {evidence.follow_up['steps']} steps (`probe.follow_up`: "
        f"`frontier jobs probe JOB {flags}`); the report then ranks by that run."
    )


def _recommendation(
    ranked: list[TeacherReport],
    by_frontier: list[TeacherReport],
    basis: RankingBasis,
    band: FrontierBandParams,
    score_first: str | None = None,
    evidence: ProbeEvidence | None = None,
) -> str | None:
    if not ranked:
        return None
    best = ranked[0]
    if basis == "probe":
        assert evidence is not None
        text = _probe_text(ranked, evidence) if evidence.conclusive else _contenders_text(ranked, evidence)
        if score_first is not None and score_first != best.teacher:
            text += f" The score-only signal would rank {score_first} first: the signals disagree, the probe decides."
        share = best.hedging.overconfident_share
        if share is not None and share >= OVERCONFIDENT_CAUTION_SHARE:
            text += f" Caution: {share:.0%} of {best.teacher}'s refinements strip the original's hedging."
        return text
    if basis == "rsr":
        text = _rsr_text(ranked)
        if by_frontier[0].teacher != best.teacher:
            text += f" Frontier fit alone would rank {by_frontier[0].teacher} first: the signals disagree."
    else:
        text = _frontier_text(ranked, band)
    text += (
        " A score-only signal: a probe run (a short fine-tune per teacher, `frontier jobs probe`) is the decisive "
        "check (docs/experiment.md)."
    )
    share = best.hedging.overconfident_share
    if share is not None and share >= OVERCONFIDENT_CAUTION_SHARE:
        text += f" Caution: {share:.0%} of {best.teacher}'s refinements strip the original's hedging."
    return text


def _cut_warning(cut: Cut, columns: list[np.ndarray]) -> ReportWarning | None:
    """A warning when an absolute cut on `columns` (the cut's score per teacher, must be < its limit) fails most of
    their values."""
    count = sum(len(column) for column in columns)
    if not count:
        return None
    label, param, limit = CUT_LABELS[cut.score], cut.param, cut.limit
    failed = sum(int(np.count_nonzero(column >= limit)) for column in columns) / count
    if failed < CUT_FAILED_SHARE:
        return None
    spread = quantiles(np.concatenate(columns))
    assert spread is not None  # values is not empty
    median = round(spread.p50, 3)
    why = (
        "The cut at 1 is a calibration from instruction-tuned LLMs, and this student sits above it almost everywhere."
        if limit == 1
        else "This student sits above that cut almost everywhere."
    )
    return ReportWarning(
        code=CUT_FAILS_MOST,
        message=(
            f"{label} >= {param} ({limit:g}) for {failed:.0%} of scored candidates (median {label} {median:.3f}). "
            f"{why} A cut relative to this job, e.g. {param} = {median:.3f} (its median), lets about half of them "
            "through: try it with what-if before re-deciding (docs/experiment.md)."
        ),
        param=param,
        suggested=median,
    )


def _warnings(samples: int, retained: int, tallies: Iterable[_Tally], terms: DecisionTerms) -> list[ReportWarning]:
    """What a user should know before training on this decision set: too few samples, a miscalibrated cut."""
    warnings: list[ReportWarning] = []
    # A policy that keeps a fixed share by construction yields what was asked for, however small.
    if samples and retained / samples < LOW_YIELD_SHARE and not terms.keeps_fixed_share:
        warnings.append(
            ReportWarning(
                code=LOW_YIELD,
                message=f"This decision set keeps {retained} of {samples} samples ({retained / samples:.1%}): a "
                "fine-tune on so few memorises them. Check the cuts below, or re-decide with another policy or "
                "parameters.",
            )
        )
    tallied = list(tallies)
    for cut in terms.absolute_cuts:
        # Every scored candidate's score (scored: finite IFD and r-IFD), over all teachers.
        columns = [
            np.frombuffer(tally.ifd if cut.score == "ifd" else tally.rifd, dtype=np.float64) for tally in tallied
        ]
        warning = _cut_warning(cut, columns)
        if warning is not None:
            warnings.append(warning)
    return warnings


def suggested_params(report: ReportOut) -> dict[str, float]:
    """The relative cuts the report's warnings suggest, as policy parameters (empty when it suggests none)."""
    return {w.param: w.suggested for w in report.warnings if w.param is not None and w.suggested is not None}


def suggested_decide(job_id: uuid.UUID, teacher: str) -> SuggestedDecide:
    """The one re-decide that keeps only `teacher`'s refinements, as a request body and a command line."""
    policy, params = one_teacher_decision(teacher)
    return SuggestedDecide(
        policy=policy,
        params=params,
        command=f"frontier jobs decide {job_id} --policy {policy} --params '{json.dumps(params)}'",
    )


def _tally_sample(
    tallies: dict[str, _Tally],
    sample: SampleScores,
    decided: tuple[str, str, str | None] | None,
    row: list[tuple[float | None, Zone]],
    band: FrontierBandParams,
) -> None:
    """Add one sample's candidates (with their frontier scores and zones) to their teachers' tallies; `decided` is
    the sample's (decision, reason, chosen candidate)."""
    original = sample.original
    chosen = decided[2] if decided is not None and decided[0] == "retained" else None
    for candidate, (score, zone) in zip(sample.candidates, row, strict=True):
        key = _teacher(candidate.teacher)
        tally = tallies.get(key)
        if tally is None:
            tally = tallies[key] = _Tally()
        tally.candidates += 1
        tally.zones[zone] += 1
        if chosen is not None and chosen == candidate.name:
            tally.accepted += 1
        if candidate.scored and candidate.ifd is not None and candidate.rifd is not None:
            tally.scored += 1
            tally.ifd.append(candidate.ifd)
            tally.rifd.append(candidate.rifd)
        rank_point = _rank_point(candidate)
        if rank_point is not None:
            tally.ranked += 1
            tally.rank_sum += rank_point[0]
            tally.surprisal_sum += rank_point[1]
        if score is not None:
            tally.frontier.append(score)
            tally.band["below" if score < band.low else "beyond" if score > band.high else "inside"] += 1
        if candidate.hedging_rate is not None:
            tally.hedged += 1
            tally.hedging_sum += candidate.hedging_rate
        if candidate.teacher is None:
            continue
        if candidate.hedging_rate is not None and original.hedging_rate is not None:
            tally.hedging_changes += 1
            tally.hedging_change_sum += candidate.hedging_rate - original.hedging_rate
        tally.overconfident += int(candidate.overconfident_style)
        if candidate.scored and original.scored:
            tally.pairs += 1
            tally.beats += int(beats_original(candidate, original))


def build_report(session: Session, job_id: uuid.UUID, decision_set_id: int | None = None) -> ReportOut:
    """Per teacher: acceptance, IFD / r-IFD / frontier score distributions, wins over the original, frontier zones,
    hedging; and the teachers ranked by how close their outputs sit to the student's frontier."""
    job, decision_set = decided_job(session, job_id, decision_set_id, "reported on")
    terms = decision_terms(decision_set.policy, decision_set.params)
    band, from_set = frontier_params(terms)
    tallies: dict[str, _Tally] = {}
    samples = retained = 0
    with decision_repository.score_reader(session) as (reader, own_connection):
        source = StoredScores(reader, job_id, prefetch=own_connection)
        reference = source.frontier_reference()
        for batch in source.batches(hedging=True, decision_set_id=decision_set.id):
            decisions = batch.decisions or {}
            for sample, sample_pk in zip(batch.samples, batch.row_ids, strict=True):
                samples += 1
                decided = decisions.get(sample_pk)
                retained += int(decided is not None and decided[0] == "retained")
                _tally_sample(tallies, sample, decided, sample_zones(sample, reference, band), band)

    # Before the teachers' figures, which consume their tallies' columns.
    warnings = _warnings(samples, retained, tallies.values(), terms)
    middle = (band.low + band.high) / 2
    unranked = [_teacher_report(name, tally, None) for name, tally in tallies.items() if name != ORIGINAL]
    by_frontier = sorted(
        unranked,
        key=lambda t: (
            -t.zones["inside"],
            abs(t.frontier_score.p50 - middle) if t.frontier_score is not None else math.inf,
            t.teacher,
        ),
    )
    rankings = {"frontier": [t.teacher for t in by_frontier]}
    # The published teacher-selection signal (arXiv 2601.14249: Spearman 0.86 with post-training results over 5
    # students x 11 teachers) ranks first when every teacher has it; frontier fit breaks its ties. Jobs scored
    # before the rank statistics existed keep the frontier ranking.
    basis: RankingBasis = "frontier"
    ordered = by_frontier
    if by_frontier and all(t.rsr is not None for t in by_frontier):
        basis = "rsr"
        ordered = sorted(by_frontier, key=lambda t: t.rsr if t.rsr is not None else math.inf)
        rankings["rsr"] = [t.teacher for t in ordered]
    evidence: ProbeEvidence | None = None
    score_first = ordered[0].teacher if ordered else None
    by_probe = combined_probe_ranking(ordered, teacher_probe_runs(session, job_id))
    if by_probe is not None:
        probe_order, fits, evidence = by_probe
        rankings["probe"] = [t.teacher for t in probe_order]
        # A measured outcome outranks a forecast, even an uncertain one (reported as such, with the teachers it
        # could not tell apart): a probe near the floor means a student below the task's frontier, exactly where
        # likelihood-style scores reward the familiar rather than the learnable (docs/experiment.md). Exact ties
        # keep the score-only order.
        basis = "probe"
        ordered = [t.model_copy(update={"probe": fits.get(t.teacher)}) for t in probe_order]
    ranked = [t.model_copy(update={"rank": rank}) for rank, t in enumerate(ordered, start=1)]
    originals = [_teacher_report(ORIGINAL, tallies[ORIGINAL], None)] if ORIGINAL in tallies else []
    return ReportOut(
        job_id=job.id,
        student=student_out(job.student),
        decision_set=decision_set_view(session, job_id, decision_set),
        frontier=FrontierOut(
            params=band.model_dump(mode="json"),
            from_decision_set=from_set,
            loss_median=reference.loss_median if reference else None,
            loss_scale=reference.loss_scale if reference else None,
            log_ifd_median=reference.log_ifd_median if reference else None,
            log_ifd_scale=reference.log_ifd_scale if reference else None,
        ),
        teachers=originals + ranked,
        ranking=[t.teacher for t in ranked],
        ranking_basis=basis,
        rankings=rankings,
        signals_agree=len({ranking[0] for ranking in rankings.values() if ranking}) <= 1,
        probe=evidence,
        suggested_decide=suggested_decide(job.id, ranked[0].teacher) if ranked else None,
        recommendation=_recommendation(ranked, by_frontier, basis, band, score_first, evidence),
        warnings=warnings,
    )
