"""Fixtures of the probe engine's tests: small students built in a second, on one CPU thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from core.probes import EvalItem, ProbeBudget, TrainingExample
from tests.workers.scoring.builders import build_tokenizer


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Probes here are tiny: one thread keeps them cheap on a shared machine and their reductions fixed."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def llama_student_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight two-layer Llama (hidden size 32) whose tokenizer adds a BOS token, as LLaMA's does."""
    out_dir = tmp_path_factory.mktemp("llama-probe")
    tokenizer = build_tokenizer(out_dir, adds_bos=True)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        LlamaForCausalLM(config).save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def examples() -> list[TrainingExample]:
    """Short worked sums in the `Answer: N` layout the default extraction reads."""
    return [
        TrainingExample(f"Add {a} and {b}.", "", f"{a} plus {b} makes {a + b}.\nAnswer: {a + b}")
        for a in range(4)
        for b in range(3)
    ]


@pytest.fixture(scope="session")
def eval_items() -> list[EvalItem]:
    """Held-out sums (one with an input field)."""
    return [EvalItem(f"Add {a} and 7.", "", str(a + 7)) for a in range(3)] + [EvalItem("Add the two.", "2 and 9", "11")]


@pytest.fixture(scope="session")
def budget() -> ProbeBudget:
    """A seven-step budget measured every three steps: points at 0, 3, 6 and 7."""
    return ProbeBudget(steps=7, batch_size=4, peak_lr=5e-3, warmup_steps=1, eval_every=3, max_new_tokens=6)
