"""Write examples/data/refinements.jsonl: synthetic samples with refinements from three kinds of teacher.

The teachers are designed so the tiny student's own statistics tell them apart:

- `teacher-near` answers in the corpus style, a little more complete than the original (inside the frontier);
- `teacher-far` writes long, dense, formal answers full of words and symbols the student never saw (beyond it);
- `teacher-terse` strips the hedging from the original and states the answer flatly (the confident style).

Problems come from the same world as the student's corpus but from a different seed. A few originals are
misaligned (the response answers another question) and list problems often carry their list in `input`.

CLI: `python -m examples.make_dataset` rewrites the file; `--check` exits 1 if the committed file is stale.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NotRequired, TypedDict

from examples.corpus import Problem, make_problem

DATASET_SEED = 20_240_611
N_SAMPLES = 200
DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "refinements.jsonl"


class Refinement(TypedDict):
    """One teacher's rewrite of a sample; `instruction` only when the teacher rewrote it too."""

    teacher: str
    instruction: NotRequired[str]
    response: str


class Record(TypedDict):
    """One line of the dataset, in the layout the product ingests."""

    id: str
    instruction: str
    input: str
    response: str
    refinements: list[Refinement]


# The far teacher's core answer per task, in a register and notation the corpus never uses.
FAR_CORES: dict[str, str] = {
    "addition": (
        "Let x₀ = {a} denote the initial cardinality of {name}'s collection of {item}, and let the acquisition "
        "contribute an increment δ = {b}. By the associativity and commutativity of addition over ℕ, the "
        "terminal cardinality is x₁ = x₀ + δ = {a} + {b} = {c}; consequently {name} possesses precisely {c} {item}."
    ),
    "subtraction": (
        "Denote by N = {a} the initial stock and by k = {b} the quantity relinquished. Since k ≤ N, the truncated "
        "difference N ∸ k coincides with ordinary subtraction in ℤ, yielding N − k = {c}; ergo, exactly {c} "
        "{item} remain extant."
    ),
    "multiplication": (
        "The configuration constitutes {b} pairwise disjoint, equicardinal partitions B₁, …, B_{b}, each of "
        "cardinality {a}. By the multiplicative principle of enumerative combinatorics, |⋃ᵢ Bᵢ| = ∑ᵢ |Bᵢ| = "
        "{b} · {a} = {c}, so the aggregate comprises {c} {item}."
    ),
    "compare": (
        "Under the canonical total order ≤ on ℤ, the difference {big} − {small} is strictly positive, whence "
        "{big} ≻ {small}; equivalently, sup{{{a}, {b}}} = max{{{a}, {b}}} = {big}."
    ),
    "sort": (
        "Applying any comparison-based algorithm (mergesort, say, with Θ(n log n) comparisons) to the {n}-tuple "
        "({values}) yields the monotonically non-decreasing permutation ⟨{sorted}⟩, which is unique because the "
        "entries are pairwise distinct."
    ),
    "largest": (
        "The maximum of the finite set S = {{{values}}} is attained by a single linear scan preserving the "
        "invariant mᵢ = max(s₁, …, sᵢ); upon termination m_{n} = {top}, i.e. max S = {top}, an O(n) procedure "
        "that is provably optimal in the comparison model."
    ),
    "reverse": (
        "Define the involution ρ: (w₁, …, wₙ) ↦ (wₙ, …, w₁) on sequences of length n = {n}. Applied to "
        "⟨{words}⟩, ρ produces ⟨{reversed}⟩; note that ρ ∘ ρ = id, so reapplying it recovers the antecedent."
    ),
    "count": (
        "The cardinality of the enumerated sequence ⟨{words}⟩ is ascertained via an explicit bijection onto the "
        "initial segment {{1, …, {n}}} ⊂ ℕ; hence |S| = {n}, irrespective of the lexicographic idiosyncrasies "
        "of its constituents."
    ),
    "fact": (
        "Ethologically, the {name} is a {size}, {color}-integumented organism whose ecological niche is the "
        "{home}; its alimentation consists predominantly of {food}, and its locomotion is {legs}-limbed. "
        "Taxonomic desiderata aside, the salient datum is the following: {answer}."
    ),
    "convert": (
        "By dimensional analysis, 1 {big} ≡ {factor} {smalls}, so the conversion coefficient is "
        "κ = {factor} {smalls}·{big}⁻¹. Thus {n} {bigs} × κ = {total} {smalls}, the underlying physical magnitude "
        "being invariant under the change of unit."
    ),
    "howto": (
        "Procedurally, the protocol to {goal} decomposes into {n} sequential, non-commutative operations, "
        "enumerated hereunder: {steps} Any deviation from this ordering jeopardises the reproducibility of the "
        "outcome."
    ),
}

