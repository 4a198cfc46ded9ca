"""Scoring benchmark: the engine against the research-code way, on the same student and data, in one run.

(a) reference: one candidate at a time, four separate forward passes (L(Q), L(A|Q), L(A), L(Q|A)), full
    logits and log-softmax, batch size 1, a freshly loaded model;
(b) the engine: two passes per candidate, shared prefixes once, token-budget batches, chunked head, with the
    rank statistics (RSR, rank clip 100) computed from the same logits;
(c) the same engine without rank statistics (`rank_clip=None`), timed alternately with (b).

Checks that (a) and (b) agree to 1e-4 relative on every score, then prints candidates/s, tokens/s, the
speedup, what the ranks cost ((b) against (c)) and the engine's achieved FLOP/s against a matmul peak
measured in the same run. Medians over repeats.

    python bench/scoring.py --shape gpt2-small --samples 16
    python bench/scoring.py --shape tiny --samples 64
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.dataset import candidate_texts, parse_jsonl
from examples.student import build_student, default_student_dir
from tests.workers.scoring.reference import ReferenceScores, reference_scores, relative_error
from workers.scoring import Candidate, CandidateScores, Scorer, ScoringStats, Student, get_student

EXAMPLE_DATA = Path(__file__).resolve().parent.parent / "examples" / "data" / "refinements.jsonl"
COMPARED = ("nll_instruction", "nll_response_given_instruction", "nll_response", "nll_instruction_given_response")
TOLERANCE = 1e-4


@dataclass(frozen=True)
class ModelShape:
    """What the FLOP count needs: dense parameters per token, width, depth, vocabulary."""

    dense_params: int
    d_model: int
    n_layer: int
    vocab: int

    def token_flops(self, tokens: int, attention_pairs: int, head_positions: int) -> float:
        """Forward FLOPs: 2 per dense weight per token, 4*d per attention score per layer, 2*d*V per head row."""
        return (
            2.0 * self.dense_params * tokens
            + 4.0 * self.d_model * self.n_layer * attention_pairs
            + 2.0 * self.d_model * self.vocab * head_positions
        )


def model_shape(student: Student) -> ModelShape:
    """Dense (matrix) parameters inside the transformer blocks; embeddings and head are counted apart."""
    head = student.model.get_output_embeddings().weight
    embeddings = {id(p) for p in student.model.get_input_embeddings().parameters()} | {id(head)}
    dense = sum(
        p.numel()
        for name, p in student.model.named_parameters()
        if p.dim() == 2 and id(p) not in embeddings and "wpe" not in name and "position" not in name
    )
    config = student.model.config
    n_layer = getattr(config, "num_hidden_layers", None) or config.n_layer
    return ModelShape(dense_params=dense, d_model=student.d_model, n_layer=int(n_layer), vocab=int(head.shape[0]))


def matmul_peak(device: torch.device, repeats: int = 5) -> float:
    """Best median FLOP/s of square float32 matmuls (the machine's practical peak)."""
    best = 0.0
    for size in (1024, 2048):
        a = torch.randn(size, size, device=device)
        b = torch.randn(size, size, device=device)
        times = []
        for _ in range(repeats + 1):
            _sync(device)
            start = time.perf_counter()
            torch.mm(a, b)
            _sync(device)
            times.append(time.perf_counter() - start)
        best = max(best, 2.0 * size**3 / statistics.median(times[1:]))
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def load_candidates(samples: int) -> list[Candidate]:
    """Original plus two refinements of the first `samples` samples that have at least two."""
    records = [r for r in parse_jsonl(EXAMPLE_DATA) if len(r.refinements) >= 2][:samples]
    candidates = []
    for record in records:
        for text in candidate_texts(record)[:3]:
            candidates.append(Candidate(text.instruction, text.response, text.input))
    return candidates


def timed(fn: Callable[[], object], repeats: int, device: torch.device) -> tuple[float, object]:
    """Median wall time of `fn` over `repeats` runs, and its last result."""
    times = []
    result: object = None
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        result = fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def timed_alternately(
    first: Callable[[], object], second: Callable[[], object], repeats: int, device: torch.device
) -> tuple[float, object, float]:
    """Median wall times of two functions run in turns (a busy machine then slows both alike), and first's result."""
    times: tuple[list[float], list[float]] = ([], [])
    result: object = None
    for _ in range(repeats):
        for fn, bucket in ((first, times[0]), (second, times[1])):
            _sync(device)
            start = time.perf_counter()
            value = fn()
            _sync(device)
            bucket.append(time.perf_counter() - start)
            if fn is first:
                result = value
    return statistics.median(times[0]), result, statistics.median(times[1])


def run_reference(model: torch.nn.Module, student: Student, candidates: list[Candidate]) -> list[ReferenceScores]:
    """The research-code way: four passes per candidate, batch size 1."""
    with torch.no_grad():
        return [
            reference_scores(model, student.tokenizer, student.start_id, c.instruction, c.response, c.input)
            for c in candidates
        ]


def reference_flops(shape: ModelShape, refs: list[ReferenceScores]) -> float:
    """FLOPs of the four passes (every position through the head, as the research code does)."""
    total = 0.0
    for ref in refs:
        # Pass lengths: [S]+Q, [S]+Q+SEP+A, [S]+A, [S]+A+SEP+Q (SEP counted at its typical one token).
        for length in (1 + ref.n_q, 2 + ref.n_q + ref.n_a, 1 + ref.n_a, 2 + ref.n_q + ref.n_a):
            total += shape.token_flops(length, length * (length + 1) // 2, length)
    return total


def compare(engine: list[CandidateScores], refs: list[ReferenceScores]) -> float:
    """Largest relative error over the four losses (IFD and r-IFD follow from them) of every candidate."""
    worst = 0.0
    for scores, ref in zip(engine, refs, strict=True):
        if scores.status != "scored":
            raise SystemExit(f"engine left a candidate unscored: {scores.error}")
        for name in COMPARED:
            worst = max(worst, relative_error(getattr(scores, name), getattr(ref, name)))
    return worst


def bench_device(args: argparse.Namespace, device: str) -> dict[str, object]:
    """All figures for one device."""
    student_dir = (
        Path(args.student) if args.student else build_student(default_student_dir(args.shape), shape=args.shape)
    )
    student = get_student(student_dir, device=device, precision="float32")
    torch_device = student.device
    candidates = load_candidates(args.samples)
    shape = model_shape(student)
    peak_before_reference = matmul_peak(torch_device)

    reference_model = AutoModelForCausalLM.from_pretrained(student_dir, dtype=torch.float32).to(torch_device).eval()
    run_reference(reference_model, student, candidates[:2])  # warm-up
    ref_time, refs = timed(lambda: run_reference(reference_model, student, candidates), args.repeats, torch_device)
    assert isinstance(refs, list)

    scorer = Scorer(student, batch_tokens=args.batch_tokens)
    no_ranks = Scorer(student, batch_tokens=args.batch_tokens, rank_clip=None)
    scorer.score(candidates[:3])  # warm-up
    no_ranks.score(candidates[:3])
    # The peak is measured right before and right after the engine's runs and the higher one is used: on a
    # shared machine a peak taken minutes apart from the engine would flatter or wrong it.
    peak_before = matmul_peak(torch_device)
    engine_time, outcome, no_ranks_time = timed_alternately(
        lambda: scorer.score_with_stats(candidates),
        lambda: no_ranks.score(candidates),
        args.repeats,
        torch_device,
    )
    peak = max(peak_before, matmul_peak(torch_device))
    assert isinstance(outcome, tuple)
    scores, stats = outcome
    assert isinstance(stats, ScoringStats)
    worst = compare(scores, refs)

    scored_tokens = sum(r.n_q * 2 + r.n_a * 2 for r in refs)
    engine_flops = shape.token_flops(stats.computed_tokens, stats.attention_pairs, stats.scored_positions)
    ref_flops = reference_flops(shape, refs)
    result: dict[str, object] = {
        "device": _device_name(torch_device),
        "student": f"{args.shape if not args.student else student_dir.name} "
        f"({sum(p.numel() for p in student.model.parameters()) / 1e6:.1f}M params)",
        "candidates": len(candidates),
        "scored_tokens": scored_tokens,
        "reference_s": ref_time,
        "engine_s": engine_time,
        "reference_candidates_per_s": len(candidates) / ref_time,
        "engine_candidates_per_s": len(candidates) / engine_time,
        "reference_tokens_per_s": scored_tokens / ref_time,
        "engine_tokens_per_s": scored_tokens / engine_time,
        "speedup": ref_time / engine_time,
        "engine_without_ranks_s": no_ranks_time,
        "rank_overhead": engine_time / no_ranks_time - 1.0,
        "speedup_without_ranks": ref_time / no_ranks_time,
        "max_relative_error": worst,
        "matmul_peak_gflops": peak / 1e9,
        "engine_gflops": engine_flops / engine_time / 1e9,
        "engine_fraction_of_peak": engine_flops / engine_time / peak,
        "reference_fraction_of_peak": ref_flops / ref_time / peak,
        "matmul_peak_before_reference_gflops": peak_before_reference / 1e9,
        "two_pass_tokens": stats.sequence_tokens,
        "computed_tokens": stats.computed_tokens,
        "head_positions": stats.scored_positions,
        "batches": stats.batches,
    }
    if torch_device.type == "cuda":
        result.update(_cuda_extras(student_dir, candidates, scores, args))
    return result


def _cuda_extras(
    student_dir: Path, candidates: list[Candidate], fp32: list[CandidateScores], args: argparse.Namespace
) -> dict[str, object]:
    """bf16 autocast against float32 on the same GPU: numbers and throughput."""
    bf16 = Scorer(get_student(student_dir, device="cuda", precision="bfloat16"), batch_tokens=args.batch_tokens)
    bf16.score(candidates[:3])
    bf16_time, outcome = timed(lambda: bf16.score(candidates), args.repeats, torch.device("cuda"))
    assert isinstance(outcome, list)
    worst = {
        name: max(relative_error(getattr(b, name), getattr(f, name)) for b, f in zip(outcome, fp32, strict=True))
        for name in (*COMPARED, "ifd", "rifd")
    }
    return {"bf16_engine_s": bf16_time, "bf16_max_relative_error_vs_fp32": worst}


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=("tiny", "gpt2-small"), default="gpt2-small")
    parser.add_argument("--student", help="a checkpoint directory instead of a built example student")
    parser.add_argument("--samples", type=int, default=16, help="samples (each: original + two refinements)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-tokens", type=int, default=None, help="default: the engine's own for the device")
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        devices.remove("cuda")
        print("no CUDA device: CPU figures only", file=sys.stderr)
    results = [bench_device(args, device) for device in devices]
    failed = False
    for result in results:
        print(f"\n== {result['device']} — {result['student']}, {result['candidates']} candidates ==")
        for key, value in result.items():
            print(f"  {key:32s} {value:.4g}" if isinstance(value, float) else f"  {key:32s} {value}")
        ok = float(result["max_relative_error"]) <= TOLERANCE  # type: ignore[arg-type]
        print(f"  agreement within {TOLERANCE:g}: {'yes' if ok else 'NO'}")
        overhead, speedup = float(result["rank_overhead"]), float(result["speedup"])  # type: ignore[arg-type]
        print(f"  ranks cost within 10%: {'yes' if overhead <= 0.10 else 'NO'} ({overhead:+.1%})")
        print(f"  engine with ranks >= 2x the reference: {'yes' if speedup >= 2.0 else 'NO'} ({speedup:.2f}x)")
        failed |= not ok
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
