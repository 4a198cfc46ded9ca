"""Probe engine benchmark: one short fine-tune per teacher of the example data, as `frontier jobs probe` runs it.

On the device asked for (a GPU trains under bf16 autocast), with the whole student trained or a LoRA adapter,
it prints per teacher the optimiser steps per second, tokens per second, the time spent measuring the curve, and
the held-out loss at the first and last step; `--device all` runs the same probes on the CPU (float32) as well and
prints how far the GPU's final loss is from the CPU's (the numerics of autocast, not a speed-up claim: a small
student is launch-bound on a GPU).

    python bench/probe.py --shape tiny --steps 100 --device all
    python bench/probe.py --shape gpt2-small --steps 100 --device cuda --method lora
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.dataset import ORIGINAL, candidate_texts, parse_jsonl
from core.probes import EvalItem, ProbeBudget, TrainingExample
from examples.student import build_student, default_student_dir
from workers.probing.probe import run_probe

EXAMPLE_DATA = Path(__file__).resolve().parent.parent / "examples" / "data" / "refinements.jsonl"


def load_probe_data(held_out: int) -> tuple[dict[str, list[TrainingExample]], list[EvalItem]]:
    """Each teacher's refinements of the training samples, and the last `held_out` samples as eval items."""
    records = parse_jsonl(EXAMPLE_DATA)
    train, held = records[:-held_out], records[-held_out:]
    by_teacher: dict[str, list[TrainingExample]] = {}
    for record in train:
        for text in candidate_texts(record):
            if text.name != ORIGINAL:
                by_teacher.setdefault(text.name, []).append(
                    TrainingExample(text.instruction, text.input, text.response)
                )
    # The example data has no exact answers; the curve's loss (on the original response) is what is compared.
    items = [EvalItem(r.instruction, r.input, answer="-", response=r.response) for r in held]
    return by_teacher, items


def bench_device(args: argparse.Namespace, device: str, student_dir: Path) -> dict[str, object]:
    """Every teacher's probe on one device."""
    by_teacher, items = load_probe_data(args.held_out)
    budget = ProbeBudget(
        steps=args.steps, batch_size=args.batch_size, eval_every=args.steps, held_out=args.held_out, max_new_tokens=32
    )
    teachers: dict[str, object] = {}
    for teacher, examples in sorted(by_teacher.items()):
        outcome = run_probe(
            student_dir,
            examples,
            items,
            budget=budget,
            seed=0,
            device=device,
            lora_above_params=0 if args.method == "lora" else 10**15,
        )
        cost = outcome.cost
        teachers[teacher] = {
            "method": cost.method,
            "trainable_parameters": cost.trainable_parameters,
            "steps_per_s": cost.steps / cost.train_seconds,
            "tokens_per_s": cost.tokens / cost.train_seconds,
            "train_s": cost.train_seconds,
            "eval_s": cost.eval_seconds,
            "loss_start": outcome.curve[0].loss,
            "loss_end": outcome.curve[-1].loss,
        }
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    return {"device": name, "teachers": teachers}


def main(argv: list[str] | None = None) -> int:
    """Run the probes and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=("tiny", "gpt2-small"), default="tiny")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--held-out", type=int, default=16)
    parser.add_argument("--method", choices=("full", "lora"), default="full")
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    devices = ["cuda", "cpu"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        devices.remove("cuda")
        print("no CUDA device: CPU figures only", file=sys.stderr)
    student_dir = build_student(default_student_dir(args.shape), shape=args.shape)
    results = [bench_device(args, device, student_dir) for device in devices]
    for result in results:
        print(
            f"\n== {result['device']}: {args.shape} student, {args.method}, {args.steps} steps of {args.batch_size} =="
        )
        teachers = result["teachers"]
        assert isinstance(teachers, dict)
        for teacher, figures in teachers.items():
            print(
                f"  {teacher:14s} "
                + "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())
            )
    if len(results) == 2:
        gpu, cpu = (r["teachers"] for r in results)
        assert isinstance(gpu, dict)
        assert isinstance(cpu, dict)
        for teacher in gpu:
            g, c = gpu[teacher]["loss_end"], cpu[teacher]["loss_end"]
            print(
                f"  {teacher:14s} final loss, bf16 autocast on the GPU vs float32 on the CPU: {g:.4f} vs {c:.4f} "
                f"({g / c - 1:+.2%})"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
