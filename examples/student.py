"""Build the example student checkpoints locally, from code alone (no model hub).

- `tiny`: a few-million-parameter GPT-2 trained for a fixed number of steps on the synthetic corpus
  (examples/corpus.py, with the product's schedule and loop, workers/probing/training.py), so in-distribution
  text gets clearly lower perplexity than unusual text. Used by the quickstart and the tests.
- `gpt2-small`: the GPT-2-small shape (124M parameters), randomly initialised and never trained, sharing the
  tiny student's tokenizer. Its numbers mean nothing; it exists to time the engine at a realistic size.

Builds are deterministic on one machine for a given (shape, seed, builder source, library versions); CPU
kernels may round differently on another CPU, so compare scores, not weight hashes, across machines. They are
cached behind a stamp file, serialised by a lock and published by renaming a finished temporary directory, so a
reader never sees a half-written checkpoint.

CLI: `python -m examples.student --shape tiny --out DIR` prints the checkpoint directory on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from examples import corpus, training
from examples.training import END_OF_TEXT, new_gpt2, wrap_tokenizer
from workers.probing import training as loop
from workers.probing.training import Schedule, train

# torch, transformers and tokenizers are imported where a build needs them: the cached path (every test
# session asks for the student) and importers that only want `default_student_dir` stay light.
if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer
    from transformers import GPT2LMHeadModel

Shape = Literal["tiny", "gpt2-small"]
SHAPES: tuple[Shape, ...] = get_args(Shape)

STAMP_NAME = ".frontier-build.json"
REPO_ROOT = Path(__file__).resolve().parent.parent
# Files whose content determines the checkpoint: editing any of them invalidates every cached build.
_BUILDER_SOURCES = tuple(
    Path(source).resolve() for source in (__file__, corpus.__file__, training.__file__, loop.__file__)
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrainingPlan(Schedule):
    """The fixed training recipe of the tiny student: its schedule, its tokenizer and its rows of text."""

    steps: int = 180
    batch_size: int = 4
    peak_lr: float = 2e-3
    warmup_steps: int = 20
    tokenizer_documents: int = 20_000
    # An upper bound: the synthetic world's small vocabulary runs out of merges at about 1.4k tokens.
    vocab_size: int = 4096
    # Full-context rows, so every position embedding the scorer can reach has been trained.
    row_tokens: int = 512
    # Two threads: the reference build machine has two cores, and a fixed count keeps reductions identical.
    threads: int = 2


TINY_PLAN = TrainingPlan()
_TINY_SHAPE = {"n_layer": 4, "n_embd": 256, "n_head": 4, "n_positions": 512}
_GPT2_SMALL_SHAPE = {"n_layer": 12, "n_embd": 768, "n_head": 12, "n_positions": 1024, "vocab_size": 50257}


def default_student_dir(shape: Shape) -> Path:
    """Where the quickstart and the tests expect the `shape` student: `<repo>/.cache/students/<shape>`."""
    return REPO_ROOT / ".cache" / "students" / shape


def build_student(out_dir: Path, *, shape: Shape = "tiny", seed: int = 0) -> Path:
    """Build (or reuse a matching cached build of) the `shape` student in `out_dir`; returns its path."""
    if shape not in SHAPES:
        raise ValueError(f"unknown student shape {shape!r}; expected one of {', '.join(SHAPES)}")
    out_dir = Path(out_dir).expanduser().absolute()
    key = _build_key(shape, seed)
    if _stamp_matches(out_dir, key):
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(out_dir):
        # Another process may have finished the same build while this one waited for the lock.
        if _stamp_matches(out_dir, key):
            return out_dir
        _refuse_foreign_directory(out_dir)
        _remove_stale_builds(out_dir)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))
        try:
            started = time.perf_counter()
            report = _build_into(staging, shape, seed)
            report["build_seconds"] = round(time.perf_counter() - started, 2)
            # The stamp is written last: its presence means every other file is complete.
            stamp = {"key": key, "report": report}
            (staging / STAMP_NAME).write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n")
            _publish(staging, out_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    log.info("student %s ready in %s", shape, out_dir)
    return out_dir


def _build_key(shape: Shape, seed: int) -> dict[str, object]:
    digest = hashlib.sha256()
    for source in _BUILDER_SOURCES:
        digest.update(source.name.encode())
        digest.update(b"\0")
        digest.update(source.read_bytes())
    # Another torch or tokenizers release may produce different bytes from the same code and seed.
    versions = {name: version(name) for name in ("torch", "transformers", "tokenizers")}
    return {"builder_sha256": digest.hexdigest(), "shape": shape, "seed": seed, "versions": versions}


def _stamp_matches(out_dir: Path, key: dict[str, object]) -> bool:
    try:
        stamp = json.loads((out_dir / STAMP_NAME).read_text())
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return False
    return isinstance(stamp, dict) and stamp.get("key") == key


@contextlib.contextmanager
def _build_lock(out_dir: Path) -> Iterator[None]:
    """Serialise builds of one directory across processes (parallel test workers all ask for the student)."""
    lock_path = out_dir.parent / f".{out_dir.name}.lock"
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _refuse_foreign_directory(out_dir: Path) -> None:
    """Only an empty directory or an earlier student build may be replaced: never delete a user's files."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a directory")
    if any(out_dir.iterdir()) and not (out_dir / STAMP_NAME).exists():
        raise FileExistsError(f"{out_dir} is not empty and holds no {STAMP_NAME}; refusing to overwrite it")