# Dense closing remarks appended to far answers; none repeats a hedging word.
FAR_CODAS: tuple[str, ...] = (
    "Epistemically, the derivation is monotone: no auxiliary premiss is adjoined, so the conclusion inherits "
    "the certitude of its antecedents mutatis mutandis.",
    "Notwithstanding superficial idiosyncrasies of phrasing, the computation is invariant under any "
    "permutation of the intermediate bookkeeping.",
    "A perspicuous verification proceeds by induction on the cardinality of the underlying multiset, whence "
    "the result follows a fortiori.",
    "This exemplifies a canonical homomorphism from the narrative schema onto the semiring (ℕ, +, ·), whose "
    "well-definedness is immediate.",
    "Ceteris paribus, the heuristic generalises to arbitrary finite aggregations, albeit with concomitant "
    "combinatorial overhead.",
    "The solution is thereby idempotent with respect to re-derivation: recomputation ab initio reproduces it verbatim.",
)

FAR_INSTRUCTION_PREFIXES: tuple[str, ...] = (
    "Furnish a rigorous, formally justified resolution of the following, enumerating all salient invariants: ",
    "Ascertain, with exhaustive justification and appropriate notation, the answer to this query: ",
    "Adopting a formal register, expound the complete derivation underlying the following: ",
)


def _far_response(problem: Problem, rng: random.Random) -> str:
    core = FAR_CORES[problem.task].format(answer=problem.answer.rstrip("."), **problem.slots)
    codas = rng.sample(FAR_CODAS, 2)
    return " ".join([core, *codas])


def _misaligned_response(rng: random.Random, task: str) -> str:
    """An answer to a different task's question: the pair is deliberately unrelated."""
    other = make_problem(rng)
    while other.task == task:
        other = make_problem(rng)
    return other.short


def _record(index: int, rng: random.Random) -> Record:
    problem = make_problem(rng)
    misaligned = rng.random() < 0.06
    hedged = not misaligned and rng.random() < 0.4
    original = problem.hedged if hedged else problem.short
    if misaligned:
        original = _misaligned_response(rng, problem.task)

    refinements: list[Refinement] = []
    # Misaligned originals always get a near fix, so the "refinement rescues the sample" path is exercised.
    if misaligned or rng.random() < 0.85:
        near: Refinement = {"teacher": "teacher-near", "response": problem.explained}
        if rng.random() < 0.3:
            near = {"teacher": "teacher-near", "instruction": problem.paraphrase, "response": problem.explained}
        refinements.append(near)
    if rng.random() < 0.75:
        far: Refinement = {"teacher": "teacher-far", "response": _far_response(problem, rng)}
        if rng.random() < 0.4:
            prefix = rng.choice(FAR_INSTRUCTION_PREFIXES)
            far = {"teacher": "teacher-far", "instruction": prefix + problem.instruction, "response": far["response"]}
        refinements.append(far)
    # Terse rewrites of hedged originals are the risky case (science.md, "Confident teachers"); a few terse
    # rewrites of plain originals give the bare answer, so the teacher is not defined by hedged inputs alone.
    if hedged:
        refinements.append({"teacher": "teacher-terse", "response": problem.short})
    elif not misaligned and rng.random() < 0.25:
        bare = problem.answer if problem.answer.endswith(".") else problem.answer + "."
        if bare != original:
            refinements.append({"teacher": "teacher-terse", "response": bare})
    if not refinements:
        refinements.append({"teacher": "teacher-near", "response": problem.explained})
    return {
        "id": f"s-{index:04d}",
        "instruction": problem.instruction,
        "input": problem.input,
        "response": original,
        "refinements": refinements,
    }


def build_records(seed: int = DATASET_SEED, n_samples: int = N_SAMPLES) -> list[Record]:
    """The dataset's records, deterministic for `seed`."""
    rng = random.Random(seed)
    return [_record(i, rng) for i in range(1, n_samples + 1)]


def render(records: Iterable[Mapping[str, object]]) -> str:
    """The records as JSONL text (UTF-8 kept as is, so the far teacher's symbols stay readable)."""
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def write_jsonl(path: Path, records: Iterable[Mapping[str, object]]) -> Path:
    """Write `records` to `path` as rendered JSONL, creating its folder; returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(records), encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Write the dataset, or with --check report whether the committed file matches the generator."""
    parser = argparse.ArgumentParser(prog="python -m examples.make_dataset", description="Write the example dataset.")
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--check", action="store_true", help="exit 1 if --out differs from what would be written")
    args = parser.parse_args(argv)
    records = build_records()
    out: Path = args.out
    if args.check:
        current = out.read_text(encoding="utf-8") if out.exists() else ""
        if current != render(records):
            print(f"{out} is stale: run python -m examples.make_dataset", file=sys.stderr)
            return 1
        return 0
    print(write_jsonl(out, records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
