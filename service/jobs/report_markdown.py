"""The teacher comparison report as a Markdown page: what `frontier report` prints and `frontier curate` writes."""

from __future__ import annotations

import json

from service.jobs.report import follow_up_flags
from service.jobs.schemas import ProbeFit, ReportOut


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.2f}" if signed else f"{value:.3f}"


def _probe_cell(fit: ProbeFit | None) -> str:
    if fit is None or fit.exact_match is None:
        return "-"
    sd = f" ± {fit.exact_match_sd:.0%}" if fit.exact_match_sd is not None else ""
    return f"{fit.exact_match:.0%}{sd}"


def report_markdown(report: ReportOut) -> str:
    """The report as a Markdown page (what `frontier report` prints and `frontier curate` writes as report.md)."""
    policy = report.decision_set.policy
    band = report.frontier.params
    lines = [
        f"# Teacher comparison: job {report.job_id}",
        "",
        f"- student: `{report.student.path}` (fingerprint `{report.student.fingerprint[:16]}`)",
        f"- decision set {report.decision_set.id}: `{policy.name}` v{policy.version} `{json.dumps(policy.params)}`",
        f"- frontier band: [{band['low']:+.4f}, {band['high']:+.4f}] on the frontier score "
        f"(ifd_weight {band['ifd_weight']}, IFD < {band['ifd_max']}, r-IFD < {band['rifd_max']}; "
        f"{'from the decision set' if report.frontier.from_decision_set else 'frontier_band defaults'})",
        "",
    ]
    if report.recommendation:
        lines += [f"**Recommendation.** {report.recommendation}", ""]
    if report.suggested_decide is not None:
        lines += [
            f"To train on {report.ranking[0]}'s refinements only, re-decide: `{report.suggested_decide.command}`",
            "",
        ]
    probe = report.probe
    basis = {
        "probe": f"exact match after probe run {probe.probe_id if probe else '-'}'s short fine-tunes, higher first",
        "rsr": "dataset RSR, lower first",
        "frontier": "share inside the frontier band",
    }[report.ranking_basis]
    others = "; ".join(f"{name}: {' > '.join(order)}" for name, order in report.rankings.items())
    agree = "signals agree on the first" if report.signals_agree else "signals DISAGREE on the first"
    lines += [f"Ranked by {basis} ({others}; {agree}).", ""]
    if probe is not None:
        spread = (
            "unknown (one seed)"
            if probe.margin_exceeds_spread is None
            else ("exceeds" if probe.margin_exceeds_spread else "does NOT exceed") + " the seed spread"
        )
        lines += [
            f"Probe run {probe.probe_id}: {probe.steps} steps of {probe.batch_size} examples, {probe.seeds} seed(s), "
            f"{probe.eval_items} {probe.eval_source.replace('_', '-')} problems, {probe.tokens:,} tokens; "
            f"{'conclusive' if probe.conclusive else 'inconclusive'}: margin {_pct(probe.margin)} against "
            f"eval noise ±{_pct(probe.noise)}; {spread}."
            + ("" if probe.conclusive else f" Not separated by the probe: {', '.join(probe.contenders)}.")
            + (" The first solved every eval problem: a longer probe cannot separate them." if probe.at_ceiling else "")
            + (f" Ranks after its teachers: probe run {probe.earlier_probe_id}." if probe.earlier_probe_id else ""),
            "",
        ]
        flags = follow_up_flags(probe)
        if flags is not None:
            lines += [f"To separate the contenders: `frontier jobs probe {report.job_id} {flags} --wait`", ""]
    if report.warnings:
        lines += ["**Warnings.**", "", *(f"- {warning.message}" for warning in report.warnings), ""]
    lines += [
        "| rank | teacher | candidates | accepted | usable inside | band: below | inside | beyond | misaligned "
        "| not feasible | beat original | median IFD | median r-IFD | median frontier | RSR | hedging /100w "
        "| Δ hedging | overconfident | probe exact match |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in report.teachers:
        lines.append(
            "| "
            + " | ".join(
                [
                    str(t.rank) if t.rank is not None else "-",
                    t.teacher,
                    str(t.candidates),
                    _pct(t.accepted_share),
                    _pct(t.zones["inside"]),
                    _pct(t.band["below"]),
                    _pct(t.band["inside"]),
                    _pct(t.band["beyond"]),
                    _pct(t.zones["misaligned"]),
                    _pct(t.zones["not_feasible"]),
                    _pct(t.beat_original_share),
                    _num(t.ifd.p50 if t.ifd else None),
                    _num(t.rifd.p50 if t.rifd else None),
                    _num(t.frontier_score.p50 if t.frontier_score else None, signed=True),
                    f"{t.rsr:.2f}" if t.rsr is not None else "-",
                    f"{t.hedging.mean_rate:.2f}" if t.hedging.mean_rate is not None else "-",
                    _num(t.hedging.mean_change_vs_original, signed=True),
                    _pct(t.hedging.overconfident_share),
                    _probe_cell(t.probe),
                ]
            )
            + " |"
        )
    lines += [
        "",
        "Shares are of each teacher's candidates (band columns: of its scored candidates, by frontier score alone). "
        "*usable inside*: aligned (IFD < ifd_max), feasible (r-IFD < rifd_max) and inside the band; "
        "*accepted*: chosen for a retained sample by the decision set; "
        "*beat original*: lower r-IFD than the original (and higher IFD when the instruction was rewritten); "
        "*RSR*: Rank-Surprisal Ratio, mean token rank / mean L(A|Q), lower = better (arXiv 2601.14249); "
        "*overconfident*: keeps at most half of a hedging original's hedging rate (docs/policies.md); "
        "*probe exact match*: mean ± sd over seeds in the latest succeeded probe run.",
        "",
    ]
    return "\n".join(lines)
