"""Training a small GPT-2-shaped student from code: its tokenizer wrapper, its model, its schedule and the loop.

The example student (examples/student.py) and the experiment's students (bench/experiment/student.py) are all
trained here: AdamW, a linear warm-up then a cosine decay to a floor, gradients clipped to norm 1, bf16 autocast
on CUDA only. torch, tokenizers and transformers are imported where they are used, so importers stay light.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer
    from transformers import GPT2LMHeadModel, PreTrainedModel, PreTrainedTokenizerFast

END_OF_TEXT = "<|endoftext|>"


@dataclass(frozen=True, slots=True)
class Schedule:
    """An optimiser recipe counted in steps, not wall time, so a run is reproducible."""

    steps: int
    batch_size: int
    peak_lr: float
    warmup_steps: int
    final_lr_fraction: float = 0.1
    weight_decay: float = 0.01
    adam_beta2: float = 0.999


def lr_factor(step: int, schedule: Schedule) -> float:
    """The learning rate at `step` as a fraction of the peak: linear warm-up, then cosine decay to the floor."""
    if step < schedule.warmup_steps:
        return (step + 1) / schedule.warmup_steps
    progress = (step - schedule.warmup_steps) / max(1, schedule.steps - schedule.warmup_steps)
    floor = schedule.final_lr_fraction
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def wrap_tokenizer(backend: Tokenizer, n_positions: int) -> PreTrainedTokenizerFast:
    """`backend` as a transformers tokenizer whose start, end, unknown and padding tokens are all <|endoftext|>."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=END_OF_TEXT,
        eos_token=END_OF_TEXT,
        unk_token=END_OF_TEXT,
        # Same id as eos, as GPT-2 does; batching code masks padding with the attention mask, never by id.
        pad_token=END_OF_TEXT,
        model_max_length=n_positions,
        # Decoding must give back the exact text, spaces included.
        clean_up_tokenization_spaces=False,
    )


def new_gpt2(*, vocab_size: int, eot_id: int, dropout: float, **shape: int) -> GPT2LMHeadModel:
    """A freshly initialised GPT-2 of `shape` (n_layer, n_embd, ...) using `eot_id` as start, end and padding.

    Initialisation draws from torch's global generator: seed it first.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=vocab_size,
        bos_token_id=eot_id,
        eos_token_id=eot_id,
        pad_token_id=eot_id,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        **shape,
    )
    return GPT2LMHeadModel(config)


def train(
    model: PreTrainedModel,
    batches: Iterator[dict[str, torch.Tensor]],
    schedule: Schedule,
    on_step: Callable[[int, list[float]], None] | None = None,
) -> list[float]:
    """Take `schedule.steps` optimiser steps, one batch of model inputs (labels included) each; every step's loss.

    The model trains where it sits (under bf16 autocast if that is a GPU) and is left in eval mode.
    `on_step(step, losses)` runs after each step, for progress logs.
    """
    import torch

    # transformers looks the loss up by class name, finds none for GPT2LMHeadModel, and warns before falling
    # back to the causal-LM loss: naming that loss here trains identically, without the warning.
    if getattr(model, "loss_type", None) is None:
        model.loss_type = "ForCausalLM"
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=schedule.peak_lr,
        betas=(0.9, schedule.adam_beta2),
        weight_decay=schedule.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, schedule))
    model.train()
    losses: list[float] = []
    for step in range(schedule.steps):
        batch = {name: tensor.to(device) for name, tensor in next(batches).items()}
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.item()))
        if on_step is not None:
            on_step(step, losses)
    model.eval()
    return losses
