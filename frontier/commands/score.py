"""`frontier score`: the student's statistics for every candidate of a dataset, one JSON line each."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from core.checkpoint import CheckpointError, inspect_checkpoint
from core.dataset import CandidateText, DatasetError, SampleRecord, candidate_texts, parse_dataset
from core.files import atomic_write
from core.scores import DEFAULT_RANK_CLIP
from core.templates import TEMPLATES
from frontier.progress import ProgressBar
from service.settings import get_settings

# Candidates scored per engine call: large enough for good batches, small enough to bound memory.
CANDIDATES_PER_CALL = 4096


def register(subparsers: Any) -> None:
    """Add the `score` subcommand."""
    parser = subparsers.add_parser(
        "score",
        help="score every candidate of a dataset with a student (L(Q), L(A|Q), L(A), L(Q|A), IFD, r-IFD)",
        description="Write one JSON object per candidate (the original and each teacher's refinement).",
    )
    parser.add_argument("data", type=Path, help="dataset: JSONL or Parquet in the native, Alpaca or chat layout")
    parser.add_argument("--student", required=True, type=Path, help="local student checkpoint directory")
    parser.add_argument("--out", required=True, type=Path, help="where to write the scores (JSONL)")
    parser.add_argument("--template", choices=TEMPLATES, default="plain", help="prompt template")
    parser.add_argument(
        "--rank-clip", type=_positive_int, default=DEFAULT_RANK_CLIP, help="clip r of the token ranks behind RSR (100)"
    )
    parser.add_argument(
        "--batch-tokens",
        type=_positive_int,
        default=None,
        help="padded tokens per batch (default: 2048 on CPU, 16384 on CUDA)",
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--precision", choices=("auto", "float32", "bfloat16", "float16"), default="auto")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Validate everything, then score and write the output atomically; exit 2 on bad input."""
    try:
        records = parse_dataset(Path(args.data), name=str(args.data), limits=get_settings().limits)
        inspect_checkpoint(args.student)
    except FileNotFoundError as exc:
        return _fail(f"{args.data}: no such file ({exc.strerror})")
    except (DatasetError, CheckpointError) as exc:
        return _fail(f"{args.data if isinstance(exc, DatasetError) else args.student}: {exc}")

    # torch is imported only once the input is known to be good: bad input fails in milliseconds.
    from workers.scoring import Candidate, Scorer, get_student

    try:
        student = get_student(args.student, device=args.device, precision=args.precision)
        scorer = Scorer(student, template=args.template, batch_tokens=args.batch_tokens, rank_clip=args.rank_clip)
    except (CheckpointError, ValueError) as exc:
        return _fail(f"{args.student}: {exc}")

    rows = [(record, text) for record in records for text in candidate_texts(record)]
    started = time.perf_counter()
    bar = ProgressBar(len(rows), sys.stderr)
    counts = {"scored": 0, "unscored": 0}
    with atomic_write(args.out) as handle:
        for chunk in _chunks(rows, CANDIDATES_PER_CALL):
            candidates = [Candidate(t.instruction, t.response, t.input) for _, t in chunk]
            results = scorer.score(candidates, progress=bar.tracker(len(chunk)))
            for (record, text), result in zip(chunk, results, strict=True):
                line = _output_line(record, text, result.as_dict(), student.identity.fingerprint)
                handle.write(json.dumps(line, ensure_ascii=False, allow_nan=False) + "\n")
                counts[result.status] += 1
    bar.close()
    elapsed = time.perf_counter() - started
    print(
        f"scored {counts['scored']} candidates ({counts['unscored']} unscored) of {len(records)} samples "
        f"in {elapsed:.1f}s "
        f"with template {scorer.template_name} on {student.device} ({student.precision}) -> {args.out}",
        file=sys.stderr,
    )
    return 0


def _output_line(record: SampleRecord, text: CandidateText, scores: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    return {
        "sample_id": record.id,
        "candidate": text.name,
        "teacher": text.teacher,
        **scores,
        "student_fingerprint": fingerprint,
    }


Row = tuple[SampleRecord, CandidateText]


def _chunks(rows: Sequence[Row], size: int) -> Iterator[list[Row]]:
    """Runs of about `size` candidates that never split a sample (its candidates share prefixes)."""
    chunk: list[Row] = []
    for row in rows:
        if len(chunk) >= size and chunk[-1][0] is not row[0]:
            yield chunk
            chunk = []
        chunk.append(row)
    if chunk:
        yield chunk


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return number


def _fail(message: str) -> int:
    print(f"frontier score: error: {message}", file=sys.stderr)
    return 2