def _remove_stale_builds(out_dir: Path) -> None:
    # Under the lock, any staging directory left behind belongs to a build that was killed.
    for leftover in out_dir.parent.glob(f".{out_dir.name}.building-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for leftover in out_dir.parent.glob(f".{out_dir.name}.replaced-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _publish(staging: Path, out_dir: Path) -> None:
    """Move the finished build into place; an older build is renamed aside first, then deleted."""
    # mkdtemp creates 0700 and transformers may write 0600 files: a worker running as another user must read it.
    staging.chmod(0o755)
    for path in staging.iterdir():
        path.chmod(0o644)
    retired: Path | None = None
    if out_dir.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.replaced-", dir=out_dir.parent))
        out_dir.rename(retired / out_dir.name)
    staging.rename(out_dir)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def _build_into(target: Path, shape: Shape, seed: int) -> dict[str, object]:
    import torch

    # The builder runs inside test sessions and benchmarks: leave their RNG state and thread count as found.
    threads = torch.get_num_threads()
    torch.set_num_threads(TINY_PLAN.threads)
    try:
        with torch.random.fork_rng(devices=[]):
            return _build_seeded(target, shape, seed)
    finally:
        torch.set_num_threads(threads)


def _build_seeded(target: Path, shape: Shape, seed: int) -> dict[str, object]:
    import torch

    n_positions = _TINY_SHAPE["n_positions"] if shape == "tiny" else _GPT2_SMALL_SHAPE["n_positions"]
    documents = corpus.corpus(seed, TINY_PLAN.tokenizer_documents)
    backend = _train_tokenizer(documents, TINY_PLAN.vocab_size)
    tokenizer = wrap_tokenizer(backend, n_positions)
    eot_id = backend.token_to_id(END_OF_TEXT)
    if eot_id is None:
        raise RuntimeError(f"the trained tokenizer lost its {END_OF_TEXT} token")
    report: dict[str, object] = {"shape": shape, "seed": seed, "tokenizer_vocab_size": backend.get_vocab_size()}
    torch.manual_seed(seed)
    if shape == "tiny":
        model = new_gpt2(
            vocab_size=backend.get_vocab_size(),
            eot_id=eot_id,
            # No dropout: the corpus is large relative to the step budget, so there is nothing to regularise.
            dropout=0.0,
            **_TINY_SHAPE,
        )
        report["training"] = asdict(TINY_PLAN)
        report.update(_train(model, backend, seed, eot_id))
    else:
        model = new_gpt2(eot_id=eot_id, dropout=0.1, **_GPT2_SMALL_SHAPE)
    model.eval()
    report["parameters"] = sum(p.numel() for p in model.parameters())
    # transformers >= 5 writes safetensors only (model.safetensors + config.json); no pickle file is produced.
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return report


def _train_tokenizer(documents: Sequence[str], vocab_size: int) -> Tokenizer:
    """Byte-level BPE: any text round-trips, and unknown words fall apart into many rare pieces."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    # No post-processor: nothing is inserted around the text, so offsets map one-to-one onto it.
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(documents, trainer=trainer)
    return backend


def _training_rows(backend: Tokenizer, seed: int, eot_id: int, n_rows: int, row_tokens: int) -> torch.Tensor:
    """Pack whole documents, each followed by <|endoftext|>, into rows that start at a document boundary."""
    import torch

    stream = corpus.iter_documents(seed)
    rows: list[list[int]] = []
    row: list[int] = []
    while len(rows) < n_rows:
        batch = [next(stream) for _ in range(256)]
        for encoding in backend.encode_batch(batch):
            row.extend([*encoding.ids, eot_id])
            if len(row) >= row_tokens:
                # The cut-off tail is dropped so the next row opens on a fresh document, as scoring does.
                rows.append(row[:row_tokens])
                row = []
                if len(rows) == n_rows:
                    break
    return torch.tensor(rows, dtype=torch.long)


def _train(model: GPT2LMHeadModel, backend: Tokenizer, seed: int, eot_id: int) -> dict[str, object]:
    import torch

    plan = TINY_PLAN
    rows = _training_rows(backend, seed, eot_id, plan.steps * plan.batch_size, plan.row_tokens)
    batches = (rows[start : start + plan.batch_size] for start in range(0, len(rows), plan.batch_size))
    # Rows are packed whole documents, never padded: every position is attended to.
    inputs = ({"input_ids": batch, "attention_mask": torch.ones_like(batch), "labels": batch} for batch in batches)
    started = time.perf_counter()

    def progress(step: int, losses: list[float]) -> None:
        if step == 0 or (step + 1) % 25 == 0:
            log.info("step %4d/%d  loss %.3f  (%.0fs)", step + 1, plan.steps, losses[-1], time.perf_counter() - started)

    losses = train(model, inputs, plan, progress)
    # A ten-step mean is a steadier "end of training" figure than the last, noisy batch.
    loss_end = sum(losses[-10:]) / 10
    log.info("training loss %.3f -> %.3f over %d steps", losses[0], loss_end, plan.steps)
    return {
        "loss_start": round(losses[0], 4),
        "loss_end": round(loss_end, 4),
        "loss_curve": [round(x, 4) for x in losses[::10]],
        "train_seconds": round(time.perf_counter() - started, 2),
        "train_tokens": int(rows.numel()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Build a student from the command line and print its directory."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.student", description="Build an example student checkpoint."
    )
    parser.add_argument("--shape", choices=SHAPES, default="tiny")
    parser.add_argument("--out", type=Path, default=None, help="checkpoint directory (default: .cache/students/SHAPE)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    # Progress goes to stderr so stdout carries only the path, for `$(python -m examples.student)`.
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    shape: Shape = args.shape
    out_dir = build_student(args.out or default_student_dir(shape), shape=shape, seed=args.seed)
    print(out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
